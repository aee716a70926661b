"""The 360 read model: each customer's view stored as answered, built here for the customers there are.

The documents are built with the service's own code (``view_model.rebuild``) and the settings of the
environment the migration runs in; a service configured otherwise builds its own as it reads (the
fingerprint tells them apart). A later migration that changes a table the view reads must not let
this one read it with newer models: it raises ``DOCUMENT_VERSION`` and builds the documents itself.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.customer import view_model
from services.customer.settings import CustomerSettings
from services.customer.view import View

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "view_document",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(40), nullable=False),
        sa.Column("fingerprint", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_view_document")),
    )
    settings = CustomerSettings()
    view = View(settings, settings.common.currency)
    connection = op.get_bind()
    after = None
    while True:
        ids = list(connection.scalars(view_model.missing(BATCH, view.fingerprint, after)).all())
        view_model.rebuild(connection, view, ids)
        if len(ids) < BATCH:
            return
        after = ids[-1]


def downgrade() -> None:
    op.drop_table("view_document")
