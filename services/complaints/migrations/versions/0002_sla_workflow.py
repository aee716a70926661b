"""The workflow, SLA clocks, escalation, compensation, surveys, the policy and idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COMPLAINT_COLUMNS = (
    "steps",
    "desired_outcome",
    "attachments",
    "assignee",
    "source",
    "opened_at",
    "tier",
    "key_account",
    "policy_version",
    "cycle",
    "visit_required",
    "visited_at",
    "first_response_at",
    "escalation_level",
    "escalation_due_at",
    "escalated_at",
    "next_check_at",
    "resolved_at",
    "closed_at",
    "resolution_summary",
    "root_cause",
    "first_contact_resolution",
    "within_sla",
    "compensation_minor",
    "reopen_count",
    "erased_at",
)


def upgrade() -> None:
    with op.batch_alter_table("complaint") as batch:
        batch.add_column(sa.Column("steps", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("desired_outcome", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("assignee", sa.String(200), nullable=True))
        batch.add_column(sa.Column("source", sa.String(200), nullable=False, server_default="api"))
        batch.add_column(sa.Column("opened_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("tier", sa.String(20), nullable=True))
        batch.add_column(sa.Column("key_account", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("policy_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cycle", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("visit_required", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("visited_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("first_response_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("escalation_due_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("escalated_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("next_check_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("resolved_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("closed_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("resolution_summary", sa.Text(), nullable=True))
        batch.add_column(sa.Column("root_cause", sa.String(100), nullable=True))
        batch.add_column(sa.Column("first_contact_resolution", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("within_sla", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("compensation_minor", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("erased_at", UtcDateTime(), nullable=True))
    # Complaints taken before this version were opened when they were stored.
    op.execute("UPDATE complaint SET opened_at = created_at")
    with op.batch_alter_table("complaint") as batch:
        batch.alter_column("opened_at", existing_type=UtcDateTime(), nullable=False)
        batch.create_index("ix_complaint_assignee", ["assignee"])
        batch.create_index("ix_complaint_root_cause", ["root_cause"])
        batch.create_index("ix_complaint_opened_at", ["opened_at", "id"])
        batch.create_index(
            "ix_complaint_next_check_at",
            ["next_check_at"],
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
        )

    op.create_table(
        "complaint_transition",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(30), nullable=True),
        sa.Column("to_status", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_transition"),
        sa.UniqueConstraint("complaint_id", "step", name="uq_complaint_transition_complaint_id_step"),
    )
    op.create_table(
        "sla_clock",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("calendar", sa.String(60), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("warn_at", UtcDateTime(), nullable=True),
        sa.Column("warned_at", UtcDateTime(), nullable=True),
        sa.Column("breached_at", UtcDateTime(), nullable=True),
        sa.Column("met_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("complaint_id", "cycle", "target", name="pk_sla_clock"),
    )
    op.create_table(
        "complaint_escalation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("level_name", sa.String(60), nullable=False),
        sa.Column("must_act", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_escalation"),
        sa.UniqueConstraint("complaint_id", "level", name="uq_complaint_escalation_complaint_id_level"),
    )
    op.create_table(
        "compensation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_role", sa.String(20), nullable=False),
        sa.Column("requested_at", UtcDateTime(), nullable=False),
        sa.Column("requires_role", sa.String(20), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_compensation"),
    )
    op.create_index("ix_compensation_complaint_id", "compensation", ["complaint_id", "requested_at", "id"])
    op.create_index("ix_compensation_status", "compensation", ["status", "requested_at", "id"])
    op.create_table(
        "survey",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=False),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("poor", sa.Boolean(), nullable=False),
        sa.Column("answered_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_survey"),
        sa.UniqueConstraint("complaint_id", "cycle", name="uq_survey_complaint_id_cycle"),
    )
    op.create_index("ix_survey_answered_at", "survey", ["answered_at"])
    op.create_table(
        "complaint_policy",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_complaint_policy"),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_key"),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])
    op.create_index("ix_idempotency_key_resource_id", "idempotency_key", ["resource_id"])


def downgrade() -> None:
    op.drop_table("idempotency_key")
    op.drop_table("complaint_policy")
    op.drop_table("survey")
    op.drop_table("compensation")
    op.drop_table("complaint_escalation")
    op.drop_table("sla_clock")
    op.drop_table("complaint_transition")
    with op.batch_alter_table("complaint") as batch:
        for index in (
            "ix_complaint_next_check_at",
            "ix_complaint_opened_at",
            "ix_complaint_root_cause",
            "ix_complaint_assignee",
        ):
            batch.drop_index(index)
        for column in reversed(NEW_COMPLAINT_COLUMNS):
            batch.drop_column(column)
