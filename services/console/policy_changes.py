"""What a candidate policy changes, field by field: what a manager reads before putting it in force."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MISSING = object()


@dataclass(frozen=True)
class Change:
    path: str
    before: str | None  # None: the field is new
    after: str | None  # None: the field is gone


def _shown(value: Any) -> str | None:
    return None if value is MISSING else json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(before: Any, after: Any, path: str = "") -> list[Change]:
    """Each leaf that differs, by its path (``targets.gold.response_hours``, ``ladder[2]``); a list that
    changes length is shown whole, since its items have no names to follow."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[Change] = []
        for key in [*before, *(key for key in after if key not in before)]:
            inner = f"{path}.{key}" if path else str(key)
            found += changes(before.get(key, MISSING), after.get(key, MISSING), inner)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += changes(old, new, f"{path}[{index}]")
        return found
    if before == after:
        return []
    return [Change(path or "(the whole policy)", _shown(before), _shown(after))]
