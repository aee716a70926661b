"""``csm import customers FILE.csv`` and ``csm import purchases FILE.csv``: bulk import from the command line.

They write straight to the customer database (``CSM_CUSTOMER_DATABASE_URL``), rows and their
events in batches; the running service's outbox relay publishes the events.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import make_url

from services.customer import view_model
from services.customer.importing import (
    CUSTOMER_COLUMNS,
    PURCHASE_COLUMNS,
    BadFile,
    BatchResult,
    DateLayout,
    Importer,
    read_rows,
    rejected_csv_header,
    rejected_csv_row,
)
from services.customer.purchases import PurchaseWindow
from services.customer.record_schemas import ImportKind, ImportSummary
from services.customer.settings import CustomerSettings
from services.customer.view import View
from shared import migrations
from shared.clock import SystemClock
from shared.db import Database

app = typer.Typer(
    help="Bulk import of existing data from CSV files.", no_args_is_help=True, add_completion=False
)

FileArgument = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="A UTF-8 CSV file with a header row."),
]
RejectedOption = Annotated[
    Path | None,
    typer.Option(
        help="Where the rejected rows go, with their line and reason; FILE.rejected.csv if not given."
    ),
]
BatchOption = Annotated[
    int | None, typer.Option(help="Rows per transaction (CSM_CUSTOMER_IMPORT_BATCH_SIZE).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        help="How the file writes dates, in strptime notation (e.g. %Y%m%d or '%d/%m/%Y %H:%M'); "
        "ISO 8601 if not given. A number is never read as a Unix timestamp."
    ),
]
TimeZoneOption = Annotated[
    str, typer.Option(help="The zone of dates written without an offset (IANA name, e.g. Asia/Shanghai).")
]


class _Counting(io.RawIOBase):
    """A binary file that counts what has been read, for the progress bar."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.read_bytes += count or 0
        return count or 0


async def import_file(
    kind: ImportKind,
    path: Path,
    *,
    settings: CustomerSettings,
    rejected_path: Path,
    batch_size: int | None = None,
    show_progress: bool = True,
    console: Console | None = None,
    layout: DateLayout | None = None,
) -> ImportSummary:
    """Import one file; what the command and the benchmark both run."""
    console = console or Console(stderr=True)
    db = Database(settings.database_url)
    view_model.install(db, View(settings, settings.common.currency))
    importer = Importer(
        db=db,
        clock=SystemClock(),
        currency=settings.common.currency,
        batch_size=batch_size or settings.import_batch_size,
        window=PurchaseWindow.of(settings),
        layout=layout,
    )
    size = path.stat().st_size  # noqa: ASYNC240 (the command does nothing else meanwhile)
    with path.open("rb") as raw, rejected_path.open("w", newline="", encoding="utf-8") as rejected_file:
        counting = _Counting(raw)
        text = io.TextIOWrapper(io.BufferedReader(counting, 1024 * 1024), encoding="utf-8-sig", newline="")
        writer = csv.writer(rejected_file)
        writer.writerow(rejected_csv_header(kind))
        progress = Progress(
            TextColumn(f"{kind.value}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
            console=console,
            disable=not show_progress,
        )
        task = progress.add_task("import", total=size, rows=0)
        seen = [0]

        def advance(result: BatchResult) -> None:
            seen[0] += result.rows
            for rejection in result.rejections:
                writer.writerow(rejected_csv_row(rejection, kind))
            progress.update(task, completed=counting.read_bytes, rows=seen[0])

        try:
            with progress:
                summary, _ = await importer.run(kind, read_rows(text, kind), progress=advance)
        finally:
            await db.dispose()
    return summary


def _run(
    kind: ImportKind,
    file: Path,
    rejected: Path | None,
    batch_size: int | None,
    quiet: bool,
    date_format: str | None,
    time_zone: str,
) -> None:
    console = Console(stderr=True)
    rejected_path = rejected or file.with_suffix(".rejected.csv")
    settings = CustomerSettings()
    if not asyncio.run(migrations.is_current("customer", settings.database_url)):
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        console.print(
            f"[red]Nothing imported:[/red] the customer database ({where}) is not set up or not up to "
            "date. Run `csm migrate customer` (or `csm up`) first; CSM_VAR_DIR or "
            "CSM_CUSTOMER_DATABASE_URL say where it is."
        )
        raise typer.Exit(2)
    try:
        layout = DateLayout(date_format, time_zone)
    except (ValueError, KeyError):
        raise typer.BadParameter(
            f"{time_zone!r} is not an IANA time zone", param_hint="--time-zone"
        ) from None
    started = time.perf_counter()
    try:
        summary = asyncio.run(
            import_file(
                kind,
                file,
                settings=settings,
                rejected_path=rejected_path,
                batch_size=batch_size,
                show_progress=not quiet,
                console=console,
                layout=layout,
            )
        )
    except BadFile as bad:
        console.print(f"[red]Nothing imported:[/red] {bad}")
        raise typer.Exit(2) from None
    seconds = time.perf_counter() - started
    rate = summary.rows / seconds if seconds else 0.0
    typer.echo(
        f"{kind.value}: {summary.rows:,} rows in {seconds:,.1f} s ({rate:,.0f} rows/s): {summary.imported:,} "
        "imported, "
        f"{summary.already_imported:,} already imported, {summary.rejected:,} rejected"
        + (f" (see {rejected_path})" if summary.rejected else "")
    )
    if not summary.rejected:
        rejected_path.unlink(missing_ok=True)


@app.command(
    help=f"""Import customers; a customer whose external_id is already here is left as it is.

Columns (a header row names them, in any order; external_id and name are required):
{", ".join(CUSTOMER_COLUMNS)}. tags are separated by ";"; customer_since is a date and time."""
)
def customers(
    file: FileArgument,
    rejected: RejectedOption = None,
    batch_size: BatchOption = None,
    quiet: QuietOption = False,
    date_format: DateFormatOption = None,
    time_zone: TimeZoneOption = "UTC",
) -> None:
    _run(ImportKind.customers, file, rejected, batch_size, quiet, date_format, time_zone)


@app.command(
    help=f"""Import purchases; an order already here is kept as it is.

Columns (a header row names them, in any order; order_id, amount, currency and one of
customer_external_id or customer_id are required): {", ".join(PURCHASE_COLUMNS)}. amount is a
decimal (0 for a free or fully discounted order); purchased_at is a date and time."""
)
def purchases(
    file: FileArgument,
    rejected: RejectedOption = None,
    batch_size: BatchOption = None,
    quiet: QuietOption = False,
    date_format: DateFormatOption = None,
    time_zone: TimeZoneOption = "UTC",
) -> None:
    _run(ImportKind.purchases, file, rejected, batch_size, quiet, date_format, time_zone)
