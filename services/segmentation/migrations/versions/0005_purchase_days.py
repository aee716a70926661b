"""Purchase days per customer: the transactions of the buying models (several orders on one day are one).

Counted from the ledger (UTC days, purchases refunded in full left out); a customer whose purchases
the ledger does not hold keeps their purchase count.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _day(moment: datetime) -> object:
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


def upgrade() -> None:
    with op.batch_alter_table("customer_segment") as batch_op:
        batch_op.add_column(sa.Column("purchase_days", sa.Integer(), nullable=False, server_default="0"))
    connection = op.get_bind()
    purchase = sa.table(
        "purchase",
        sa.column("customer_id", sa.Uuid()),
        sa.column("purchased_at", UtcDateTime()),
        sa.column("fully_refunded", sa.Boolean()),
    )
    days: dict[object, set[object]] = {}
    for customer_id, moment in connection.execute(
        sa.select(purchase.c.customer_id, purchase.c.purchased_at).where(purchase.c.fully_refunded.is_(False))
    ):
        days.setdefault(customer_id, set()).add(_day(moment))
    segment = sa.table(
        "customer_segment",
        sa.column("customer_id", sa.Uuid()),
        sa.column("purchase_days", sa.Integer()),
        sa.column("lifetime_frequency", sa.Integer()),
    )
    if days:
        connection.execute(
            segment.update().where(segment.c.customer_id == sa.bindparam("key")),
            [{"key": key, "purchase_days": len(found)} for key, found in days.items()],
        )
    connection.execute(
        segment.update()
        .where(segment.c.purchase_days == 0, segment.c.lifetime_frequency > 0)
        .values(purchase_days=segment.c.lifetime_frequency)
    )


def downgrade() -> None:
    with op.batch_alter_table("customer_segment") as batch_op:
        batch_op.drop_column("purchase_days")
