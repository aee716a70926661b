"""Dead letters kept in the database too, so that they outlive the broker's log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from shared.messaging import create_dead_letter_v3, drop_dead_letter_v3

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_dead_letter_v3()


def downgrade() -> None:
    drop_dead_letter_v3()
