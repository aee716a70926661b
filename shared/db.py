"""Database plumbing: the column types and naming every service uses, the engine, and the one commit point.

Each service owns one database: SQLite by default (a file in the var directory; see
``shared.settings.var_dir``), PostgreSQL by URL.
Code that changes state only ``flush()``es; ``Database.unit_of_work`` is where it commits,
together with the events staged in the same session (see ``shared.outbox``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, event, text
from sqlalchemy.engine import CursorResult, Dialect, ExceptionContext, Result, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from shared.events.base import ordered_uuid
from shared.settings import MAX_OVERFLOW, POOL_SIZE
from shared.unit_of_work import BeforeCommit, Doorbells, Slots, UnitSession, unit_of

# Stable constraint names, so that migrations can drop and alter them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes an INTEGER PRIMARY KEY autoincrement; PostgreSQL gets a real bigint.
BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def ordered_id() -> uuid.UUID:
    """An identifier that sorts after every one this process made before (UUID version 7).

    For rows listed in the order they were made when their timestamps tie (one batch records its
    changes at one moment). Across processes the order is the clocks': a customer's rows come
    from the one process that holds their partition, and a restarted one starts later.
    """
    return ordered_uuid()


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores text: keep it naive UTC so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_text(value: datetime | None) -> str | None:
    """What ``UtcDateTime`` stores on SQLite, made at once: naive UTC text with microseconds, as
    SQLite's DATETIME writes it (``UtcDateTime`` then DATETIME's processor, without their layers)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


Convert = Callable[[Any], Any]
_UNSEEN = object()


def bind_converter(column: Column[Any], dialect: Dialect) -> Convert | None:
    """How a value of ``column`` goes to the driver (None: as it is): the column type's own bind
    processing, except for ``UtcDateTime`` on SQLite, whose text is made in one step."""
    if isinstance(column.type, UtcDateTime) and dialect.name == "sqlite":
        return _utc_text
    processor: Convert | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


class RawWrite:
    """An INSERT, or an UPDATE by key, of many rows through the driver's ``executemany``.

    The statement is made once per database kind, and each row goes to the driver as a tuple,
    without the per-row parameter processing of a Core or ORM statement: only the values of
    columns whose type the driver does not take as they are are converted (``bind_converter``), so
    the stored form is the one a Core statement stores (SQLite keeps UUIDs as hex and times as
    naive UTC text). An UPDATE's rows are the ``columns``' values followed by the key's.
    """

    def __init__(self, table: Table, columns: Sequence[str], *, key: str | None = None) -> None:
        self.table = table
        self.columns = list(columns)
        self.key = key
        self._prepared: dict[str, tuple[str, list[tuple[int, Convert]]]] = {}

    def prepared(self, dialect: Dialect) -> tuple[str, list[tuple[int, Convert]]]:
        """The statement's SQL and, by position in a row, the converters of the values that need one."""
        found = self._prepared.get(dialect.name)
        if found is None:
            names = self.columns if self.key is None else [*self.columns, self.key]
            if dialect.paramstyle == "qmark":
                marks = ["?"] * len(names)
            elif dialect.paramstyle == "numeric_dollar":
                marks = [f"${index}" for index in range(1, len(names) + 1)]
            else:
                raise NotImplementedError(f"parameter style {dialect.paramstyle}")
            preparer = dialect.identifier_preparer
            table, quoted = preparer.format_table(self.table), [preparer.quote(name) for name in names]
            if self.key is None:
                sql = f"INSERT INTO {table} ({', '.join(quoted)}) VALUES ({', '.join(marks)})"
            else:
                assignments = ", ".join(
                    f"{name} = {mark}" for name, mark in zip(quoted[:-1], marks[:-1], strict=True)
                )
                sql = f"UPDATE {table} SET {assignments} WHERE {quoted[-1]} = {marks[-1]}"
            converters = [
                (index, convert)
                for index, name in enumerate(names)
                if (convert := bind_converter(self.table.c[name], dialect)) is not None
            ]
            found = self._prepared[dialect.name] = (sql, converters)
        return found

    async def run(self, session: AsyncSession, rows: Iterable[Sequence[Any]]) -> None:
        """Write ``rows`` (values in ``columns`` order, then the key's for an UPDATE), converting them."""
        connection = await session.connection()
        sql, converters = self.prepared(connection.dialect)
        # A batch's rows share many of their values (the batch's time above all): each column keeps
        # the last value it converted, and the same object again is not converted again.
        last: list[tuple[object, object]] = [(_UNSEEN, None)] * len(converters)
        converted = []
        for row in rows:
            values = list(row)
            for slot, (index, convert) in enumerate(converters):
                value = values[index]
                seen, made = last[slot]
                if value is not seen:
                    made = convert(value)
                    last[slot] = (value, made)
                values[index] = made
            converted.append(tuple(values))
        if converted:
            await connection.exec_driver_sql(sql, converted)


def service_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: UtcDateTime()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


READ_ONLY_OPTION = "csm_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW
) -> AsyncEngine:
    """Build an engine; SQLite gets WAL, a busy timeout and write-locking transactions.

    SQL parameters are hidden from errors and logs: they are customers' personal data. An in-memory
    SQLite database is one connection, so it has no pool to size.
    """
    pool = {"pool_size": pool_size, "max_overflow": max_overflow}
    if is_sqlite(url):
        database = make_url(url).database
        in_memory = database in (None, "", ":memory:")
        if database and not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": 30}, **({} if in_memory else pool)
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(url, echo=echo, hide_parameters=True, **pool)
    _ping_when_idle(engine)
    return engine


