"""Imports sent over HTTP: the file is stored with the job, and a worker imports it in batches.

A large file takes minutes, longer than a request should live. The upload is kept in the
database in pieces (so any replica's worker can take the job), progress commits with each batch,
and a worker that dies mid-way resumes after the last batch it committed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import IO

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer.errors import ImportNotFound, ImportTooLarge
from services.customer.ids import uuid7
from services.customer.importing import (
    COLUMNS,
    BadFile,
    BatchResult,
    DateLayout,
    Importer,
    Rejection,
    read_rows,
    rejected_csv_header,
)
from services.customer.models import ImportChunk, ImportJob, ImportRejection
from services.customer.purchases import PurchaseWindow
from services.customer.record_schemas import ImportJobRead, ImportKind
from services.customer.settings import CustomerSettings
from shared.service import Runtime

log = logging.getLogger("csm.customer.import")

CHUNK_BYTES = 1024 * 1024


def job_read(job: ImportJob) -> ImportJobRead:
    return ImportJobRead(
        id=job.id,
        kind=ImportKind(job.kind),
        status=job.status,
        error=job.error,
        rows=job.rows,
        imported=job.imported,
        already_imported=job.already_imported,
        rejected=job.rejected,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


async def receive(
    *,
    runtime: Runtime,
    kind: ImportKind,
    body: AsyncIterator[bytes],
    created_by: str,
    now: datetime,
    layout: DateLayout,
) -> ImportJob:
    """Store an uploaded file as a pending job, a piece per transaction so memory stays flat."""
    settings = runtime.settings
    assert isinstance(settings, CustomerSettings)
    job = ImportJob(
        id=uuid7(),
        kind=kind.value,
        status="receiving",
        created_by=created_by,
        created_at=now,
        date_format=layout.date_format,
        time_zone=layout.time_zone,
    )
    async with runtime.db.unit_of_work() as session:
        session.add(job)
    size, seq, pending = 0, 0, bytearray()
    try:
        async for piece in body:
            size += len(piece)
            if size > settings.import_max_bytes:
                raise ImportTooLarge(settings.import_max_bytes)
            pending += piece
            while len(pending) >= CHUNK_BYTES:
                await _store(runtime, job.id, seq, bytes(pending[:CHUNK_BYTES]))
                del pending[:CHUNK_BYTES]
                seq += 1
        if pending:
            await _store(runtime, job.id, seq, bytes(pending))
    except BaseException:
        await _discard(runtime, job.id)
        raise
    async with runtime.db.unit_of_work() as session:
        stored = await session.get(ImportJob, job.id)
        assert stored is not None
        stored.status = "pending"
        job = stored
    return job


async def _store(runtime: Runtime, job_id: uuid.UUID, seq: int, data: bytes) -> None:
    async with runtime.db.unit_of_work() as session:
        session.add(ImportChunk(job_id=job_id, seq=seq, data=data))


async def _discard(runtime: Runtime, job_id: uuid.UUID) -> None:
    async with runtime.db.unit_of_work() as session:
        for table in (ImportChunk, ImportRejection):
            await session.execute(sa.delete(table).where(table.job_id == job_id))
        await session.execute(sa.delete(ImportJob).where(ImportJob.id == job_id))


async def get(*, session: AsyncSession, job_id: uuid.UUID) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None or job.status == "receiving":
        raise ImportNotFound(job_id)
    return job


async def rejected_rows(*, runtime: Runtime, job_id: uuid.UUID, kind: ImportKind) -> AsyncIterator[bytes]:
    """The rejected rows as CSV, with the line and the reason first, a page at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(rejected_csv_header(kind))
    after = 0
    while True:
        async with runtime.db.read() as session:
            page = (
                await session.execute(
                    sa.select(ImportRejection.line, ImportRejection.reason, ImportRejection.row)
                    .where(ImportRejection.job_id == job_id, ImportRejection.line > after)
                    .order_by(ImportRejection.line)
                    .limit(1000)
                )
            ).all()
        for rejection in page:
            writer.writerow([str(rejection.line), rejection.reason, *csv_values(rejection.row)])
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
        if len(page) < 1000:
            return
        after = page[-1].line


def csv_values(row: str) -> list[str]:
    return next(csv.reader([row]), [])


