"""Purchases in several currencies: converted with the operator's effective-dated rates, or refused."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from typer.testing import CliRunner, Result

from services import cli
from services.customer.cli import import_file
from services.customer.exchange_rates import RateTable, convert, refund_in_reporting
from services.customer.record_schemas import ImportKind
from services.customer.settings import CustomerSettings
from shared import migrations
from shared.broker import free_port
from shared.db import create_engine
from shared.roles import Role
from tests.customer.helpers import register, staged
from tests.harness import Stack, auth, eventually


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def state(
    stack: Stack, currency: str, rate: str, effective_from: str, role: Role = Role.manager
) -> Any:
    return await stack["customer"].client.post(
        "/exchange-rates",
        json={"currency": currency, "rate": rate, "effective_from": effective_from},
        headers=auth(role),
    )


async def buy(stack: Stack, customer_id: str, order: str, amount: str, currency: str, at: str) -> Any:
    return await stack["customer"].client.post(
        f"/customers/{customer_id}/purchases",
        json={"order_id": order, "amount": amount, "currency": currency, "purchased_at": at},
        headers=auth(Role.manager),
    )


def test_conversion_rounds_half_up_and_refund_parts_add_up_to_the_whole() -> None:
    rate = Decimal("7.1234")
    assert convert(1000, rate) == 7123  # 10.00 USD = 71.234 CNY -> 71.23
    assert convert(5, Decimal("0.1")) == 1  # 0.5 fen rounds up
    # At 1.5, two refunds of 1 fen each would be 2 + 2 = 4 converted, more than the 3 the purchase
    # counted; converting what is refunded so far, less what was, gives 2 + 1.
    half = Decimal("1.5")
    first = refund_in_reporting(refunded_before=0, refunded_now=1, rate=half)
    second = refund_in_reporting(refunded_before=1, refunded_now=1, rate=half)
    assert (first, second) == (2, 1) and first + second == convert(2, half) == 3
    assert convert(1, half) * 2 == 4


def test_the_rate_in_force_is_the_latest_stated_before_the_moment() -> None:
    table = RateTable.of(
        "CNY",
        [
            ("USD", datetime(2026, 3, 1, tzinfo=UTC), "7.0"),
            ("USD", datetime(2026, 1, 1, tzinfo=UTC), "7.2"),
        ],
    )
    assert table.rate_on("USD", datetime(2025, 12, 31, tzinfo=UTC)) is None
    assert table.rate_on("USD", datetime(2026, 1, 1, tzinfo=UTC)) == Decimal("7.2")
    assert table.rate_on("USD", datetime(2026, 2, 28, tzinfo=UTC)) == Decimal("7.2")
    assert table.rate_on("USD", datetime(2026, 3, 1, tzinfo=UTC)) == Decimal("7.0")
    assert table.rate_on("CNY", datetime(1990, 1, 1, tzinfo=UTC)) == 1
    assert table.rate_on("EUR", datetime(2026, 3, 1, tzinfo=UTC)) is None


async def test_a_purchase_in_another_currency_is_converted_at_the_rate_in_force_and_keeps_what_was_paid(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    customer = (await register(customers))["id"]
    # No rate yet: refused, naming the field, never recorded as if it were CNY.
    refused = await buy(customers, customer, "US-1", "10.00", "USD", "2026-02-01T10:00:00Z")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"].endswith("no-exchange-rate") and problem["errors"][0]["field"] == "currency"
    assert "USD" in problem["detail"] and "CNY" in problem["detail"]

    assert (await state(customers, "USD", "7.2", "2026-01-01T00:00:00Z", Role.agent)).status_code == 403
    stated = await state(customers, "USD", "7.2", "2026-01-01T00:00:00Z")
    assert stated.status_code == 201, stated.text
    assert stated.json()["reporting_currency"] == "CNY" and Decimal(stated.json()["rate"]) == Decimal("7.2")
    assert (await state(customers, "USD", "7.20", "2026-01-01T00:00:00Z")).status_code == 200  # a repeat
    conflict = await state(customers, "USD", "7.3", "2026-01-01T00:00:00Z")
    assert conflict.status_code == 409 and conflict.json()["type"].endswith("exchange-rate-stated")
    assert (await state(customers, "USD", "7.0", "2026-03-01T00:00:00Z")).status_code == 201

    # Before the first rate: still refused, saying from when rates are known.
    early = await buy(customers, customer, "US-0", "10.00", "USD", "2025-12-31T10:00:00Z")
    assert early.status_code == 422 and "2025-12-31" in early.json()["detail"]

    bought = await buy(customers, customer, "US-1", "10.00", "USD", "2026-02-01T10:00:00Z")
    assert bought.status_code == 201, bought.text
    purchase = bought.json()
    assert (purchase["amount"], purchase["currency"]) == ("72.00", "CNY")
    assert (purchase["original_amount"], purchase["original_currency"]) == ("10.00", "USD")
    assert Decimal(purchase["exchange_rate"]) == Decimal("7.2")
    later = (await buy(customers, customer, "US-2", "10.00", "USD", "2026-03-02T10:00:00Z")).json()
    assert later["amount"] == "70.00"
    home = (await buy(customers, customer, "CN-1", "5.00", "CNY", "2026-03-02T11:00:00Z")).json()
    assert (home["amount"], home["original_amount"], Decimal(home["exchange_rate"])) == (
        "5.00",
        "5.00",
        Decimal(1),
    )

    # The same order again is the same purchase; in another currency it is not.
    assert (await buy(customers, customer, "US-1", "10.00", "USD", "2026-02-01T10:00:00Z")).status_code == 200
    assert (await buy(customers, customer, "US-1", "10.00", "EUR", "2026-02-01T10:00:00Z")).status_code == 409

    [first, *_] = [e["data"] for e in await staged(customers["customer"], "csm.purchase.recorded.v1")]
    assert (first["amount"], first["currency"], first["original_amount"], first["original_currency"]) == (
        "72.00",
        "CNY",
        "10.00",
        "USD",
    )
    assert Decimal(first["exchange_rate"]) == Decimal("7.2")
    totals = (await client.get(f"/customers/{customer}/360", headers=auth())).json()["totals"]
    assert (totals["spent"], totals["currency"]) == ("147.00", "CNY")  # 72 + 70 + 5, never 10 + 10 + 5
    recent = (await client.get(f"/customers/{customer}/360", headers=auth())).json()["recent_purchases"]
    assert [(p["amount"], p["original_amount"], p["original_currency"]) for p in recent] == [
        ("5.00", "5.00", "CNY"),
        ("70.00", "10.00", "USD"),
        ("72.00", "10.00", "USD"),
    ]

    listed = (await client.get("/exchange-rates", params={"currency": "USD"}, headers=auth())).json()
    assert [Decimal(r["rate"]) for r in listed["items"]] == [Decimal("7.0"), Decimal("7.2")]


async def test_refunds_follow_their_purchases_rate_and_a_full_refund_is_full_in_both(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    customer = (await register(customers))["id"]
    await state(customers, "USD", "7.1234", "2026-01-01T00:00:00Z")
    purchase = (await buy(customers, customer, "US-9", "10.00", "USD", "2026-02-01T10:00:00Z")).json()
    assert purchase["amount"] == "71.23"
    # A new rate afterwards changes nothing for this purchase's refunds.
    await state(customers, "USD", "9", "2026-02-02T00:00:00Z")
    url = f"/customers/{customer}/purchases/{purchase['id']}/refunds"
    in_cny = await client.post(
        url, json={"reference": "R-0", "amount": "1.00", "currency": "CNY"}, headers=auth()
    )
    assert in_cny.status_code == 422 and in_cny.json()["errors"][0]["field"] == "currency"
    parts = []
    for reference, amount in (("R-1", "3.33"), ("R-2", "3.33"), ("R-3", "3.34")):
        answer = await client.post(
            url, json={"reference": reference, "amount": amount, "currency": "USD"}, headers=auth()
        )
        assert answer.status_code == 201, answer.text
        parts.append(answer.json())
    assert [(p["original_amount"], p["original_currency"], p["currency"]) for p in parts] == [
        ("3.33", "USD", "CNY"),
        ("3.33", "USD", "CNY"),
        ("3.34", "USD", "CNY"),
    ]
    assert sum(Decimal(p["amount"]) for p in parts) == Decimal("71.23")
    too_much = await client.post(
        url, json={"reference": "R-4", "amount": "0.01", "currency": "USD"}, headers=auth()
    )
    assert too_much.status_code == 422
    refunds = [e["data"] for e in await staged(customers["customer"], "csm.purchase.refunded.v1")]
    assert [r["fully_refunded"] for r in refunds] == [False, False, True]
    assert refunds[-1]["original_amount"] == "3.34" and refunds[-1]["original_currency"] == "USD"
    listed = (await client.get(f"/customers/{customer}/purchases", headers=auth())).json()["items"]
    assert (listed[0]["refunded"], listed[0]["original_refunded"]) == ("71.23", "10.00")


async def test_an_imported_row_without_a_rate_is_refused_with_its_line_and_reason(
    stack: Stack, tmp_path: Path
) -> None:
    service = await stack.start("customer", run_workers=False)
    await register(stack, external_id="C1")
    await state(stack, "USD", "7.2", "2024-01-01T00:00:00Z")
    settings = CustomerSettings(database_url=service.database_url, common=stack.common)
    rows = tmp_path / "purchases.csv"
    rows.write_text(
        "order_id,customer_external_id,amount,currency,purchased_at\n"
        "IM-1,C1,10.00,USD,2024-02-01T10:00:00Z\n"
        "IM-2,C1,10.00,EUR,2024-02-01T10:00:00Z\n"
        "IM-3,C1,10.00,USD,2023-12-01T10:00:00Z\n"
        "IM-4,C1,10.00,CNY,2024-02-01T10:00:00Z\n",
        encoding="utf-8",
    )
    out = tmp_path / "rejected.csv"
    summary = await import_file(
        ImportKind.purchases, rows, settings=settings, rejected_path=out, show_progress=False
    )
    assert (summary.imported, summary.rejected) == (2, 2)
    with out.open(encoding="utf-8") as file:
        reasons = [(row["line"], row["reason"]) for row in csv.DictReader(file)]
    assert [line for line, _ in reasons] == ["3", "4"]
    assert reasons[0][1].startswith("currency: No exchange rate from EUR to CNY")
    assert reasons[1][1].startswith("currency: No exchange rate from USD to CNY is in force on 2023-12-01")
    recorded = [e["data"] for e in await staged(service, "csm.purchase.recorded.v1")]
    assert [(e["order_id"], e["amount"], e["original_amount"], e["original_currency"]) for e in recorded] == [
        ("IM-1", "72.00", "10.00", "USD"),
        ("IM-4", "10.00", "10.00", "CNY"),
    ]


async def test_the_csm_rates_command_states_and_lists_rates(customers: Stack) -> None:
    app = customers["customer"].app
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"

    async def csm(*arguments: str) -> Result:
        # In a thread: the command blocks, and the service answers on this loop.
        return await asyncio.to_thread(lambda: CliRunner().invoke(cli.app, [*arguments, "--url", url]))

    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await eventually(lambda: _answers(client))
        added = await csm("rates", "add", "usd", "7.2", "--from", "2026-01-01T00:00:00Z")
        assert added.exit_code == 0, added.output
        assert "USD = 7.2 CNY from 2026-01-01T00:00:00Z" in added.output
        refused = await csm("rates", "add", "USD", "7.3", "--from", "2026-01-01T00:00:00Z")
        assert refused.exit_code == 1 and "409" in refused.output
        listed = await csm("rates", "list", "--currency", "USD")
        assert (
            listed.exit_code == 0 and "USD  7.2 CNY  from 2026-01-01T00:00:00Z  by csm-cli" in listed.output
        )
    finally:
        server.should_exit = True
        await serving


async def _answers(client: httpx.AsyncClient) -> None:
    try:
        response = await client.get("/readyz")
    except httpx.TransportError as error:  # not listening yet
        raise AssertionError(type(error).__name__) from error
    assert response.status_code == 200, response.text


async def test_the_migration_keeps_earlier_purchases_as_paid_in_the_reporting_currency(
    customers: Stack,
) -> None:
    customer = (await register(customers))["id"]
    bought = await buy(customers, customer, "OLD-1", "12.34", "CNY", "2026-01-01T10:00:00Z")
    refund = {"reference": "R-1", "amount": "2.34", "currency": "CNY"}
    url = f"/customers/{customer}/purchases/{bought.json()['id']}/refunds"
    assert (await customers["customer"].client.post(url, json=refund, headers=auth())).status_code == 201
    database = customers["customer"].database_url
    # As the purchase was before currencies: the columns go, and come back filled from what was kept.
    await migrations.downgrade("customer", database, "0006")
    await migrations.upgrade("customer", database)
    engine = create_engine(database)
    try:
        async with engine.connect() as connection:
            purchase = (
                await connection.execute(
                    sa.text(
                        "SELECT original_amount_minor, original_refunded_minor, original_currency,"
                        " exchange_rate FROM purchase"
                    )
                )
            ).one()
            refunded = await connection.scalar(sa.text("SELECT original_amount_minor FROM refund"))
    finally:
        await engine.dispose()
    assert (tuple(purchase), refunded) == ((1234, 234, "CNY", "1"), 234)
