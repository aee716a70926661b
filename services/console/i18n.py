"""The console's words in Chinese and English: a message catalogue as two dictionaries.

Two languages and a few hundred words do not need gettext's toolchain (extract, compile, .mo files);
``tests/console/test_i18n.py`` holds the two catalogues (words_en, words_zh) to the same keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from services.console.words_en import ENGLISH
from services.console.words_zh import CHINESE

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")


CATALOGUES: dict[Language, dict[str, str]] = {"en": ENGLISH, "zh": CHINESE}


def translator(language: Language) -> Callable[[str], str]:
    """``t(key)``: the word in ``language``; the English one, then the key, if a word is missing."""
    words = CATALOGUES[language]
    return lambda key: words.get(key) or ENGLISH.get(key, key)


def value_namer(language: Language) -> Callable[[str, object], str]:
    """``v(kind, value)``: a domain value (a status, a tier) in ``language``; as it is if not listed."""
    words = CATALOGUES[language]

    def named(kind: str, value: object) -> str:
        if value is None:
            return ""
        return words.get(f"{kind}.{value}") or str(value)

    return named


def choose(stored: object, accept_language: str | None) -> Language:
    """The person's choice if they made one; else English if their browser asks for it first; else Chinese."""
    for language in LANGUAGES:
        if stored == language:
            return language
    first = (accept_language or "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"
