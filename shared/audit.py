"""The audit log: who changed what and when, kept by each service in its own database, append-only.

Code that changes something the log covers (a policy, a playbook, a compensation, a key-account
designation, an erasure, a merge, a setting that decides who may do what or what money means)
calls ``record(session, actor=..., action=..., ...)`` in the same transaction as the change, so
an entry exists exactly when the change committed.

An entry holds the actor (the token's subject and role), the time, the action, the subject and
the subject's state before and after. What names a person is not kept: an erasure or a merge
records ids and which fields changed (``changed_fields``), never their values, so erasing a
customer never has to touch the log — and cannot, since the database refuses UPDATE and DELETE
on it (a trigger on PostgreSQL and SQLite alike).

``audit_router()`` answers ``GET /audit`` (JSON pages, newest first) and ``GET /audit.csv`` (or
``Accept: text/csv``) to managers and admins only; there is no route that changes an entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from alembic import op
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Manager, Principal
from shared.clock import UtcDatetime
from shared.db import UtcDateTime, ordered_id, service_metadata, utcnow
from shared.deps import ReadSessionDep
from shared.pagination import CursorParam, Limit, Page, keyset_page
from shared.spreadsheet import csv_text, read_csv

AUDIT_METADATA = service_metadata()

audit_entry = sa.Table(
    "audit_entry",
    AUDIT_METADATA,
    # Time-ordered (UUID v7): entries of one transaction share a time and keep their order.
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("actor_role", sa.String(30), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("subject_type", sa.String(100), nullable=False),
    sa.Column("subject_id", sa.String(200), nullable=False),
    sa.Column("before", sa.JSON(), nullable=True),
    sa.Column("after", sa.JSON(), nullable=True),
    sa.Index("ix_audit_entry_at", "at", "id"),
    sa.Index("ix_audit_entry_actor", "actor"),
    sa.Index("ix_audit_entry_subject", "subject_type", "subject_id"),
)


def add_to(metadata: sa.MetaData) -> sa.Table:
    """The audit table in a service's own metadata, so that its migrations are checked against it."""
    return audit_entry.to_metadata(metadata)


def _json(value: object) -> Any:
    """``value`` as plain JSON (models, times, ids, decimals become what their JSON says)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return orjson.loads(orjson.dumps(value, default=_default))


def _default(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def changed_fields(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    """The names of the fields whose values differ, for changes whose values are personal data."""
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


async def record(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    subject_type: str,
    subject_id: object,
    before: object = None,
    after: object = None,
    at: datetime | None = None,
) -> uuid.UUID:
    """Write one entry in the session's transaction: it commits, or rolls back, with the change."""
    entry_id = ordered_id()
    await session.execute(
        audit_entry.insert().values(
            id=entry_id,
            at=at or utcnow(),
            # Within the columns' bounds, as other tables keep a subject (a token's may be longer).
            actor=actor.subject[:200],
            actor_role=actor.role.value,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id)[:200],
            before=_json(before),
            after=_json(after),
        )
    )
    return entry_id


# -- migration steps --------------------------------------------------------------------------

_REFUSE = "audit entries are append-only"


def create_audit_table_v1() -> None:
    """Migration step: the audit table, and triggers refusing to change or delete an entry."""
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(30), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject_type", sa.String(100), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_entry"),
    )
    op.create_index("ix_audit_entry_at", "audit_entry", ["at", "id"])
    op.create_index("ix_audit_entry_actor", "audit_entry", ["actor"])
    op.create_index("ix_audit_entry_subject", "audit_entry", ["subject_type", "subject_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
            "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
        )
        # TRUNCATE bypasses row triggers; refuse it too.
        op.execute(
            "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
        )
    else:
        for kind in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_entry_no_{kind.lower()} BEFORE {kind} ON audit_entry "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
            )


def drop_audit_table_v1() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entry_no_truncate ON audit_entry")
        op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION audit_entry_append_only()")
    else:
        op.execute("DROP TRIGGER audit_entry_no_update")
        op.execute("DROP TRIGGER audit_entry_no_delete")
    op.drop_index("ix_audit_entry_subject", table_name="audit_entry")
    op.drop_index("ix_audit_entry_actor", table_name="audit_entry")
    op.drop_index("ix_audit_entry_at", table_name="audit_entry")
    op.drop_table("audit_entry")


