"""The tables every service's database has for its events: outbox, inbox, bus state, dead letters.

They are Core tables, defined once here; each service's migrations create them through
``create_messaging_tables_v1`` and its Alembic env compares against ``MESSAGING_METADATA``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import BigIntegerKey, RawWrite, UtcDateTime, service_metadata

MESSAGING_METADATA = service_metadata()

outbox_message = sa.Table(
    "outbox_message",
    MESSAGING_METADATA,
    sa.Column("seq", BigIntegerKey, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("published_at", UtcDateTime(), nullable=True),
    sa.Index(
        "ix_outbox_message_pending",
        "seq",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
    sa.Index("ix_outbox_message_created_at", "created_at"),
    # Erasure finds a customer's events still held (their key is the customer id).
    sa.Index("ix_outbox_message_key", "key"),
)

inbox_message = sa.Table(
    "inbox_message",
    MESSAGING_METADATA,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.Uuid(), primary_key=True),
    sa.Column("processed_at", UtcDateTime(), nullable=False),
    sa.Index("ix_inbox_message_processed_at", "processed_at"),
)

bus_state = sa.Table(
    "bus_state",
    MESSAGING_METADATA,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# What a consumer gave up on, kept here as well as on its dead-letter topic: a broker that loses
# its log loses the topic, and an operator replays from here (see ``shared.dead_letters``).
dead_letter = sa.Table(
    "dead_letter",
    MESSAGING_METADATA,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("consumer", sa.String(100), nullable=False),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("partition", sa.Integer(), nullable=False),
    sa.Column("offset", sa.BigInteger(), nullable=False),
    sa.Column("key", sa.LargeBinary(), nullable=True),
    sa.Column("value", sa.LargeBinary(), nullable=True),
    # The record's headers as [name, base64 value] pairs, in their order.
    sa.Column("headers", sa.JSON(), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("replayed_at", UtcDateTime(), nullable=True),
    sa.Column("replay_error", sa.Text(), nullable=True),
    sa.Index("ix_dead_letter_created_at", "created_at", "id"),
)


_INBOX_INSERT = RawWrite(inbox_message, ["consumer", "event_id", "processed_at"])
_OUTBOX_INSERT = RawWrite(outbox_message, ["event_id", "topic", "key", "event_type", "body", "created_at"])


async def write_inbox(
    session: AsyncSession, *, consumer: str, event_ids: Sequence[uuid.UUID], at: datetime
) -> None:
    """Record that ``consumer`` applied these events (one ``executemany``)."""
    await _INBOX_INSERT.run(session, [(consumer, each, at) for each in event_ids])


async def write_outbox(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, str, str, str, bytes]], *, at: datetime
) -> None:
    """Add events to the outbox: (event id, topic, key, event type, body) each (one ``executemany``)."""
    await _OUTBOX_INSERT.run(session, [(*row, at) for row in rows])


def create_messaging_tables_v1() -> None:
    """Migration step: create the messaging tables as they were in version 1."""
    op.create_table(
        "outbox_message",
        sa.Column("seq", BigIntegerKey, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox_message"),
        sa.UniqueConstraint("event_id", name="uq_outbox_message_event_id"),
    )
    op.create_index(
        "ix_outbox_message_pending",
        "outbox_message",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_outbox_message_created_at", "outbox_message", ["created_at"])
    op.create_table(
        "inbox_message",
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox_message"),
    )
    op.create_index("ix_inbox_message_processed_at", "inbox_message", ["processed_at"])
    op.create_table(
        "bus_state",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_bus_state"),
    )


def drop_messaging_tables_v1() -> None:
    op.drop_table("bus_state")
    op.drop_index("ix_inbox_message_processed_at", table_name="inbox_message")
    op.drop_table("inbox_message")
    op.drop_index("ix_outbox_message_created_at", table_name="outbox_message")
    op.drop_index("ix_outbox_message_pending", table_name="outbox_message")
    op.drop_table("outbox_message")


def add_outbox_key_index_v2() -> None:
    """Migration step (version 2): index the outbox by key, so erasure finds a customer's events at once."""
    op.create_index("ix_outbox_message_key", "outbox_message", ["key"])


def drop_outbox_key_index_v2() -> None:
    op.drop_index("ix_outbox_message_key", table_name="outbox_message")


def create_dead_letter_v3() -> None:
    """Migration step (version 3): dead letters kept in the service's database."""
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("replayed_at", UtcDateTime(), nullable=True),
        sa.Column("replay_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letter"),
    )
    op.create_index("ix_dead_letter_created_at", "dead_letter", ["created_at", "id"])


def drop_dead_letter_v3() -> None:
    op.drop_index("ix_dead_letter_created_at", table_name="dead_letter")
    op.drop_table("dead_letter")
