"""HTTP routes of bulk imports: send a CSV file, watch the job, fetch the rejected rows."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from services.customer import import_jobs
from services.customer.deps import ClockDep, Manager, ReadSessionDep, RuntimeDep
from services.customer.errors import NotCsv
from services.customer.importing import COLUMNS, DateLayout
from services.customer.record_schemas import ImportJobRead, ImportKind
from shared.problems import Unprocessable

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post(
    "/{kind}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Import customers or purchases from a CSV file (manager)",
    description="Send the file as the request body with `Content-Type: text/csv` (UTF-8, a header row). "
    f"Customer columns: {', '.join(COLUMNS[ImportKind.customers])} (tags separated by ';'). Purchase "
    f"columns: {', '.join(COLUMNS[ImportKind.purchases])}. The import runs in the background: follow it "
    "at `GET /imports/{id}`. Idempotent: customers by external_id, purchases by order_id.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def start_import(
    kind: ImportKind,
    request: Request,
    runtime: RuntimeDep,
    clock: ClockDep,
    manager: Manager,
    date_format: Annotated[
        str | None,
        Query(
            max_length=100,
            description="How the file writes dates, in strptime notation (e.g. %Y%m%d); ISO 8601 if not "
            "given. A number is never read as a Unix timestamp.",
        ),
    ] = None,
    time_zone: Annotated[
        str, Query(max_length=60, description="The zone of dates written without an offset.")
    ] = "UTC",
) -> ImportJobRead:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "application/csv"):
        raise NotCsv()
    try:
        layout = DateLayout(date_format, time_zone)
    except (ValueError, KeyError):
        raise Unprocessable(
            f"{time_zone!r} is not an IANA time zone.", field="time_zone", location="query"
        ) from None
    job = await import_jobs.receive(
        runtime=runtime,
        kind=kind,
        body=request.stream(),
        created_by=manager.subject,
        now=clock.now(),
        layout=layout,
    )
    return import_jobs.job_read(job)


@router.get("/{job_id}", summary="An import's progress and summary")
async def get_import(job_id: uuid.UUID, _user: Manager, *, session: ReadSessionDep) -> ImportJobRead:
    return import_jobs.job_read(await import_jobs.get(session=session, job_id=job_id))


@router.get(
    "/{job_id}/rejected",
    summary="The rejected rows as CSV, each with its line and the reason",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_rejected(
    job_id: uuid.UUID, runtime: RuntimeDep, _user: Manager, *, session: ReadSessionDep
) -> StreamingResponse:
    kind = ImportKind((await import_jobs.get(session=session, job_id=job_id)).kind)
    return StreamingResponse(
        import_jobs.rejected_rows(runtime=runtime, job_id=job_id, kind=kind), media_type="text/csv"
    )
