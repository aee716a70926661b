"""Complaints by e-mail and a conversation on every complaint: customers' addresses, the messages of
each conversation (and the triage list of mail nobody could place), and the files mail brought.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_address",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "source", name="pk_customer_address"),
    )
    op.create_index("ix_customer_address_email", "customer_address", ["email"])
    op.create_table(
        "conversation_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=True),
        sa.Column("in_reply_to", sa.String(998), nullable=True),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("sender", sa.String(320), nullable=True),
        sa.Column("subject", sa.String(998), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("triage", sa.String(60), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversation_message"),
        sa.UniqueConstraint("message_id", name="uq_conversation_message_message_id"),
        sa.UniqueConstraint("complaint_id", "position", name="uq_conversation_message_complaint_id_position"),
    )
    op.create_index("ix_conversation_message_triage", "conversation_message", ["triage", "at", "id"])
    op.create_index("ix_conversation_message_customer_id", "conversation_message", ["customer_id"])
    op.create_table(
        "mail_attachment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mail_attachment"),
    )
    op.create_index("ix_mail_attachment_message_id", "mail_attachment", ["message_id"])
    op.create_index("ix_mail_attachment_customer_id", "mail_attachment", ["customer_id"])


def downgrade() -> None:
    op.drop_table("mail_attachment")
    op.drop_table("conversation_message")
    op.drop_table("customer_address")
