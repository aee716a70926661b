"""Complaints, the tier projection and the messaging tables.

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
        "complaint",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("first_owner", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint"),
    )
    op.create_index("ix_complaint_customer_id", "complaint", ["customer_id"])
    op.create_index("ix_complaint_first_owner", "complaint", ["first_owner"])
    op.create_table(
        "customer_tier",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("key_account", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_tier"),
    )


def downgrade() -> None:
    op.drop_table("customer_tier")
    op.drop_index("ix_complaint_first_owner", table_name="complaint")
    op.drop_index("ix_complaint_customer_id", table_name="complaint")
    op.drop_table("complaint")
    drop_messaging_tables_v1()
