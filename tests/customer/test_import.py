"""Bulk import: the command, the HTTP jobs, idempotency by external ids, and bad rows set aside."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.customer.cli import import_file
from services.customer.importing import CUSTOMER_COLUMNS, PURCHASE_COLUMNS, BadFile, DateLayout
from services.customer.record_schemas import ImportKind
from services.customer.settings import CustomerSettings
from shared.roles import Role
from tests.customer.helpers import WINDOW, staged
from tests.harness import Stack, auth, eventually

CUSTOMERS = """external_id,name,kind,email,phone,tags,customer_since,industry
C1,Li Na,individual,li.na@example.com,+8613800000001,vip;tea,2019-05-01T00:00:00+08:00,
C2,Acme Trading,business,buy@acme.example,+862161234567,,,Retail
C3,Bad Mail,individual,not-an-email,,,,
C4,,individual,,,,,
C5,Wrong Phone,individual,,13800000001,,,
C1,Li Na Again,individual,,,,,
C6,Individual Industry,individual,,,,,Retail
C7,"Wang, Fang",individual,wang@example.com,,,,
"""

PURCHASES = """order_id,customer_external_id,amount,currency,channel,purchased_at
SO-1,C1,100.00,CNY,store,2024-01-01T10:00:00Z
SO-2,C1,50.50,CNY,web,2024-02-01T10:00:00Z
SO-3,C2,9999.99,CNY,field_sales,2023-12-24T10:00:00Z
SO-4,C9,10.00,CNY,store,2024-01-01T10:00:00Z
SO-5,C1,-5.00,CNY,store,2024-01-01T10:00:00Z
SO-6,C1,5.00,USD,store,2024-01-01T10:00:00Z
SO-7,C1,5.00,CNY,store,
SO-1,C2,100.00,CNY,store,2024-01-01T10:00:00Z
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rejected(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as file:
        return [(row["line"], row["reason"].split(":")[0]) for row in csv.DictReader(file)]


async def test_the_import_is_idempotent_and_bad_rows_never_stop_good_ones(
    stack: Stack, tmp_path: Path
) -> None:
    service = await stack.start("customer", run_workers=False)
    settings = CustomerSettings(database_url=service.database_url, common=stack.common)
    customers = write(tmp_path / "customers.csv", CUSTOMERS)
    out = tmp_path / "customers.rejected.csv"
    summary = await import_file(
        ImportKind.customers,
        customers,
        settings=settings,
        rejected_path=out,
        batch_size=3,
        show_progress=False,
    )
    assert (summary.rows, summary.imported, summary.already_imported, summary.rejected) == (8, 3, 0, 5)
    assert rejected(out) == [
        ("4", "email"),
        ("5", "name"),
        ("6", "phone"),
        ("7", "external_id repeats line 2"),
        ("8", "industry"),
    ]
    registered = [e["data"] for e in await staged(service, "csm.customer.registered.v1")]
    assert [(e["profile"]["name"], e["imported"]) for e in registered] == [
        ("Li Na", True),
        ("Acme Trading", True),
        ("Wang, Fang", True),
    ]
    assert (
        registered[0]["profile"]["tags"] == ["vip", "tea"]
        and registered[0]["registered_at"] == "2019-04-30T16:00:00Z"
    )

    again = await import_file(
        ImportKind.customers,
        customers,
        settings=settings,
        rejected_path=out,
        batch_size=100,
        show_progress=False,
    )
    assert (again.imported, again.already_imported, again.rejected) == (0, 3, 5)
    assert len(await staged(service, "csm.customer.registered.v1")) == 3

    purchases = write(tmp_path / "purchases.csv", PURCHASES)
    out = tmp_path / "purchases.rejected.csv"
    bought = await import_file(
        ImportKind.purchases,
        purchases,
        settings=settings,
        rejected_path=out,
        batch_size=2,
        show_progress=False,
    )
    assert (bought.imported, bought.already_imported, bought.rejected) == (4, 0, 4)
    assert rejected(out) == [
        ("5", "customer_external_id"),
        ("6", "amount"),
        ("7", "currency"),
        ("9", "order_id"),
    ]
    recorded = [e["data"] for e in await staged(service, "csm.purchase.recorded.v1")]
    assert [(e["order_id"], e["first_purchase"], e["imported"]) for e in recorded] == [
        ("SO-1", True, True),
        ("SO-2", False, True),
        ("SO-3", True, True),
        ("SO-7", False, True),
    ]
    again = await import_file(
        ImportKind.purchases, purchases, settings=settings, rejected_path=out, show_progress=False
    )
    assert (again.imported, again.already_imported, again.rejected) == (0, 4, 4)
    found = await service.client.get("/customers", params={"external_id": "C1"}, headers=auth())
    view = (
        await service.client.get(f"/customers/{found.json()['items'][0]['id']}/360", headers=auth())
    ).json()
    assert (view["totals"]["purchases"], view["totals"]["spent"]) == (3, "155.50")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("external_id,name,colour", "Unknown column(s) colour"),
        ("name,email", "Missing column(s): external_id"),
    ],
)
async def test_a_file_with_a_wrong_header_imports_nothing(
    stack: Stack, tmp_path: Path, header: str, message: str
) -> None:
    service = await stack.start("customer", run_workers=False)
    settings = CustomerSettings(database_url=service.database_url, common=stack.common)
    path = write(tmp_path / "c.csv", f"{header}\nC1,Li Na,red\n")
    with pytest.raises(BadFile, match=re.escape(message)):
        await import_file(
            ImportKind.customers,
            path,
            settings=settings,
            rejected_path=tmp_path / "r.csv",
            show_progress=False,
        )
    assert await staged(service) == []


