"""Playbooks as data, channels with delivery state, staff tasks, and notify's projections.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns the notification table gains; existing rows (all sent in-app messages) get these values.
_NOTIFICATION_COLUMNS: tuple[tuple[sa.Column[Any], Any], ...] = (
    (sa.Column("step", sa.String(60), nullable=False), sa.text("''")),
    (sa.Column("playbook_version", sa.Integer(), nullable=False), sa.text("0")),
    (sa.Column("candidates", sa.JSON(), nullable=False), sa.text("'[\"in_app\"]'")),
    (sa.Column("language", sa.String(35), nullable=False), sa.text("'en'")),
    (sa.Column("urgent", sa.Boolean(), nullable=False), sa.false()),
    (sa.Column("attempts", sa.Integer(), nullable=False), sa.text("1")),
)
_NULLABLE_NOTIFICATION_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("webhook", sa.String(63), nullable=True),
    sa.Column("sms_text", sa.String(500), nullable=True),
    sa.Column("announcement_id", sa.Uuid(), nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("claim", sa.Uuid(), nullable=True),
    sa.Column("destination", sa.String(320), nullable=True),
    sa.Column("provider_reference", sa.String(200), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("failed_at", UtcDateTime(), nullable=True),
    sa.Column("read_at", UtcDateTime(), nullable=True),
)


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=True),
        sa.Column("region", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("account_manager", sa.String(200), nullable=True),
        sa.Column("tier", sa.String(20), nullable=True),
        sa.Column("key_account", sa.Boolean(), nullable=False),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("stage", sa.String(30), nullable=True),
        sa.Column("risk", sa.String(20), nullable=True),
        sa.Column("profile_at", UtcDateTime(), nullable=True),
        sa.Column("interests_at", UtcDateTime(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("customer_id", name="pk_contact"),
    )
    op.create_index("ix_contact_key_account", "contact", ["key_account"])
    op.create_table(
        "interest",
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "customer_id", name="pk_interest"),
    )
    op.create_index("ix_interest_customer_id", "interest", ["customer_id"])
    op.create_table(
        "consent",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "channel", "purpose", name="pk_consent"),
    )
    op.create_table(
        "preference",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("customer_id", name="pk_preference"),
    )
    op.create_table(
        "complaint_ref",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("first_owner", sa.String(200), nullable=True),
        sa.Column("category", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_at", UtcDateTime(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_complaint_ref"),
    )
    op.create_index("ix_complaint_ref_customer_id", "complaint_ref", ["customer_id"])
    op.create_table(
        "playbook_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_playbook_version"),
        sa.UniqueConstraint("key", "version", name="uq_playbook_version_key_version"),
    )
    op.create_table(
        "policy_version",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_policy_version"),
    )
    op.create_table(
        "playbook_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("playbook", sa.String(60), nullable=False),
        sa.Column("playbook_version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("cause_event_id", sa.Uuid(), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(300), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_playbook_run"),
        sa.UniqueConstraint("run_key", name="uq_playbook_run_run_key"),
    )
    op.create_index("ix_playbook_run_customer_id", "playbook_run", ["customer_id"])
    op.create_index("ix_playbook_run_state_due", "playbook_run", ["state", "due_at"])
    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("playbook", sa.String(60), nullable=False),
        sa.Column("step", sa.String(60), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("assignee_role", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.Column("completed_by", sa.String(200), nullable=True),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("cause_event_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task"),
        sa.UniqueConstraint("idempotency_key", name="uq_task_idempotency_key"),
    )
    for column in ("assignee", "customer_id", "due_at", "status"):
        op.create_index(f"ix_task_{column}", "task", [column])
    op.create_table(
        "announcement",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("playbook", sa.String(60), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("matched_through", sa.Uuid(), nullable=True),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("matched_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_announcement"),
    )
    op.create_index("ix_announcement_state", "announcement", ["state"])
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoint"),
        sa.UniqueConstraint("name", name="uq_webhook_endpoint_name"),
    )
    op.create_table(
        "schedule_mark",
        sa.Column("playbook", sa.String(60), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("checked_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("playbook", name="pk_schedule_mark"),
    )

    with op.batch_alter_table("notification") as batch:
        for added, fill in _NOTIFICATION_COLUMNS:
            added.server_default = sa.DefaultClause(fill)
            batch.add_column(added)
        for added in _NULLABLE_NOTIFICATION_COLUMNS:
            batch.add_column(added)
        batch.add_column(sa.Column("due_at", UtcDateTime(), nullable=True))
    op.execute("UPDATE notification SET due_at = created_at")
    with op.batch_alter_table("notification") as batch:
        batch.alter_column("due_at", existing_type=UtcDateTime(), nullable=False)
        for added, _ in _NOTIFICATION_COLUMNS:
            batch.alter_column(added.name, existing_type=added.type, server_default=None)
        batch.create_index("ix_notification_status_due", ["status", "due_at"])
        batch.create_index("ix_notification_announcement_id", ["announcement_id"])


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_index("ix_notification_announcement_id")
        batch.drop_index("ix_notification_status_due")
        for column in (
            "due_at",
            *(c.name for c in _NULLABLE_NOTIFICATION_COLUMNS),
            *(c.name for c, _ in _NOTIFICATION_COLUMNS),
        ):
            batch.drop_column(column)
    op.drop_table("schedule_mark")
    op.drop_table("webhook_endpoint")
    op.drop_index("ix_announcement_state", table_name="announcement")
    op.drop_table("announcement")
    for column in ("assignee", "customer_id", "due_at", "status"):
        op.drop_index(f"ix_task_{column}", table_name="task")
    op.drop_table("task")
    op.drop_index("ix_playbook_run_state_due", table_name="playbook_run")
    op.drop_index("ix_playbook_run_customer_id", table_name="playbook_run")
    op.drop_table("playbook_run")
    op.drop_table("policy_version")
    op.drop_table("playbook_version")
    op.drop_index("ix_complaint_ref_customer_id", table_name="complaint_ref")
    op.drop_table("complaint_ref")
    op.drop_table("preference")
    op.drop_table("consent")
    op.drop_index("ix_interest_customer_id", table_name="interest")
    op.drop_table("interest")
    op.drop_index("ix_contact_key_account", table_name="contact")
    op.drop_table("contact")
