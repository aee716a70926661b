"""Policy as data, cut points, the purchase ledger, behaviour signals, and the full assessment per customer.

Existing customers keep their figures: lifetime figures start from them, and their stage is
derived from how often they bought; the next batch scores them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import shared.db
from services.segmentation.policy import DEFAULT_POLICY
from shared.db import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "behaviour_signal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("occurred_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("cause_event_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behaviour_signal")),
    )
    with op.batch_alter_table("behaviour_signal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_behaviour_signal_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_behaviour_signal_occurred_at"), ["occurred_at"], unique=False)

    op.create_table(
        "cut_points",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.JSON(), nullable=False),
        sa.Column("frequency", sa.JSON(), nullable=False),
        sa.Column("monetary_minor", sa.JSON(), nullable=False),
        sa.Column("abc_a_min_minor", sa.BigInteger(), nullable=True),
        sa.Column("abc_b_min_minor", sa.BigInteger(), nullable=True),
        sa.Column("top_share_of_revenue", sa.Float(), nullable=True),
        sa.Column("bgnbd", sa.JSON(), nullable=True),
        sa.Column("window_start", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("computed_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_cut_points")),
    )
    op.create_table(
        "policy_version",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(length=200), nullable=True),
        sa.Column("applied_at", shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_version")),
    )
    op.create_table(
        "purchase",
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("purchased_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("fully_refunded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("purchase_id", name=op.f("pk_purchase")),
    )
    with op.batch_alter_table("purchase", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchase_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_purchase_purchased_at"), ["purchased_at"], unique=False)

    op.create_table(
        "segmentation_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("cut_points_version", sa.Integer(), nullable=False),
        sa.Column("window_start", shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("next_recompute_at", shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segmentation_state")),
    )
    with op.batch_alter_table("customer_segment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lifetime_frequency", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("lifetime_monetary_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("engaged", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("last_nps", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_csat", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("signal_points", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("key_account", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("key_account_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("key_account_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("key_account_at", shared.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("initial_tier", sa.String(length=20), nullable=False, server_default="lead")
        )
        batch_op.add_column(sa.Column("recency_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("frequency_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("monetary_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rfm_segment", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("abc_class", sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column("value_group", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("stage", sa.String(length=30), nullable=False, server_default="suspicion")
        )
        batch_op.add_column(sa.Column("risk", sa.String(length=20), nullable=False, server_default="low"))
        batch_op.add_column(
            sa.Column("risk_reason", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("cut_points_version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "created_at",
                shared.db.UtcDateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )

    with op.batch_alter_table("tier_change", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("changed", sa.String(length=100), nullable=False, server_default="tier")
        )
        batch_op.add_column(sa.Column("previous_segment", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("segment", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("previous_stage", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("stage", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("previous_risk", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("risk", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("key_account", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("cut_points_version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.alter_column(
            "reason",
            existing_type=sa.VARCHAR(length=300),
            type_=sa.String(length=500),
            existing_nullable=False,
        )
        batch_op.create_index(batch_op.f("ix_tier_change_changed_at"), ["changed_at"], unique=False)

    op.execute(
        "UPDATE customer_segment SET lifetime_frequency = frequency, lifetime_monetary_minor = monetary_minor"
    )
    op.execute(
        "UPDATE customer_segment SET stage = CASE WHEN frequency >= 2 THEN 'repeat_buyer' "
        "WHEN frequency = 1 THEN 'first_time_buyer' ELSE 'suspicion' END"
    )
    op.execute("UPDATE customer_segment SET initial_tier = 'lead'")
    # Version 1 of the policy is the default of the release that created the database; the
    # state row names it, so there is always a policy in force and no race to create one.
    now = datetime.now(UTC)
    policy_version = sa.table(
        "policy_version",
        sa.column("version", sa.Integer),
        sa.column("document", sa.JSON),
        sa.column("note", sa.String),
        sa.column("created_by", sa.String),
        sa.column("created_at", UtcDateTime),
        sa.column("applied_by", sa.String),
        sa.column("applied_at", UtcDateTime),
    )
    op.bulk_insert(
        policy_version,
        [
            {
                "version": 1,
                "document": DEFAULT_POLICY.model_dump(mode="json"),
                "note": "the default policy",
                "created_by": "system",
                "created_at": now,
                "applied_by": "system",
                "applied_at": now,
            }
        ],
    )
    state = sa.table(
        "segmentation_state",
        sa.column("id", sa.Integer),
        sa.column("policy_version", sa.Integer),
        sa.column("cut_points_version", sa.Integer),
        sa.column("updated_at", UtcDateTime),
    )
    op.bulk_insert(state, [{"id": 1, "policy_version": 1, "cut_points_version": 0, "updated_at": now}])


def downgrade() -> None:
    with op.batch_alter_table("tier_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tier_change_changed_at"))
        batch_op.alter_column(
            "reason",
            existing_type=sa.String(length=500),
            type_=sa.VARCHAR(length=300),
            existing_nullable=False,
        )
        batch_op.drop_column("cut_points_version")
        batch_op.drop_column("key_account")
        batch_op.drop_column("risk")
        batch_op.drop_column("previous_risk")
        batch_op.drop_column("stage")
        batch_op.drop_column("previous_stage")
        batch_op.drop_column("segment")
        batch_op.drop_column("previous_segment")
        batch_op.drop_column("changed")

    with op.batch_alter_table("customer_segment", schema=None) as batch_op:
        batch_op.drop_column("created_at")
        batch_op.drop_column("cut_points_version")
        batch_op.drop_column("risk_reason")
        batch_op.drop_column("risk")
        batch_op.drop_column("stage")
        batch_op.drop_column("value_group")
        batch_op.drop_column("abc_class")
        batch_op.drop_column("rfm_segment")
        batch_op.drop_column("monetary_score")
        batch_op.drop_column("frequency_score")
        batch_op.drop_column("recency_score")
        batch_op.drop_column("initial_tier")
        batch_op.drop_column("key_account_at")
        batch_op.drop_column("key_account_reason")
        batch_op.drop_column("key_account_by")
        batch_op.drop_column("key_account")
        batch_op.drop_column("signal_points")
        batch_op.drop_column("last_csat")
        batch_op.drop_column("last_nps")
        batch_op.drop_column("engaged")
        batch_op.drop_column("lifetime_monetary_minor")
        batch_op.drop_column("lifetime_frequency")

    op.drop_table("segmentation_state")
    with op.batch_alter_table("purchase", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_purchased_at"))
        batch_op.drop_index(batch_op.f("ix_purchase_customer_id"))

    op.drop_table("purchase")
    op.drop_table("policy_version")
    op.drop_table("cut_points")
    with op.batch_alter_table("behaviour_signal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_behaviour_signal_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_behaviour_signal_customer_id"))

    op.drop_table("behaviour_signal")
