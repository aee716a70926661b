"""Bulk import of existing customers and purchases from CSV, for a company moving in its data.

Rows go in batches: each batch's rows, their events and (for HTTP imports) the job's progress
commit in one transaction, so an interrupted import resumes where it stopped and running it
again changes nothing: customers are matched by external id, purchases by order id. A bad row
is set aside with the reason; it never stops the good ones.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import purchases as purchase_service
from services.customer import service, view_model
from services.customer.bulk import insert_rows, one_of, outbox_row, stage_many
from services.customer.erasure import external_id_digest
from services.customer.exchange_rates import rate_table
from services.customer.models import Customer, CustomerTag, Erasure, Purchase, PurchaseSummary
from services.customer.purchases import PurchaseWindow, SummaryDelta
from services.customer.record_schemas import ImportKind, ImportSummary, PurchaseCreate
from services.customer.schemas import CustomerCreate
from shared.clock import Clock, is_number
from shared.db import Database
from shared.events.customer import CustomerStatus
from shared.money import to_minor

CUSTOMER_COLUMNS = (
    "external_id",
    "name",
    "kind",
    "email",
    "phone",
    "backup_phone",
    "locale",
    "time_zone",
    "address",
    "region",
    "industry",
    "company_size",
    "acquisition_source",
    "acquisition_channel",
    "status",
    "tags",
    "account_manager",
    "notes",
    "customer_since",
)
PURCHASE_COLUMNS = (
    "order_id",
    "customer_external_id",
    "customer_id",
    "amount",
    "currency",
    "channel",
    "item_count",
    "purchased_at",
)
PURCHASE_FIELDS = ("order_id", "amount", "currency", "channel", "item_count", "purchased_at")
COLUMNS = {ImportKind.customers: CUSTOMER_COLUMNS, ImportKind.purchases: PURCHASE_COLUMNS}
REQUIRED = {
    ImportKind.customers: {"external_id", "name"},
    ImportKind.purchases: {"order_id", "amount", "currency"},
}
TAG_SEPARATOR = ";"


class BadFile(ValueError):
    """The file as a whole cannot be imported (its header is wrong); no row was touched."""


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    row: dict[str, str]


@dataclass
class BatchResult:
    rows: int = 0
    imported: int = 0
    already_imported: int = 0
    rejections: list[Rejection] = field(default_factory=list)


Row = tuple[int, dict[str, str]]


# Called inside each batch's transaction, with what the batch did: to record progress atomically.
class BatchHook(Protocol):
    """Run in each batch's transaction once it is imported."""

    def __call__(self, result: BatchResult, /, *, session: AsyncSession) -> Awaitable[None]: ...


def read_rows(lines: Iterable[str], kind: ImportKind) -> Iterator[Row]:
    """(line number, row) for every record of a CSV text; checks the header first."""
    reader = csv.DictReader(lines)
    header = [name.strip() for name in reader.fieldnames or ()]
    unknown = [name for name in header if name not in COLUMNS[kind]]
    if unknown:
        raise BadFile(f"Unknown column(s) {', '.join(unknown)}; the columns are: {', '.join(COLUMNS[kind])}.")
    missing = REQUIRED[kind] - set(header)
    if kind is ImportKind.purchases and not {"customer_external_id", "customer_id"} & set(header):
        missing.add("customer_external_id or customer_id")
    if missing:
        raise BadFile(f"Missing column(s): {', '.join(sorted(missing))}.")
    reader.fieldnames = header
    for record in reader:
        extra = record.pop(None, None)
        row = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if extra:
            row["__extra__"] = "1"
        yield reader.line_num, row


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "row"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts[:5])


def _present(row: dict[str, str], names: Iterable[str]) -> dict[str, Any]:
    return {name: row[name] for name in names if row.get(name)}