def _ended_by_the_server(error: BaseException | None) -> bool:
    """Whether asyncpg says the server ended the connection under a statement (a restart, a kill)."""
    from asyncpg.exceptions import ConnectionDoesNotExistError

    while error is not None:
        if isinstance(error, ConnectionDoesNotExistError):
            return True
        error = error.__cause__
    return False


# A pooled connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only when it has lain idle, not on every checkout.

    What a ping protects against is a connection the server or the network ended while it lay in the
    pool: an idle timeout, a restart, a failover. SQLAlchemy's ``pool_pre_ping`` pings on every checkout,
    which with asyncpg is three round trips (BEGIN, an empty statement, ROLLBACK) before each request's
    work. A connection given back less than ``PING_AFTER_IDLE_SECONDS`` ago was working then; a server
    that went away since is met by the statement itself, and SQLAlchemy then replaces every connection
    of the pool at its next checkout. Reads retry such a statement once (``ReadSession``); a request
    that was writing fails, as it would have if the server had gone away a moment later.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # asyncpg reports a connection the server ended mid-statement before it notes the connection as
        # closed, so SQLAlchemy would not see a disconnect: say so, and the pool replaces it.
        if not context.is_disconnect and _ended_by_the_server(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["csm.idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("csm.idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or given back a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool closes this one and hands out a new connection instead.
            raise DisconnectionError(f"a pooled connection was gone ({type(error).__name__})") from error


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
            # What is deleted or overwritten is zeroed, not left in free pages (erasure).
            "PRAGMA secure_delete=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            # Take the write lock up front: a deferred transaction that reads and then writes
            # fails at once, busy timeout or not, when another writer got in between.
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine, its sessions and the one place where they commit."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW
    ) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow)
        # Rung after commits that made work: the outbox relay's, and the service's own workers'.
        self.doorbells = Doorbells()
        # What the service sets once for every unit of work of this database (shared.unit_of_work).
        self.extensions = Slots()
        units: dict[str, Any] = {
            "sync_session_class": UnitSession,
            "doorbells": self.doorbells,
            "extensions": self.extensions,
        }
        self._units = units
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, **units)
        self._read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False, **units
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session whose work, and the events staged in it, commit together on exit.

        Its ``UnitOfWork`` (``unit_of(session)``) runs the before-commit hooks inside the transaction,
        and once it has committed rings the doorbells and runs the after-commit work; on a rollback
        none of that happens.
        """
        async with self.sessionmaker() as session:
            unit = unit_of(session)
            try:
                async with session.begin():
                    yield session
                    # A hook may stage more (an event, another hook): run until none is left.
                    while unit.before_commit:
                        hook = unit.before_commit.pop(0)
                        await hook(session=session)
                erased = unit.erased
                await unit.committed()
            finally:
                unit.forget()
        if erased:
            await self.leave_no_copies()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only; nothing it does is committed.

        On PostgreSQL each statement runs on its own (autocommit): at READ COMMITTED, the isolation
        every session here has, each statement of a transaction sees the data as of its own start
        anyway, so a read-only transaction would only add a BEGIN and a ROLLBACK round trip to every
        request. On SQLite a read is one transaction, for its snapshot, and costs no round trip.
        """
        sqlite = self.dialect == "sqlite"
        async with self._read_sessionmaker() if sqlite else self._autocommit_reads() as session:
            try:
                yield session
                if sqlite:
                    await session.rollback()
            finally:
                unit_of(session).forget()

    @cached_property
    def _autocommit_reads(self) -> async_sessionmaker[ReadSession]:
        engine = self.engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY_OPTION: True})
        return async_sessionmaker(engine, class_=ReadSession, expire_on_commit=False, **self._units)

    async def leave_no_copies(self) -> None:
        """After an erasure: on SQLite, fold the write-ahead log into the file and empty it, so that
        no earlier version of an erased row stays on disk (freed pages are zeroed: secure_delete).
        PostgreSQL reclaims dead row versions by (auto)vacuum; see the README on erasure."""
        if self.dialect == "sqlite":
            await checkpoint(self.engine)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class ReadSession(AsyncSession):
    """A reading session of autocommit statements: one that meets a connection the server ended
    (a restart, a failover) is run once more on a new one. That is safe because each statement
    stands alone and changes nothing; what earlier statements loaded stays loaded (detached).
    ``execute`` (and so ``scalars``), ``scalar`` and ``get`` do this; ``stream`` does not."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await self._once_more(super().execute, *args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await self._once_more(super().scalar, *args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self._once_more(super().get, *args, **kwargs)

    async def _once_more(self, run: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        try:
            return await run(*args, **kwargs)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        await self.close()  # gives the dead connection back; the next statement takes a new one
        return await run(*args, **kwargs)


async def checkpoint(engine: AsyncEngine) -> None:
    """Fold a SQLite database's write-ahead log into its file and truncate the log.

    Run on the driver's connection, outside any transaction (a checkpoint cannot run inside one).
    """
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]


def erased_in(session: AsyncSession) -> None:
    """Mark the session's transaction as an erasure: once committed, no copy is left on disk."""
    unit_of(session).erased = True


def before_commit(hook: BeforeCommit, *, session: AsyncSession) -> None:
    """Run ``hook`` inside the session's transaction just before ``unit_of_work`` commits it."""
    unit_of(session).run_before_commit(hook)


def affected_rows(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE touched (its result is a cursor result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)