class ImportWorker:
    """Takes pending (or interrupted) jobs one at a time and imports them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        assert isinstance(settings, CustomerSettings)
        self.settings = settings

    async def run(self) -> None:
        while True:
            job_id = await self._next_job()
            if job_id is None:
                await self._purge()
                await asyncio.sleep(self.settings.import_poll_seconds)
                continue
            await self.process(job_id)

    async def _next_job(self) -> uuid.UUID | None:
        async with self.runtime.db.unit_of_work() as session:
            now = self.runtime.clock.now()
            abandoned = now - timedelta(seconds=self.settings.import_lease_seconds)
            query = (
                sa.select(ImportJob)
                .where(
                    sa.or_(
                        ImportJob.status == "pending",
                        sa.and_(ImportJob.status == "running", ImportJob.heartbeat_at < abandoned),
                    )
                )
                .order_by(ImportJob.created_at)
                .limit(1)
            )
            if self.runtime.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            job = await session.scalar(query)
            if job is None:
                return None
            job.status = "running"
            job.heartbeat_at = now
            return job.id

    async def process(self, job_id: uuid.UUID) -> None:
        async with self.runtime.db.read() as session:
            job = await session.get(ImportJob, job_id)
            assert job is not None
            kind, done = ImportKind(job.kind), job.rows
            layout = DateLayout(job.date_format, job.time_zone)
        importer = Importer(
            db=self.runtime.db,
            clock=self.runtime.clock,
            currency=self.runtime.settings.common.currency,
            batch_size=self.settings.import_batch_size,
            window=PurchaseWindow.of(self.settings),
            layout=layout,
        )

        async def record(result: BatchResult, *, session: AsyncSession) -> None:
            await session.execute(
                sa.update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(
                    rows=ImportJob.rows + result.rows,
                    imported=ImportJob.imported + result.imported,
                    already_imported=ImportJob.already_imported + result.already_imported,
                    rejected=ImportJob.rejected + len(result.rejections),
                    heartbeat_at=self.runtime.clock.now(),
                )
            )
            if result.rejections:
                await session.execute(
                    sa.insert(ImportRejection),
                    [
                        {
                            "job_id": job_id,
                            "line": r.line,
                            "reason": r.reason[:1000],
                            "row": _csv_line(r, kind),
                        }
                        for r in result.rejections
                    ],
                )

        error: str | None = None
        with tempfile.TemporaryFile() as spool:
            await self._spool(job_id, spool)
            spool.seek(0)
            text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
            try:
                rows = read_rows(text, kind)
                # Rows committed before an interruption are skipped, not imported twice.
                remaining = (row for index, row in enumerate(rows) if index >= done)
                await importer.run(kind, remaining, hook=record)
            except BadFile as bad:
                error = str(bad)
            except (UnicodeDecodeError, csv.Error) as bad:
                error = f"Not a readable CSV file in UTF-8: {type(bad).__name__}"
        async with self.runtime.db.unit_of_work() as session:
            await session.execute(sa.delete(ImportChunk).where(ImportChunk.job_id == job_id))
            await session.execute(
                sa.update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(
                    status="failed" if error else "done", error=error, finished_at=self.runtime.clock.now()
                )
            )
        log.info("import %s finished%s", job_id, " with a file error" if error else "")

    async def _spool(self, job_id: uuid.UUID, spool: IO[bytes]) -> None:
        seq = -1
        while True:
            async with self.runtime.db.read() as session:
                chunk = (
                    await session.execute(
                        sa.select(ImportChunk.seq, ImportChunk.data)
                        .where(ImportChunk.job_id == job_id, ImportChunk.seq > seq)
                        .order_by(ImportChunk.seq)
                        .limit(1)
                    )
                ).one_or_none()
            if chunk is None:
                return
            spool.write(chunk.data)
            seq = chunk.seq

    async def _purge(self) -> None:
        """Forget finished jobs past retention, with their rejected rows (they hold personal data)."""
        before = self.runtime.clock.now() - timedelta(days=self.settings.import_retention_days)
        async with self.runtime.db.unit_of_work() as session:
            # Finished jobs, and uploads that never finished arriving.
            stale = sa.or_(
                ImportJob.finished_at < before,
                sa.and_(ImportJob.status == "receiving", ImportJob.created_at < before),
            )
            old = sa.select(ImportJob.id).where(stale)
            for table in (ImportChunk, ImportRejection):
                await session.execute(sa.delete(table).where(table.job_id.in_(old)))
            await session.execute(sa.delete(ImportJob).where(stale))


def _csv_line(rejection: Rejection, kind: ImportKind) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([rejection.row.get(c, "") for c in COLUMNS[kind]])
    return out.getvalue().rstrip("\r\n")