# -- reading ----------------------------------------------------------------------------------


class AuditEntry(BaseModel):
    id: uuid.UUID
    at: datetime
    actor: str
    actor_role: str
    action: str
    subject_type: str
    subject_id: str
    before: JsonValue = None
    after: JsonValue = None


COLUMNS = ("id", "at", "actor", "actor_role", "action", "subject_type", "subject_id", "before", "after")
_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


def _filtered(
    actor: str | None,
    action: str | None,
    subject_type: str | None,
    subject_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> sa.Select[Any]:
    query = sa.select(audit_entry)
    if actor is not None:
        query = query.where(audit_entry.c.actor == actor)
    if action is not None:
        query = query.where(audit_entry.c.action == action)
    if subject_type is not None:
        query = query.where(audit_entry.c.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(audit_entry.c.subject_id == subject_id)
    if since is not None:
        query = query.where(audit_entry.c.at >= since)
    if until is not None:
        query = query.where(audit_entry.c.at < until)
    return query


def to_csv(entries: Sequence[AuditEntry]) -> str:
    """Entries as CSV for a spreadsheet (``shared.spreadsheet``), before and after as JSON text."""
    rows = (entry.model_dump(mode="json") for entry in entries)
    return csv_text(
        COLUMNS,
        (
            [
                orjson.dumps(row[column]).decode() if column in ("before", "after") else row[column]
                for column in COLUMNS
            ]
            for row in rows
        ),
    )


def from_csv(text: str) -> list[AuditEntry]:
    """Entries read back from ``to_csv``'s text (the inverse, for a program that imports the export)."""
    entries = []
    for cells in read_csv(text):
        entries.append(
            AuditEntry.model_validate(
                cells | {"before": orjson.loads(cells["before"]), "after": orjson.loads(cells["after"])}
            )
        )
    return entries


def audit_router(*, tag: str = "audit") -> APIRouter:
    """``GET /audit`` and ``GET /audit.csv`` over the service's audit log, for managers and admins."""
    router = APIRouter(tags=[tag])

    @router.get(
        "/audit",
        summary="The audit log, newest first (managers and admins); Accept: text/csv for the export",
        response_model=Page[AuditEntry],
        responses=_CSV,
    )
    async def audit_log(
        request: Request,
        _user: Manager,
        session: ReadSessionDep,
        limit: Limit = 50,
        cursor: CursorParam = None,
        actor: Annotated[str | None, Query(description="The actor's sign-in subject.")] = None,
        action: Annotated[str | None, Query(description="e.g. complaint_policy.put")] = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: Annotated[UtcDatetime | None, Query(description="Entries at or after this time.")] = None,
        until: Annotated[UtcDatetime | None, Query(description="Entries before this time.")] = None,
    ) -> Page[AuditEntry] | Response:
        query = _filtered(actor, action, subject_type, subject_id, since, until)
        if "text/csv" in request.headers.get("accept", ""):
            return await _export(query, session=session)
        rows, next_cursor = await keyset_page(
            query,
            session=session,
            order=[audit_entry.c.at, audit_entry.c.id],
            limit=limit,
            cursor=cursor,
            descending=True,
            scalars=False,
        )
        return Page(items=[AuditEntry.model_validate(row._mapping) for row in rows], next_cursor=next_cursor)

    @router.get(
        "/audit.csv",
        summary="The audit log as CSV, oldest first (managers and admins)",
        response_class=Response,
        responses=_CSV,
    )
    async def audit_csv(
        _user: Manager,
        session: ReadSessionDep,
        actor: str | None = None,
        action: str | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: UtcDatetime | None = None,
        until: UtcDatetime | None = None,
    ) -> Response:
        query = _filtered(actor, action, subject_type, subject_id, since, until)
        return await _export(query, session=session)

    return router


async def _export(query: sa.Select[Any], *, session: AsyncSession) -> Response:
    rows = (await session.execute(query.order_by(audit_entry.c.at, audit_entry.c.id))).all()
    return Response(
        to_csv([AuditEntry.model_validate(row._mapping) for row in rows]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
