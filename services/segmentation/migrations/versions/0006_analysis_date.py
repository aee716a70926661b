"""An analysis date ("as of") that a recompute pins, and what each cut-points version covered.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segmentation_state") as table:
        table.add_column(sa.Column("as_of", UtcDateTime(), nullable=True))
    with op.batch_alter_table("cut_points") as table:
        table.add_column(sa.Column("as_of", UtcDateTime(), nullable=True))
        table.add_column(sa.Column("dormant", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("revenue_shares", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cut_points") as table:
        table.drop_column("revenue_shares")
        table.drop_column("dormant")
        table.drop_column("as_of")
    with op.batch_alter_table("segmentation_state") as table:
        table.drop_column("as_of")
