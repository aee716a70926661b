"""How alike two customer records are: the scoring behind duplicate detection (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass(frozen=True)
class Record:
    """The parts of a customer record that identify a person or a company."""

    name_key: str
    email: str | None = None
    phones: frozenset[str] = frozenset()


def name_similarity(a: str, b: str) -> float:
    """0..1, 1 for equal keys; insensitive to the order of the words ("Li Na" and "Na Li")."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    # SequenceMatcher's ratio depends on which side is searched first ("12" / "2102": 0.67 one
    # way, 0.33 the other); taking both ways makes the likeness of two records one figure.
    by_words_a, by_words_b = " ".join(sorted(a.split())), " ".join(sorted(b.split()))
    return max(_ratio(a, b), _ratio(b, a), _ratio(by_words_a, by_words_b), _ratio(by_words_b, by_words_a))


def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def likeness(a: Record, b: Record, *, name_threshold: float) -> tuple[float, list[str]]:
    """How likely two records are one customer (0..1), and why.

    A shared e-mail address or phone number is strong evidence; a similar name alone is weaker
    (namesakes are common), and together they are near certain.
    """
    reasons: list[str] = []
    score = 0.0
    if a.email and a.email == b.email:
        reasons.append("same e-mail address")
        score = max(score, 0.8)
    shared_phones = a.phones & b.phones
    if shared_phones:
        reasons.append("same phone number")
        score = max(score, 0.8)
    similarity = name_similarity(a.name_key, b.name_key)
    if similarity >= name_threshold:
        reasons.append("same name" if similarity == 1.0 else "similar name")
        score = 0.5 * similarity if score == 0 else min(1.0, score + 0.2 * similarity)
    return round(score, 3), reasons
