"""Rendering a batch's templates once per distinct input, not once per recipient.

An announcement renders the same step for thousands of customers, and most of its text does not
depend on the customer: its title names only the announcement, its SMS the announcement and the
tier's offer. A rendering depends on nothing but the context's values the template names (and
the ``time_zone`` and ``language`` that the ``localtime`` and ``duration`` filters read), so the
text made for one customer is the text for every other with the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, meta

from shared import templates

# Read by filters rather than named in the template (shared.templates: localtime, duration).
_READ_BY_FILTERS = ("time_zone", "language")
_PARSER = Environment()


class Unfrozen(Exception):
    """A value with no exact, hashable form here: such a rendering is not shared."""


@lru_cache(maxsize=1024)
def _named(source: str) -> tuple[str, ...] | None:
    """The context's names ``source`` reads; None if it does not parse (``render`` says why)."""
    try:
        names = meta.find_undeclared_variables(_PARSER.parse(source))
    except TemplateSyntaxError:
        return None
    return tuple(sorted(names | set(_READ_BY_FILTERS)))


def _frozen(value: Any) -> Any:
    """An exact hashable form of a JSON-like value. The type is kept, since ``True``, ``1`` and
    ``1.0`` are equal keys but render differently."""
    if value is None or isinstance(value, str | int | float | bool):
        return (type(value), value)
    if isinstance(value, Mapping):
        return (dict, tuple((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return (type(value), tuple(_frozen(item) for item in value))
    raise Unfrozen(type(value).__name__)


class Renderings:
    """``templates.render``, each distinct (template, values it reads) rendered once."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, Any], str] = {}

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        names = _named(source)
        if names is None:
            return templates.render(source, context)
        try:
            key = (source, tuple((name, _frozen(context[name])) for name in names if name in context))
        except Unfrozen:
            return templates.render(source, context)
        made = self._made.get(key)
        if made is None:
            # A template that fails fails again for the next recipient: the problem is not kept.
            made = self._made[key] = templates.render(source, context)
        return made
