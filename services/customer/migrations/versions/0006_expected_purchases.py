"""The 360 view shows the purchases segmentation's buying model expects, beside P(alive).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as table:
        table.add_column(sa.Column("expected_purchases", sa.Float(), nullable=True))
        table.add_column(sa.Column("expected_purchases_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    # In place: rebuilding customer (as alembic would on SQLite) fails while purchases refer to it.
    op.execute("ALTER TABLE customer DROP COLUMN expected_purchases_days")
    op.execute("ALTER TABLE customer DROP COLUMN expected_purchases")
