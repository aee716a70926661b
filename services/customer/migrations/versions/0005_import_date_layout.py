"""An import job remembers how its file writes dates: a declared layout and a zone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_job") as table:
        table.add_column(sa.Column("date_format", sa.String(100), nullable=True))
        table.add_column(sa.Column("time_zone", sa.String(60), nullable=False, server_default="UTC"))


def downgrade() -> None:
    with op.batch_alter_table("import_job") as table:
        table.drop_column("time_zone")
        table.drop_column("date_format")
