"""Customer segments, tier changes and the messaging tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime
from shared.messaging import create_messaging_tables_v1, drop_messaging_tables_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables_v1()
    op.create_table(
        "customer_segment",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary_minor", sa.BigInteger(), nullable=False),
        sa.Column("first_purchase_at", UtcDateTime(), nullable=True),
        sa.Column("last_purchase_at", UtcDateTime(), nullable=True),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("tier_rule", sa.String(200), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_segment"),
    )
    op.create_table(
        "tier_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("previous_tier", sa.String(20), nullable=True),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("cause_event_id", sa.Uuid(), nullable=True),
        sa.Column("cause_event_type", sa.String(100), nullable=True),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tier_change"),
    )
    op.create_index("ix_tier_change_customer_id", "tier_change", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_tier_change_customer_id", table_name="tier_change")
    op.drop_table("tier_change")
    op.drop_table("customer_segment")
    drop_messaging_tables_v1()
