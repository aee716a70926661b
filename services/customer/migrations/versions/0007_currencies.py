"""Purchases in several currencies: the rate table, and each purchase as paid beside its conversion.

Purchases recorded before were all in the reporting currency: as paid is what was recorded, at rate 1.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_rate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reporting_currency", sa.String(3), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("effective_from", UtcDateTime(), nullable=False),
        sa.Column("stated_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_rate")),
    )
    op.create_index(
        "ix_exchange_rate_pair_from",
        "exchange_rate",
        ["reporting_currency", "currency", "effective_from"],
        unique=True,
    )
    # Added NOT NULL with defaults, then filled: no table is rebuilt (SQLite would have to drop
    # purchase, which refunds refer to). The defaults only stand for rows of before.
    for name, kind, default in (
        ("original_amount_minor", sa.BigInteger(), "0"),
        ("original_refunded_minor", sa.BigInteger(), "0"),
        ("original_currency", sa.String(3), ""),
        ("exchange_rate", sa.String(40), "1"),
    ):
        op.add_column("purchase", sa.Column(name, kind, nullable=False, server_default=default))
    op.add_column(
        "refund", sa.Column("original_amount_minor", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE purchase SET original_amount_minor = amount_minor, original_refunded_minor = refunded_minor,"
        " original_currency = currency, exchange_rate = '1'"
    )
    op.execute("UPDATE refund SET original_amount_minor = amount_minor")


def downgrade() -> None:
    # Dropped in place, for the same reason (alembic would rebuild the table on SQLite; 3.35+ can drop).
    op.execute("ALTER TABLE refund DROP COLUMN original_amount_minor")
    for name in ("exchange_rate", "original_currency", "original_refunded_minor", "original_amount_minor"):
        op.execute(f"ALTER TABLE purchase DROP COLUMN {name}")
    op.drop_index("ix_exchange_rate_pair_from", table_name="exchange_rate")
    op.drop_table("exchange_rate")