@dataclass(frozen=True)
class DateLayout:
    """How a file writes its moments: ISO 8601 unless a layout is declared (``--date-format``).

    A declared layout is read with ``strptime`` (e.g. ``%Y%m%d``, ``%d/%m/%Y %H:%M``); a moment
    written without an offset is in ``time_zone``. Numbers are never taken for Unix timestamps.
    """

    date_format: str | None = None
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)  # an unknown zone fails here, before any row is read

    def read(self, text: str) -> str:
        """``text`` as ISO 8601 with an offset, or ValueError saying why it is not a moment."""
        if self.date_format is not None:
            try:
                moment = datetime.strptime(text, self.date_format)
            except ValueError:
                raise ValueError(f"{text!r} is not written as {self.date_format}") from None
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not an ISO 8601 date and time; declare another layout with --date-format"
                ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.time_zone))
        return moment.astimezone(UTC).isoformat()


MOMENT_COLUMNS = ("purchased_at", "customer_since")


def _read_moments(row: dict[str, Any], layout: DateLayout) -> str | None:
    """Rewrite the row's moments as ISO 8601 in place; the reason if one cannot be read."""
    for column in MOMENT_COLUMNS:
        if row.get(column):
            if layout.date_format is None and is_number(row[column]):
                return f"{column}: {row[column]!r} is a number, not a date (declare a --date-format)"
            try:
                row[column] = layout.read(row[column])
            except ValueError as error:
                return f"{column}: {error}"
    return None


