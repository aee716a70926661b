"""One unit of work: what a request or a consumer batch stages to commit together, typed and visible.

``Database.unit_of_work`` opens a session and the ``UnitOfWork`` that goes with it; code that has
the session reaches the unit with ``unit_of(session)``. The unit holds

- the events staged for the outbox (written in the transaction, just before it commits);
- hooks run inside the transaction just before it commits (``before_commit``);
- work run once the transaction has committed (``after_commit``), and the doorbells to ring then,
  so that the outbox relay or a dispatcher wakes at once; none of it runs if the transaction rolls
  back;
- whether the transaction erases someone (then no copy may stay on disk once it commits);
- a typed cache for the length of the unit (``Slot``), for what a service reads once per
  transaction (notify's policy) or marks as it goes (customer's changed views).

A unit lasts one transaction: after its commit or rollback the session starts a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from shared.events import Envelope, Event

T = TypeVar("T")


class Doorbell:
    """Wakes whoever waits for a kind of work (the outbox relay, a dispatcher) once a commit made some.

    Each waiter listens with its own flag, so one waking does not swallow another's ring; a ring
    while a waiter is busy is kept until it next waits.
    """

    def __init__(self) -> None:
        self._listeners: set[asyncio.Event] = set()

    def ring(self) -> None:
        for listener in self._listeners:
            listener.set()

    def add(self, listener: asyncio.Event) -> None:
        """Set ``listener`` at every ring from now on; its waiter clears it before it looks for work."""
        self._listeners.add(listener)

    def discard(self, listener: asyncio.Event) -> None:
        self._listeners.discard(listener)

    @contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """A flag set by every ring while the block runs (``add``, then ``discard``)."""
        listener = asyncio.Event()
        self.add(listener)
        try:
            yield listener
        finally:
            self.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)


class Doorbells:
    """The doorbells of one database: one for its outbox relay, one for work its own workers do
    when a commit makes it due (notify's dispatcher)."""

    def __init__(self) -> None:
        self.outbox = Doorbell()
        self.due_work = Doorbell()


class Slot(Generic[T]):
    """A typed place in a ``Slots`` map; made once per kind of thing kept, at module level."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


class Slots:
    """A map from ``Slot[T]`` to ``T``."""

    def __init__(self) -> None:
        self._values: dict[Slot[Any], Any] = {}

    def get(self, slot: Slot[T]) -> T | None:
        return cast("T | None", self._values.get(slot))

    def put(self, slot: Slot[T], value: T) -> None:
        self._values[slot] = value

    def pop(self, slot: Slot[T]) -> T | None:
        return cast("T | None", self._values.pop(slot, None))

    def setdefault(self, slot: Slot[T], make: Callable[[], T]) -> T:
        if slot not in self._values:
            self._values[slot] = make()
        return cast(T, self._values[slot])

    def clear(self) -> None:
        self._values.clear()


class BeforeCommit(Protocol):
    def __call__(self, *, session: AsyncSession) -> Awaitable[None]: ...


AfterCommit = Callable[[], Awaitable[None] | None]


class UnitOfWork:
    """What one transaction stages to happen with its commit (see the module's docstring)."""

    def __init__(self, *, doorbells: Doorbells, extensions: Slots) -> None:
        self.doorbells = doorbells
        # Per database, set when the service starts (customer's read model definition, say).
        self.extensions = extensions
        self.staged: list[Envelope[Event]] = []
        self.before_commit: list[BeforeCommit] = []
        self.after_commit: list[AfterCommit] = []
        self.bells: list[Doorbell] = []
        self.erased = False
        self.cache = Slots()

    def run_before_commit(self, hook: BeforeCommit) -> None:
        if hook not in self.before_commit:
            self.before_commit.append(hook)

    def run_after_commit(self, work: AfterCommit) -> None:
        self.after_commit.append(work)

    def ring_after_commit(self, bell: Doorbell) -> None:
        if bell not in self.bells:
            self.bells.append(bell)

    async def committed(self) -> None:
        """The transaction committed: ring the bells, then run the after-commit work, in order."""
        for bell in self.bells:
            bell.ring()
        for work in self.after_commit:
            done = work()
            if done is not None:
                await done

    def forget(self) -> None:
        """The transaction ended (rolled back, or committed and done): nothing of it carries on."""
        self.staged.clear()
        self.before_commit.clear()
        self.after_commit.clear()
        self.bells.clear()
        self.erased = False
        self.cache.clear()


class UnitSession(Session):
    """The ORM session of ``Database``: it carries the unit of work of its current transaction."""

    def __init__(self, *args: Any, doorbells: Doorbells, extensions: Slots, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unit = UnitOfWork(doorbells=doorbells, extensions=extensions)


def unit_of(session: AsyncSession | Session) -> UnitOfWork:
    """The unit of work of the transaction ``session`` is in."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    if not isinstance(sync, UnitSession):
        raise TypeError("not a session of shared.db.Database: it carries no unit of work")
    return sync.unit


def unit_if_any(session: AsyncSession | Session) -> UnitOfWork | None:
    """``unit_of``, or None for a session that is not a ``Database``'s (a test's own, Alembic's)."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    return sync.unit if isinstance(sync, UnitSession) else None
