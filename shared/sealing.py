"""Personal data in events, sealed per customer, so that erasing the customer's key erases it everywhere.

A broker's log cannot be edited: an event stays on its topic for the retention period (and in
whatever other systems copied it) long after the customer it names was erased. So the fields of an
event that name or describe the person (its ``personal`` paths, declared on the event class) go on
the broker sealed with AES-GCM under a key of that customer's own, kept in one key store shared by
the services (``CSM_KEYS_DATABASE_URL``). Every csm consumer opens them with that key.

Erasure destroys the key and leaves a tombstone: what is on the broker, in dead-letter topics and
in any copy can never be opened again, and no new key is ever made for that customer, so an event
published afterwards carries the erased placeholder instead. The relay that publishes
``customer.erased`` destroys the key first (see ``shared.outbox``); every consumer forgets its
cached key when it applies that event (see ``shared.inbox``).

On the wire a sealed field is a string ``csm:sealed:v1:<base64url>`` (a 12-byte nonce, then the
ciphertext); the associated data binds it to its customer, event type and field, so a sealed value
cannot be moved to another customer's event.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import UtcDateTime, checkpoint, create_engine, utcnow
from shared.events import Event
from shared.events.customer import CustomerErased

PREFIX = "csm:sealed:v1:"
SEALED_MARK = PREFIX.encode()
"""A record whose bytes hold this may carry sealed fields (a cheap test before any JSON is read)."""
ERASED = "(erased)"
"""What a required personal text field reads as once its customer was erased."""

_metadata = sa.MetaData()
customer_key = sa.Table(
    "customer_key",
    _metadata,
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    # NULL once the customer is erased: the tombstone that stops a new key being made.
    sa.Column("key", sa.LargeBinary, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("erased_at", UtcDateTime(), nullable=True),
)


class SealedWithoutKey(ValueError):
    """A sealed value whose customer's key the store has never had: a store lost or not shared."""


