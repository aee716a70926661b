"""The customer information base: full profiles, contacts, relationship record, refunds,
interactions, interests and consent, the 360 view's projections, erasures and imports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

SEARCH_KEY = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_view",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.Column("first_owner", sa.String(length=200), nullable=True),
        sa.Column("opened_at", UtcDateTime(), nullable=True),
        sa.Column("resolution_due_at", UtcDateTime(), nullable=True),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_complaint_view")),
    )
    with op.batch_alter_table("complaint_view", schema=None) as batch_op:
        batch_op.create_index("ix_complaint_view_customer_open", ["customer_id", "open"], unique=False)

    op.create_table(
        "erasure",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", UtcDateTime(), nullable=False),
        sa.Column("erased_by", sa.String(length=100), nullable=False),
        sa.Column("external_id_digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_erasure")),
    )
    with op.batch_alter_table("erasure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_erasure_external_id_digest"), ["external_id_digest"], unique=False
        )

    op.create_table(
        "import_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("already_imported", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_job")),
    )
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.create_index("ix_import_job_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "notification_view",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("playbook", sa.String(length=100), nullable=False),
        sa.Column("step", sa.String(length=100), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_notification_view")),
    )
    with op.batch_alter_table("notification_view", schema=None) as batch_op:
        batch_op.create_index("ix_notification_view_customer_sent", ["customer_id", "sent_at"], unique=False)

    op.create_table(
        "attachment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("caption", sa.String(length=200), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_attachment_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "consent",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_consent_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("customer_id", "channel", "purpose", name=op.f("pk_consent")),
    )
    op.create_table(
        "consent_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_consent_change_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_change")),
    )
    with op.batch_alter_table("consent_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_change_customer_changed", ["customer_id", "changed_at"], unique=False
        )

    op.create_table(
        "contact",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("backup_phone", sa.String(length=32), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_contact_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
    )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contact_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_contact_phone"), ["phone"], unique=False)

    op.create_table(
        "customer_tag",
        sa.Column("tag", sa.String(length=50), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_customer_tag_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("tag", "customer_id", name=op.f("pk_customer_tag")),
    )
    with op.batch_alter_table("customer_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_tag_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "import_chunk",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_job.id"], name=op.f("fk_import_chunk_job_id_import_job")
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_import_chunk")),
    )
    op.create_table(
        "import_rejection",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_job.id"], name=op.f("fk_import_rejection_job_id_import_job")
        ),
        sa.PrimaryKeyConstraint("job_id", "line", name=op.f("pk_import_rejection")),
    )
    op.create_table(
        "installation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("serial_number", sa.String(length=100), nullable=True),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("installed_at", UtcDateTime(), nullable=True),
        sa.Column("warranty_until", UtcDateTime(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_installation_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    with op.batch_alter_table("installation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_installation_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "interaction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("sentiment", sa.String(length=20), nullable=True),
        sa.Column("signal", sa.String(length=40), nullable=True),
        sa.Column("logged_by", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_interaction_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction")),
    )
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interaction_customer_occurred", ["customer_id", "occurred_at"], unique=False
        )

    op.create_table(
        "interest",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=50), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_interest_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("customer_id", "topic", name=op.f("pk_interest")),
    )
    op.create_table(
        "interest_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=50), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_interest_change_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interest_change")),
    )
    with op.batch_alter_table("interest_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interest_change_customer_changed", ["customer_id", "changed_at"], unique=False
        )

    op.create_table(
        "purchase_summary",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("spent_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("first_purchase_at", UtcDateTime(), nullable=True),
        sa.Column("last_purchase_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_purchase_summary_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_purchase_summary")),
    )
    op.create_table(
        "relationship_record",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("past_cooperation", sa.Text(), nullable=True),
        sa.Column("current_cooperation", sa.Text(), nullable=True),
        sa.Column("expected_cooperation", sa.Text(), nullable=True),
        sa.Column("competitors", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_relationship_record_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_relationship_record")),
    )
    op.create_table(
        "refund",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("refunded_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchase.id"], name=op.f("fk_refund_purchase_id_purchase")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund")),
    )
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refund_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_refund_purchase_reference", ["purchase_id", "reference"], unique=True)

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("name_key", SEARCH_KEY, nullable=False, server_default=""))
        batch_op.add_column(sa.Column("address", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("industry", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("company_size", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("acquisition_source", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("acquisition_channel", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("account_manager", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("customer_since", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("merged_into", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("segment", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("value_group", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("loyalty_stage", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("key_account", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("tier_changed_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("churn_risk", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("probability_alive", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("risk_changed_at", UtcDateTime(), nullable=True))
        batch_op.create_index(
            "ix_customer_account_manager_created_at", ["account_manager", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customer_backup_phone"), ["backup_phone"], unique=False)
        batch_op.create_index("ix_customer_name_key_id", ["name_key", "id"], unique=False)
        batch_op.create_index("ix_customer_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_customer_status_created_at", ["status", "created_at", "id"], unique=False)
        batch_op.create_index("ix_customer_tier_created_at", ["tier", "created_at", "id"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_customer_external_id"), ["external_id"])

    # Existing rows: their search key and "customer since"; then the defaults go, as in the models.
    op.execute("UPDATE customer SET name_key = lower(name), customer_since = created_at")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.alter_column("customer_since", existing_type=UtcDateTime(), nullable=False)
        batch_op.alter_column("name_key", existing_type=SEARCH_KEY, server_default=None)
        batch_op.alter_column("tags", existing_type=sa.JSON(), server_default=None)
        batch_op.alter_column("key_account", existing_type=sa.Boolean(), server_default=None)

    with op.batch_alter_table("purchase", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("line_items", sa.JSON(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_purchase_customer_id"))
        batch_op.create_index(
            "ix_purchase_customer_history",
            ["customer_id", "purchased_at", "amount_minor", "refunded_minor"],
            unique=False,
        )
        batch_op.alter_column("refunded_minor", existing_type=sa.BigInteger(), server_default=None)
        # The database itself refuses a refund beyond what was paid, whatever races the code loses.
        batch_op.create_check_constraint(
            op.f("ck_purchase_refund_within_amount"), "refunded_minor >= 0 AND refunded_minor <= amount_minor"
        )


def downgrade() -> None:
    with op.batch_alter_table("purchase", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_purchase_refund_within_amount"), type_="check")
        batch_op.drop_index("ix_purchase_customer_history")
        batch_op.create_index(batch_op.f("ix_purchase_customer_id"), ["customer_id"], unique=False)
        batch_op.drop_column("line_items")
        batch_op.drop_column("refunded_minor")

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_customer_external_id"), type_="unique")
        batch_op.drop_index("ix_customer_tier_created_at")
        batch_op.drop_index("ix_customer_status_created_at")
        batch_op.drop_index("ix_customer_created_at_id")
        batch_op.drop_index("ix_customer_name_key_id")
        batch_op.drop_index(batch_op.f("ix_customer_backup_phone"))
        batch_op.drop_index("ix_customer_account_manager_created_at")
        batch_op.drop_column("risk_changed_at")
        batch_op.drop_column("probability_alive")
        batch_op.drop_column("churn_risk")
        batch_op.drop_column("tier_changed_at")
        batch_op.drop_column("key_account")
        batch_op.drop_column("loyalty_stage")
        batch_op.drop_column("value_group")
        batch_op.drop_column("segment")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("customer_since")
        batch_op.drop_column("notes")
        batch_op.drop_column("account_manager")
        batch_op.drop_column("tags")
        batch_op.drop_column("acquisition_channel")
        batch_op.drop_column("acquisition_source")
        batch_op.drop_column("company_size")
        batch_op.drop_column("industry")
        batch_op.drop_column("address")
        batch_op.drop_column("name_key")
        batch_op.drop_column("external_id")

    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.drop_index("ix_refund_purchase_reference")
        batch_op.drop_index(batch_op.f("ix_refund_customer_id"))

    op.drop_table("refund")
    op.drop_table("relationship_record")
    op.drop_table("purchase_summary")
    with op.batch_alter_table("interest_change", schema=None) as batch_op:
        batch_op.drop_index("ix_interest_change_customer_changed")

    op.drop_table("interest_change")
    op.drop_table("interest")
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_customer_occurred")

    op.drop_table("interaction")
    with op.batch_alter_table("installation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_installation_customer_id"))

    op.drop_table("installation")
    op.drop_table("import_rejection")
    op.drop_table("import_chunk")
    with op.batch_alter_table("customer_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_tag_customer_id"))

    op.drop_table("customer_tag")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_phone"))
        batch_op.drop_index(batch_op.f("ix_contact_email"))
        batch_op.drop_index(batch_op.f("ix_contact_customer_id"))

    op.drop_table("contact")
    with op.batch_alter_table("consent_change", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_change_customer_changed")

    op.drop_table("consent_change")
    op.drop_table("consent")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_customer_id"))

    op.drop_table("attachment")
    with op.batch_alter_table("notification_view", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_view_customer_sent")

    op.drop_table("notification_view")
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_index("ix_import_job_status_created")

    op.drop_table("import_job")
    with op.batch_alter_table("erasure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasure_external_id_digest"))

    op.drop_table("erasure")
    with op.batch_alter_table("complaint_view", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_view_customer_open")

    op.drop_table("complaint_view")
