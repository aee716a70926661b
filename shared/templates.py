"""Text for customers: Jinja2 templates in a sandbox, on a budget, one language per customer locale.

Templates are data that staff edit over the API (notify's playbook messages, complaints' canned
replies) and try out in dry runs and previews, so they
run in Jinja2's immutable sandbox, any variable they name must exist (a typo fails the dry run,
not a customer's message), and one rendering has a budget it cannot overspend:

- time: ``TIME_BUDGET`` seconds, checked at every loop step and every call;
- work: ``STEP_BUDGET`` loop steps and calls in all;
- size: no value and no output longer than ``OUTPUT_BUDGET`` characters, checked *before*
  the text is made wherever the size can be known beforehand (``*``, ``**``, ``%``, padding,
  ``replace``, ``join``, ``~``), so ``'a' * 200000000`` is refused, not allocated.

Anything that goes wrong while rendering, over budget or not, is a ``TemplateProblem`` naming
the reason: a step fails visibly and the rest of the event's work goes on.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, wraps
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, Template, TemplateError, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

TIME_BUDGET = 0.25
STEP_BUDGET = 100_000
OUTPUT_BUDGET = 100_000
SOURCE_LIMIT = 20_000
_MAX_INT_BITS = 4096


class TemplateProblem(ValueError):
    """A template that does not compile or does not render; the message says where."""


class OverBudget(SecurityError):
    """A rendering that would take too long, too many steps or make too much text."""


@dataclass
class _Budget:
    deadline: float
    steps: int = STEP_BUDGET


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)
_OUTER_DEADLINE: ContextVar[float | None] = ContextVar("template_outer_deadline", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise OverBudget(f"the template takes more than {STEP_BUDGET:,} loop steps and calls")
    if time.perf_counter() > budget.deadline:
        raise OverBudget(f"the template takes longer than {TIME_BUDGET:g} s to render")


def _fits(size: int, what: str = "text") -> None:
    if size > OUTPUT_BUDGET:
        raise OverBudget(f"the template would make {what} longer than {OUTPUT_BUDGET:,} characters")


def _size(value: object) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Every rendering inside ends by ``seconds`` from now, however many there are (a dry run)."""
    token = _OUTER_DEADLINE.set(time.perf_counter() + seconds)
    try:
        yield
    finally:
        _OUTER_DEADLINE.reset(token)


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


_PERCENT_WIDTH = re.compile(r"%[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_PADDING_METHODS = {"ljust", "rjust", "center", "zfill"}
_REFUSED_METHODS = {"format", "format_map", "expandtabs"}


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for text, times in ((left, right), (right, left)):
            if isinstance(times, int) and _size(text):
                _fits(_size(text) * max(times, 0))
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > _MAX_INT_BITS
        ):
            raise OverBudget(f"the template makes a number of more than {_MAX_INT_BITS} bits")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(left.bit_length(), 1) * right > _MAX_INT_BITS and abs(left) > 1:
                raise OverBudget(f"the template makes a number of more than {_MAX_INT_BITS} bits")
        elif isinstance(left, float | int) and isinstance(right, float | int) and abs(right) > _MAX_INT_BITS:
            raise OverBudget("the template raises a number to too high a power")
    elif operator == "+":
        _fits(_size(left) + _size(right))
    elif operator == "%" and isinstance(left, str):
        for match in _PERCENT_WIDTH.finditer(left):
            for number in match.groups():
                if number == "*" or (number is not None and int(number) > OUTPUT_BUDGET):
                    raise OverBudget("the template pads text by more than it may make")
        _fits(len(left) + sum(_size(part) for part in (right if isinstance(right, tuple) else (right,))))


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(owner, str | bytes):
        return
    if name in _PADDING_METHODS and args and isinstance(args[0], int):
        _fits(args[0])
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = owner.count(old) if old else len(owner) + 1
        _fits(len(owner) + count * max(_size(new) - _size(old), 0))
    elif name == "join" and args and isinstance(args[0], list):
        _fits(sum(_size(part) for part in args[0]) + len(owner) * max(len(args[0]) - 1, 0))
    del kwargs


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with every way to spend time or memory counted or checked beforehand."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str | bytes) and attribute in _REFUSED_METHODS:
            raise SecurityError(f"{attribute}() is not available in templates; use the format filter")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str | bytes) and argument in _REFUSED_METHODS:
            raise SecurityError(f"{argument}() is not available in templates; use the format filter")
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if getattr(__obj, "__name__", "") == "join" and args and isinstance(__obj.__self__, str | bytes):
            args = (list(args[0]), *args[1:])  # counted before it is joined
        _check_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        _fits(_size(result))
        return result

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        if len(source) > SOURCE_LIMIT:
            raise TemplateProblem(f"template error: longer than {SOURCE_LIMIT:,} characters")
        tree = super()._parse(source, name, filename)
        result = _Counted().visit(tree)
        assert isinstance(result, nodes.Template)
        return result