async def test_the_csm_import_command_prints_a_summary_and_writes_the_rejected_rows(
    stack: Stack, tmp_path: Path
) -> None:
    service = await stack.start("customer", run_workers=False)
    customers = write(tmp_path / "customers.csv", CUSTOMERS)
    env = {**os.environ, "CSM_CUSTOMER_DATABASE_URL": service.database_url}
    command = [str(Path(sys.executable).parent / "csm"), "import", "customers", str(customers), "--quiet"]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "8 rows" in result.stdout and "3 imported, 0 already imported, 5 rejected" in result.stdout
    assert len(rejected(tmp_path / "customers.rejected.csv")) == 5
    bad = await asyncio.to_thread(
        subprocess.run,
        [*command[:3], str(write(tmp_path / "x.csv", "colour\nred\n"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Nothing imported" in bad.stderr


async def test_an_http_import_runs_as_a_job_with_progress_and_rejected_rows(stack: Stack) -> None:
    service = await stack.start("customer", import_poll_seconds=0.1, import_batch_size=2)
    client = service.client
    headers = {**auth(Role.manager, subject="mgr"), "content-type": "text/csv"}
    assert (
        await client.post("/imports/customers", content=CUSTOMERS, headers=auth(Role.manager))
    ).status_code == 415
    assert (
        await client.post("/imports/customers", content=CUSTOMERS, headers={**headers, **auth(Role.agent)})
    ).status_code == 403
    started = await client.post("/imports/customers", content=CUSTOMERS.encode(), headers=headers)
    assert started.status_code == 202, started.text
    job = started.json()

    async def done() -> dict[str, object]:
        found = (await client.get(f"/imports/{job['id']}", headers=headers)).json()
        assert found["status"] == "done", found
        return found  # type: ignore[no-any-return]

    finished = await eventually(done)
    assert (finished["rows"], finished["imported"], finished["rejected"]) == (8, 3, 5)
    csv_text = (await client.get(f"/imports/{job['id']}/rejected", headers=headers)).text
    rows = list(csv.DictReader(csv_text.splitlines()))
    assert [(r["line"], r["external_id"]) for r in rows] == [
        ("4", "C3"),
        ("5", "C4"),
        ("6", "C5"),
        ("7", "C1"),
        ("8", "C6"),
    ]
    assert rows[0]["reason"].startswith("email") and rows[0]["email"] == "not-an-email"
    again = (await client.post("/imports/customers", content=CUSTOMERS.encode(), headers=headers)).json()
    job = again

    async def second() -> None:
        found = await done()
        assert (found["imported"], found["already_imported"]) == (0, 3)

    await eventually(second)
    broken = (await client.post("/imports/purchases", content=b"colour\nred\n", headers=headers)).json()

    async def failed() -> None:
        found = (await client.get(f"/imports/{broken['id']}", headers=headers)).json()
        assert found["status"] == "failed" and "Unknown column" in found["error"]

    await eventually(failed)


async def test_an_import_whose_worker_died_is_taken_over_and_resumes_after_its_last_batch(
    stack: Stack,
) -> None:
    from datetime import UTC, datetime, timedelta

    from services.customer.models import ImportChunk, ImportJob
    from shared.db import Database

    now = datetime.now(UTC)
    service = await stack.start("customer", run_workers=False)
    db = Database(service.database_url)
    job_id = uuid.uuid4()
    try:
        from services.customer.importing import Importer, read_rows
        from shared.clock import SystemClock

        # The dead worker had committed the first two rows.
        first_two = read_rows(CUSTOMERS.splitlines()[:3], ImportKind.customers)
        await Importer(db=db, clock=SystemClock(), currency="CNY", batch_size=2, window=WINDOW).run(
            ImportKind.customers, first_two
        )
        async with db.unit_of_work() as session:
            session.add(
                ImportJob(
                    id=job_id,
                    kind="customers",
                    status="running",
                    created_by="mgr",
                    rows=2,
                    imported=2,
                    created_at=now - timedelta(hours=1),
                    heartbeat_at=now - timedelta(hours=1),
                )
            )
            await session.flush()
            session.add(ImportChunk(job_id=job_id, seq=0, data=CUSTOMERS.encode()))
    finally:
        await db.dispose()
    await stack.close()
    taken_over = await stack.start("customer", database_url=service.database_url, import_poll_seconds=0.1)
    headers = auth(Role.manager)

    async def done() -> dict[str, object]:
        found = (await taken_over.client.get(f"/imports/{job_id}", headers=headers)).json()
        assert found["status"] == "done", found
        return found  # type: ignore[no-any-return]

    finished = await eventually(done)
    # The repeat of C1 on line 7 no longer knows its first line, but C1 is here: already imported.
    assert (finished["rows"], finished["imported"], finished["already_imported"], finished["rejected"]) == (
        8,
        3,
        1,
        4,
    )
    names = [e["data"]["profile"]["name"] for e in await staged(taken_over, "csm.customer.registered.v1")]
    assert names == ["Li Na", "Acme Trading", "Wang, Fang"], "each row imported once, across the two workers"


DATED = """order_id,customer_external_id,amount,currency,purchased_at
D-1,C1,10.00,CNY,19970101
D-2,C1,0,CNY,19970215
D-3,C1,10.00,CNY,19650101
D-4,C1,10.00,CNY,21000101
D-5,C1,10.00,CNY,1997-01-01
"""


async def test_dates_are_iso_unless_a_layout_is_declared_and_a_number_is_never_a_timestamp(
    stack: Stack, tmp_path: Path
) -> None:
    service = await stack.start("customer", run_workers=False)
    settings = CustomerSettings(database_url=service.database_url, common=stack.common)
    write(tmp_path / "c.csv", CUSTOMERS)
    await import_file(
        ImportKind.customers, tmp_path / "c.csv", settings=settings, rejected_path=tmp_path / "cr.csv",
        show_progress=False,
    )  # fmt: skip
    purchases = write(tmp_path / "p.csv", DATED)

    undeclared = await import_file(
        ImportKind.purchases,
        purchases,
        settings=settings,
        rejected_path=tmp_path / "r1.csv",
        show_progress=False,
    )
    assert (undeclared.imported, undeclared.rejected) == (1, 4), "only the ISO date goes in"
    reasons = [row["reason"] for row in csv.DictReader((tmp_path / "r1.csv").open(encoding="utf-8"))]
    assert reasons[0] == "purchased_at: '19970101' is a number, not a date (declare a --date-format)"

    declared = await import_file(
        ImportKind.purchases,
        purchases,
        settings=settings,
        rejected_path=tmp_path / "r2.csv",
        show_progress=False,
        layout=DateLayout("%Y%m%d", "Asia/Shanghai"),
    )
    assert (declared.imported, declared.rejected) == (2, 3)
    assert [row["reason"] for row in csv.DictReader((tmp_path / "r2.csv").open(encoding="utf-8"))] == [
        "purchased_at: before 1970-01-01, the earliest purchase date (CSM_CUSTOMER_EARLIEST_PURCHASE)",
        "purchased_at: in the future",
        "purchased_at: '1997-01-01' is not written as %Y%m%d",
    ]
    recorded = {e["data"]["order_id"]: e["data"] for e in await staged(service, "csm.purchase.recorded.v1")}
    assert recorded["D-1"]["purchased_at"] == "1996-12-31T16:00:00Z", "midnight in Shanghai, in UTC"
    assert recorded["D-2"]["amount"] == "0.00", "a free order is a purchase too"


async def test_the_import_commands_list_their_columns_and_take_a_date_layout() -> None:
    csm = str(Path(sys.executable).parent / "csm")
    for kind, columns in ((ImportKind.customers, CUSTOMER_COLUMNS), (ImportKind.purchases, PURCHASE_COLUMNS)):
        shown = await asyncio.to_thread(
            subprocess.run, [csm, "import", kind.value, "--help"], capture_output=True, text=True, timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        flat = " ".join(shown.stdout.replace("│", " ").split())
        assert ", ".join(columns) in flat and "--date-format" in flat and "--time-zone" in flat


async def test_an_http_import_takes_the_files_date_layout_too(stack: Stack) -> None:
    service = await stack.start("customer", import_poll_seconds=0.1)
    client = service.client
    headers = {**auth(Role.manager), "content-type": "text/csv"}
    registered = await client.post("/customers", json={"external_id": "C1", "name": "Li Na"}, headers=auth())
    assert registered.status_code == 201, registered.text
    body = b"order_id,customer_external_id,amount,currency,purchased_at\nH-1,C1,10.00,CNY,19970101\n"
    layout = {"date_format": "%Y%m%d", "time_zone": "Asia/Shanghai"}
    bad_zone = await client.post(
        "/imports/purchases", params={"time_zone": "Mars/Base"}, content=body, headers=headers
    )
    assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["field"] == "time_zone"
    job = (await client.post("/imports/purchases", params=layout, content=body, headers=headers)).json()

    async def done() -> None:
        found = (await client.get(f"/imports/{job['id']}", headers=headers)).json()
        assert (found["status"], found["imported"]) == ("done", 1), found

    await eventually(done)
    [recorded] = await staged(service, "csm.purchase.recorded.v1")
    assert recorded["data"]["purchased_at"] == "1996-12-31T16:00:00Z"


async def test_every_command_finds_the_same_databases_wherever_it_runs(tmp_path: Path) -> None:
    """csm migrate and csm import, run from different directories, use the var directory's files."""
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSM_")} | {"CSM_VAR_DIR": str(var)}
    csm = str(Path(sys.executable).parent / "csm")
    file = write(tmp_path / "customers.csv", CUSTOMERS)
    elsewhere = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for directory in elsewhere:
        directory.mkdir()

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([csm, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)

    not_set_up = await asyncio.to_thread(run, "import", "customers", str(file), "--quiet", cwd=elsewhere[0])
    assert not_set_up.returncode == 2 and "csm migrate customer" in not_set_up.stderr
    assert "Traceback" not in not_set_up.stderr and not var.exists(), "looking made no empty database"
    migrated = await asyncio.to_thread(run, "migrate", "customer", cwd=elsewhere[1])
    assert migrated.returncode == 0, migrated.stderr
    imported = await asyncio.to_thread(run, "import", "customers", str(file), "--quiet", cwd=elsewhere[2])
    assert imported.returncode == 0 and "3 imported" in imported.stdout, imported.stderr
    assert (var / "customer.db").is_file()
    assert not [p for d in elsewhere for p in d.rglob("*.db")], "no database anywhere else"
