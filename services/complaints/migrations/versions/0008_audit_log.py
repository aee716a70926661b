"""The audit log: who changed what and when, append-only (shared.audit).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from shared.audit import create_audit_table_v1, drop_audit_table_v1

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_table_v1()


def downgrade() -> None:
    drop_audit_table_v1()