class KeyStore:
    """The customers' keys, in a database every service reaches (one table; made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    async def _ready(self) -> AsyncEngine:
        if self._engine is None:
            engine = create_engine(self.url)
            async with engine.begin() as connection:
                await connection.run_sync(_metadata.create_all)
            self._engine = engine
        return self._engine

    async def keys(self, customer_ids: Iterable[uuid.UUID], *, create: bool) -> dict[uuid.UUID, bytes | None]:
        """The keys of these customers (None: erased); made first where ``create`` and there is none."""
        wanted = sorted(set(customer_ids))
        if not wanted:
            return {}
        engine = await self._ready()
        async with engine.begin() as connection:
            if create:
                now = utcnow()
                insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(customer_key)
                await connection.execute(
                    insert.on_conflict_do_nothing(index_elements=["customer_id"]),
                    [{"customer_id": i, "key": AESGCM.generate_key(256), "created_at": now} for i in wanted],
                )
            rows = await connection.execute(
                sa.select(customer_key.c.customer_id, customer_key.c.key).where(
                    customer_key.c.customer_id.in_(wanted)
                )
            )
            return {row.customer_id: row.key for row in rows}

    async def destroy(self, customer_ids: Iterable[uuid.UUID], *, at: datetime) -> None:
        """Erase these customers' keys for good, leaving tombstones."""
        wanted = sorted(set(customer_ids))
        if not wanted:
            return
        engine = await self._ready()
        insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(customer_key)
        async with engine.begin() as connection:
            await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["customer_id"], set_={"key": None, "erased_at": at}
                ),
                [{"customer_id": i, "key": None, "created_at": at, "erased_at": at} for i in wanted],
            )
        if engine.dialect.name == "sqlite":
            # Leave no copy of the key in the write-ahead log (freed pages are zeroed: secure_delete).
            await checkpoint(engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


class Sealer:
    """Seals and opens the personal fields of events, with a bounded cache of keys."""

    def __init__(self, store: KeyStore, *, cache_size: int = 100_000) -> None:
        self.store = store
        self.cache_size = cache_size
        self._keys: OrderedDict[uuid.UUID, bytes | None] = OrderedDict()

    async def load(self, customer_ids: Iterable[uuid.UUID], *, create: bool = False) -> None:
        """Have the keys of these customers at hand (making them if ``create``) for seal and open."""
        missing = {i for i in customer_ids if i not in self._keys}
        if not missing:
            return
        found = await self.store.keys(missing, create=create)
        for customer_id, key in found.items():
            self._remember(customer_id, key)

    async def erase(self, customer_ids: Iterable[uuid.UUID], *, at: datetime) -> None:
        ids = set(customer_ids)
        await self.store.destroy(ids, at=at)
        for customer_id in ids:
            self._remember(customer_id, None)

    def forget(self, customer_id: uuid.UUID) -> None:
        """The customer was erased: their key is not to be used again by this process."""
        self._remember(customer_id, None)

    def _remember(self, customer_id: uuid.UUID, key: bytes | None) -> None:
        self._keys[customer_id] = key
        self._keys.move_to_end(customer_id)
        while len(self._keys) > self.cache_size:
            self._keys.popitem(last=False)

    def seal(self, event_type: str, data: dict[str, Any], customer_id: uuid.UUID) -> dict[str, Any]:
        """``data`` (JSON-ready) with its personal fields sealed; erased placeholders for an erased customer.

        The key must have been loaded (``load(..., create=True)``).
        """
        paths = personal_fields(event_type)
        if not paths:
            return data
        key = self._keys[customer_id]

        def seal_one(path: str, value: str) -> str:
            if key is None:
                return ERASED
            nonce = os.urandom(12)
            sealed = AESGCM(key).encrypt(nonce, value.encode(), _bound(customer_id, event_type, path))
            return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

        return _rewrite(data, paths, seal_one, erased=key is None)

    def open(self, event_type: str, data: dict[str, Any], customer_id: uuid.UUID) -> dict[str, Any]:
        """``data`` with its sealed fields opened, or erased placeholders where the key was destroyed.

        Raises ``KeyError`` if the customer's key was not loaded, ``SealedWithoutKey`` if the
        store has none, ``ValueError`` if a sealed value was tampered with.
        """
        paths = personal_fields(event_type)
        if not paths or not _any_sealed(data, paths):
            return data
        if customer_id not in self._keys:
            raise KeyError(customer_id)
        key = self._keys[customer_id]

        def open_one(path: str, value: str) -> str:
            if not value.startswith(PREFIX):
                return value
            if key is None:
                return ERASED
            text = value[len(PREFIX) :]
            try:
                raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except ValueError:
                raise ValueError(f"the sealed {path} is not base64") from None
            bound = _bound(customer_id, event_type, path)
            try:
                return AESGCM(key).decrypt(raw[:12], raw[12:], bound).decode()
            except InvalidTag:
                raise ValueError(
                    f"the sealed {path} does not open: altered, or not this customer's"
                ) from None

        return _rewrite(data, paths, open_one, erased=key is None)


def _bound(customer_id: uuid.UUID, event_type: str, path: str) -> bytes:
    return f"{customer_id}\n{event_type}\n{path}".encode()


def _any_sealed(data: dict[str, Any], paths: dict[str, bool]) -> bool:
    for path in paths:
        value = _get(data, path)
        if isinstance(value, str) and value.startswith(PREFIX):
            return True
    return False


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _rewrite(data: dict[str, Any], paths: dict[str, bool], change: Any, *, erased: bool) -> dict[str, Any]:
    result = dict(data)
    for path, required in paths.items():
        *parents, leaf = path.split(".")
        node = result
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                node = {}
                break
            node[part] = node = dict(child)
        value = node.get(leaf)
        if isinstance(value, str):
            node[leaf] = change(path, value) if required or not erased else None
    return result


def redacted(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its personal fields replaced by the erased placeholders (for retained copies)."""
    paths = personal_fields(event_type)
    return _rewrite(data, paths, lambda _path, _value: ERASED, erased=True) if paths else data


@cache
def personal_fields(event_type: str) -> dict[str, bool]:
    """The personal paths of an event type, each with whether the field is required (an ERASED
    placeholder stands in for a required one, None for an optional one)."""
    from shared.events import REGISTRY

    event_class = REGISTRY.get(event_type)
    if event_class is None:
        return {}
    return {path: _required(event_class, path) for path in event_class.personal}


def _required(model: type[BaseModel], path: str) -> bool:
    head, _, rest = path.partition(".")
    field = model.model_fields[head]
    if rest:
        nested = field.annotation
        assert isinstance(nested, type) and issubclass(nested, BaseModel), path
        return _required(nested, rest)
    return field.is_required()


def erasure_of(event: Event) -> uuid.UUID | None:
    """The customer an event erases, if it is an erasure."""
    return event.customer_id if isinstance(event, CustomerErased) else None
