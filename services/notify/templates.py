"""Message text: Jinja2 templates in a sandbox, one language per customer locale.

Templates are data that managers edit over the API, so they run in Jinja2's sandbox and any
variable they name must exist (a typo fails the dry run, not a customer's message).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, Template, TemplateError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment


class TemplateProblem(ValueError):
    """A template that does not compile or does not render; the message says where."""


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@pass_context
def _localtime(context: Context, moment: datetime | str | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """An instant (a datetime or ISO 8601 text, as stored runs keep it) as the customer's wall-clock time."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(_zone(context.get("time_zone"))).strftime(pattern)


_UNITS = {
    "zh": (("天", "天"), ("小时", "小时"), ("分钟", "分钟")),
    "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes")),
}


@pass_context
def _duration(context: Context, span: timedelta | float | None) -> str:
    """A span (or seconds) in words, in the message's language: '2 小时', '1 day 4 hours'."""
    if span is None:
        return ""
    if not isinstance(span, timedelta):
        span = timedelta(seconds=float(span))
    language = str(context.get("language", "zh"))
    units = _UNITS.get(language, _UNITS["en"])
    minutes = max(0, round(span.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    for amount, (one, many) in zip((days, hours, minutes), units, strict=True):
        if amount:
            parts.append(f"{amount} {one if amount == 1 else many}")
    if not parts:
        parts.append(f"0 {units[2][1]}")
    joiner = "" if language == "zh" else " "
    return joiner.join(parts)


def _environment() -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    environment.filters["localtime"] = _localtime
    environment.filters["duration"] = _duration
    return environment


_ENVIRONMENT = _environment()


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


def check(source: str) -> None:
    """Raise TemplateProblem if ``source`` is not a valid template."""
    try:
        _compiled(source)
    except TemplateError as error:
        raise TemplateProblem(f"template error: {error}") from None


def render(source: str, context: Mapping[str, Any]) -> str:
    try:
        return _compiled(source).render(context).strip()
    except TemplateError as error:
        raise TemplateProblem(f"template error: {error}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise TemplateProblem(f"template error: {type(error).__name__}: {error}") from None


def pick_locale(available: Iterable[str], wanted: str | None, fallback: str) -> str:
    """The best of ``available`` for ``wanted``: the exact tag, then the same language, then ``fallback``.

    ``fallback`` itself falls back to the first available text, so there is always an answer.
    """
    tags = list(available)
    if not tags:
        raise ValueError("no text in any language")
    for candidate in (wanted, fallback):
        if not candidate:
            continue
        lowered = candidate.lower()
        for tag in tags:
            if tag.lower() == lowered:
                return tag
        language = lowered.split("-")[0]
        for tag in tags:
            if tag.lower().split("-")[0] == language:
                return tag
    return tags[0]


def language_of(tag: str) -> str:
    return tag.split("-")[0].lower()