class _Counted(NodeTransformer):
    """Every loop counts its steps; every ``~`` checks the size of what it would make."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_steps", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, "_concat", [], [], None, None, lineno=node.lineno)


@pass_context
def _steps(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    del context
    for item in iterable:
        _tick()
        yield item


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    del context
    texts = [str(part) for part in parts]
    _fits(sum(len(text) for text in texts))
    return "".join(texts)


def _bounded_concat(parts: Iterable[str]) -> str:
    """Jinja's own joining of output (a whole rendering, a block, a macro's body), counted as it goes."""
    collected = []
    size = 0
    for part in parts:
        size += len(part)
        _fits(size, "output")
        collected.append(part)
    return "".join(collected)


def _counted_filter(filter_function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(filter_function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        result = filter_function(*args, **kwargs)
        if isinstance(result, Iterator) and not isinstance(result, str | bytes):
            return _each_counted(result)
        _fits(_size(result))
        return result

    return counted


def _each_counted(items: Iterator[Any]) -> Iterator[Any]:
    for item in items:
        _tick()
        yield item


def _replace_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def replace(*args: Any, **kwargs: Any) -> Any:
        value, old, new = (str(arg) for arg in args[-3:]) if len(args) >= 3 else ("", "", "")
        count = value.count(old) if old else len(value) + 1
        _fits(len(value) + count * max(len(new) - len(old), 0))
        return original(*args, **kwargs)

    return replace


def _join_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def join(*args: Any, **kwargs: Any) -> Any:
        eval_context, value, *rest = args
        items = list(value)
        separator = str(rest[0] if rest else kwargs.get("d", ""))
        _fits(sum(_size(item) for item in items) + len(separator) * max(len(items) - 1, 0))
        return original(eval_context, items, *rest, **kwargs)

    return join


def _environment() -> _Environment:
    environment = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    environment.concat = _bounded_concat  # type: ignore[method-assign]
    # Filters that can make text out of a number of nothing are checked first or left out.
    for unbounded in ("center", "indent", "wordwrap", "slice"):
        environment.filters.pop(unbounded, None)
    environment.filters = {name: _counted_filter(f) for name, f in environment.filters.items()}
    environment.filters["replace"] = _replace_filter(environment.filters["replace"])
    environment.filters["join"] = _join_filter(environment.filters["join"])
    environment.filters["format"] = _format_filter
    environment.filters["localtime"] = _localtime
    environment.filters["duration"] = _duration
    environment.filters["_steps"] = _steps
    environment.filters["_concat"] = _concat
    environment.globals.pop("lipsum", None)
    return environment


@pass_context
def _format_filter(context: Context, value: str, *args: Any, **kwargs: Any) -> str:
    """printf-style formatting, with the same checks as the ``%`` operator."""
    del context
    if kwargs:
        raise SecurityError("the format filter takes positional values only")
    _check_binop("%", str(value), tuple(args))
    return str(value) % args


_ENVIRONMENT = _environment()


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


def check(source: str) -> None:
    """Raise TemplateProblem if ``source`` is not a valid template."""
    try:
        _compiled(source)
    except TemplateProblem:
        raise
    except TemplateError as error:
        raise TemplateProblem(f"template error: {error}") from None
    except (RecursionError, MemoryError):
        raise TemplateProblem("template error: nested too deeply") from None


def render(source: str, context: Mapping[str, Any]) -> str:
    """``source`` rendered with ``context`` within its budget, or TemplateProblem saying why not."""
    check(source)
    deadline = time.perf_counter() + TIME_BUDGET
    outer = _OUTER_DEADLINE.get()
    token = _BUDGET.set(_Budget(deadline=min(deadline, outer) if outer is not None else deadline))
    try:
        return _compiled(source).render(context).strip()
    except OverBudget as error:
        raise TemplateProblem(f"over budget: {error}") from None
    except TemplateError as error:
        raise TemplateProblem(f"template error: {error}") from None
    except RecursionError:
        raise TemplateProblem("template error: calls itself too deeply") from None
    except Exception as error:  # a template's failure is its own, never the event's
        raise TemplateProblem(f"template error: {type(error).__name__}: {error}") from None
    finally:
        _BUDGET.reset(token)


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