class Importer:
    """Imports rows into one database; the CLI, the HTTP jobs and the benchmark share it."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        currency: str,
        batch_size: int,
        window: PurchaseWindow,
        layout: DateLayout | None = None,
    ) -> None:
        self.db = db
        self.window = window
        self.layout = layout or DateLayout()
        self.clock = clock
        self.currency = currency
        self.batch_size = batch_size
        # Where each external id was first seen in this run, so a repeat names the line it repeats
        # (a string and an int per customer: tens of megabytes at a million).
        self._first_lines: dict[str, int] = {}

    async def run(
        self,
        kind: ImportKind,
        rows: Iterable[Row],
        *,
        hook: BatchHook | None = None,
        progress: Callable[[BatchResult], None] | None = None,
    ) -> tuple[ImportSummary, list[Rejection]]:
        summary = ImportSummary()
        rejections: list[Rejection] = []
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.batch_size:
                self._add(summary, rejections, await self.import_batch(kind, batch, hook=hook), progress)
                batch = []
        if batch:
            self._add(summary, rejections, await self.import_batch(kind, batch, hook=hook), progress)
        await view_model.fill_missing(self.db)
        return summary, rejections

    @staticmethod
    def _add(
        summary: ImportSummary,
        rejections: list[Rejection],
        result: BatchResult,
        progress: Callable[[BatchResult], None] | None,
    ) -> None:
        summary.rows += result.rows
        summary.imported += result.imported
        summary.already_imported += result.already_imported
        summary.rejected += len(result.rejections)
        rejections.extend(result.rejections)
        if progress is not None:
            progress(result)

    async def import_batch(
        self, kind: ImportKind, batch: list[Row], *, hook: BatchHook | None = None
    ) -> BatchResult:
        async with self.db.unit_of_work() as session:
            # Batches touch thousands of customers, many again in the next batch: their views are
            # removed here and built once, when the whole file is in.
            view_model.defer(session=session)
            if kind is ImportKind.customers:
                result = await self._customers(batch, session=session)
            else:
                result = await self._purchases(batch, session=session)
            if hook is not None:
                await hook(result, session=session)
        if result.imported:
            self.db.doorbells.outbox.ring()
        return result

    async def _customers(self, batch: list[Row], *, session: AsyncSession) -> BatchResult:
        now = self.clock.now()
        result = BatchResult(rows=len(batch))
        valid: list[tuple[int, dict[str, str], CustomerCreate]] = []
        first_line = self._first_lines
        batch_ids: list[str] = []
        for line, row in batch:
            if row.pop("__extra__", None):
                result.rejections.append(Rejection(line, "more values than columns", row))
                continue
            values = _present(row, CUSTOMER_COLUMNS)
            if (unreadable := _read_moments(values, self.layout)) is not None:
                result.rejections.append(Rejection(line, unreadable, row))
                continue
            if "tags" in values:
                values["tags"] = [t for t in values["tags"].split(TAG_SEPARATOR) if t.strip()]
            try:
                customer_in = CustomerCreate.model_validate(values)
            except ValidationError as error:
                result.rejections.append(Rejection(line, _reason(error), row))
                continue
            external_id = customer_in.external_id or ""
            if not external_id:
                result.rejections.append(Rejection(line, "external_id: required for an import", row))
                continue
            if external_id in first_line:
                result.rejections.append(
                    Rejection(line, f"external_id repeats line {first_line[external_id]}", row)
                )
                continue
            first_line[external_id] = line
            batch_ids.append(external_id)
            valid.append((line, row, customer_in))
        ids = batch_ids
        known = (
            set(
                (
                    await session.scalars(
                        sa.select(Customer.external_id).where(
                            one_of(Customer.external_id, ids, session=session)
                        )
                    )
                ).all()
            )
            if ids
            else set()
        )
        digests = {external_id_digest(i): i for i in ids}
        erased = (
            {
                digests[d]
                for d in (
                    await session.scalars(
                        sa.select(Erasure.external_id_digest).where(
                            one_of(Erasure.external_id_digest, list(digests), session=session)
                        )
                    )
                ).all()
                if d is not None
            }
            if ids
            else set()
        )
        new_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for line, row, customer_in in valid:
            if customer_in.external_id in known:
                result.already_imported += 1
                continue
            if customer_in.external_id in erased:
                result.rejections.append(
                    Rejection(line, "this customer was erased; they are not imported again", row)
                )
                continue
            values = service.new_customer_row(customer_in, now=now)
            new_rows.append(values)
            tag_rows.extend({"tag": tag, "customer_id": values["id"]} for tag in values["tags"])
            events.append(
                outbox_row(service.registered_event(values, imported=True), source=service.SOURCE, now=now)
            )
        await insert_rows(Customer.__table__, new_rows, session=session)
        await insert_rows(CustomerTag.__table__, tag_rows, session=session)
        await stage_many(events, session=session)
        result.imported = len(new_rows)
        return result

    async def _purchases(self, batch: list[Row], *, session: AsyncSession) -> BatchResult:
        now = self.clock.now()
        result = BatchResult(rows=len(batch))
        parsed: list[tuple[int, dict[str, str], PurchaseCreate]] = []
        rates = await rate_table(
            self.currency, session=session, currencies={r.get("currency", "") for _, r in batch}
        )
        for line, row in batch:
            if row.pop("__extra__", None):
                result.rejections.append(Rejection(line, "more values than columns", row))
                continue
            values = _present(
                row, ("order_id", "amount", "currency", "channel", "item_count", "purchased_at")
            )
            if (unreadable := _read_moments(values, self.layout)) is not None:
                result.rejections.append(Rejection(line, unreadable, row))
                continue
            try:
                purchase_in = PurchaseCreate.model_validate(values)
            except ValidationError as error:
                result.rejections.append(Rejection(line, _reason(error), row))
                continue
            if (problem := self.window.problem(purchase_in.purchased_at, now=now)) is not None:
                result.rejections.append(Rejection(line, f"purchased_at: {problem}", row))
                continue
            if (problem := purchase_service.conversion_problem(purchase_in, rates, now=now)) is not None:
                result.rejections.append(Rejection(line, f"currency: {problem}", row))
                continue
            if not (row.get("customer_external_id") or row.get("customer_id")):
                result.rejections.append(
                    Rejection(line, "customer_external_id or customer_id: one is required", row)
                )
                continue
            parsed.append((line, row, purchase_in))
        owners = await self._owners([row for _, row, _ in parsed], session=session)
        orders = [p.order_id for _, _, p in parsed]
        recorded = (
            {
                r.order_id: (r.customer_id, r.original_currency, r.original_amount_minor)
                for r in (
                    await session.execute(
                        sa.select(
                            Purchase.order_id,
                            Purchase.customer_id,
                            Purchase.original_currency,
                            Purchase.original_amount_minor,
                        ).where(one_of(Purchase.order_id, orders, session=session))
                    )
                ).all()
            }
            if orders
            else {}
        )
        new: list[dict[str, Any]] = []
        for line, row, purchase_in in parsed:
            owner = owners.get((row.get("customer_external_id") or "", row.get("customer_id") or ""))
            if isinstance(owner, str):
                result.rejections.append(Rejection(line, owner, row))
                continue
            assert owner is not None
            paid = (owner, purchase_in.currency, to_minor(purchase_in.amount))
            if purchase_in.order_id in recorded:
                if recorded[purchase_in.order_id] == paid:
                    result.already_imported += 1
                else:
                    result.rejections.append(
                        Rejection(line, "order_id: already recorded with a different customer or amount", row)
                    )
                continue
            recorded[purchase_in.order_id] = paid
            new.append(purchase_service.new_purchase_row(owner, purchase_in, rates=rates, now=now))
        if not new:
            return result
        customers = list({p["customer_id"] for p in new})
        buying_before = set(
            (
                await session.scalars(
                    sa.select(PurchaseSummary.customer_id).where(
                        one_of(PurchaseSummary.customer_id, customers, session=session)
                    )
                )
            ).all()
        )
        deltas: dict[uuid.UUID, list[Any]] = {}
        events: list[dict[str, Any]] = []
        for purchase in new:
            customer_id, moment = purchase["customer_id"], purchase["purchased_at"]
            first = customer_id not in buying_before and customer_id not in deltas
            delta = deltas.setdefault(customer_id, [0, 0, moment, moment])
            delta[0] += 1
            delta[1] += purchase["amount_minor"]
            delta[2] = min(delta[2], moment)
            delta[3] = max(delta[3], moment)
            event = purchase_service.recorded_event(purchase, first_purchase=first, imported=True)
            events.append(outbox_row(event, source=service.SOURCE, now=now))
        await insert_rows(Purchase.__table__, new, session=session)
        await purchase_service.add_to_summaries(
            [SummaryDelta(c, *d) for c, d in deltas.items()], session=session
        )
        await stage_many(events, session=session)
        result.imported = len(new)
        return result

    async def _owners(
        self, rows: list[dict[str, str]], *, session: AsyncSession
    ) -> dict[tuple[str, str], uuid.UUID | str]:
        """Whose each purchase is: a customer id, or why not. Merged duplicates resolve to their survivor."""
        external_ids = {row["customer_external_id"] for row in rows if row.get("customer_external_id")}
        given_ids: dict[str, uuid.UUID | None] = {}
        for row in rows:
            if not row.get("customer_external_id") and row.get("customer_id"):
                try:
                    given_ids[row["customer_id"]] = uuid.UUID(row["customer_id"])
                except ValueError:
                    given_ids[row["customer_id"]] = None
        columns = (Customer.id, Customer.external_id, Customer.status, Customer.merged_into)
        found: list[Any] = []
        if external_ids:
            found += (
                await session.execute(
                    sa.select(*columns).where(one_of(Customer.external_id, external_ids, session=session))
                )
            ).all()
        valid_ids = [i for i in given_ids.values() if i is not None]
        if valid_ids:
            found += (
                await session.execute(
                    sa.select(*columns).where(one_of(Customer.id, valid_ids, session=session))
                )
            ).all()
        by_external = {r.external_id: r for r in found if r.external_id}
        by_id = {r.id: r for r in found}

        def verdict(record: Any, label: str) -> uuid.UUID | str:
            if record is None:
                return f"{label}: no such customer"
            if record.status == CustomerStatus.erased:
                return f"{label}: this customer was erased"
            owner: uuid.UUID = record.merged_into if record.status == service.MERGED else record.id
            return owner

        owners: dict[tuple[str, str], uuid.UUID | str] = {}
        for row in rows:
            external, given = row.get("customer_external_id") or "", row.get("customer_id") or ""
            if external:
                owners[(external, given)] = verdict(by_external.get(external), "customer_external_id")
            elif given_ids.get(given) is None:
                owners[(external, given)] = "customer_id: not a customer id"
            else:
                owners[(external, given)] = verdict(by_id.get(given_ids[given]), "customer_id")
        return owners


def rejected_csv_header(kind: ImportKind) -> list[str]:
    return ["line", "reason", *COLUMNS[kind]]


def rejected_csv_row(rejection: Rejection, kind: ImportKind) -> list[str]:
    return [str(rejection.line), rejection.reason, *(rejection.row.get(c, "") for c in COLUMNS[kind])]
