"""The outbox indexed by key (the customer id), so that erasure finds a customer's events at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from shared.messaging import add_outbox_key_index_v2, drop_outbox_key_index_v2

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_key_index_v2()


def downgrade() -> None:
    drop_outbox_key_index_v2()
