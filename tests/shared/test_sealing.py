"""Personal fields of events are sealed per customer, and an erased customer's can never be opened."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from shared.db import utcnow
from shared.events.asyncapi import asyncapi_document
from shared.events.complaints import ComplaintEscalated
from shared.events.customer import CustomerRegistered
from shared.sealing import ERASED, PREFIX, KeyStore, Sealer, redacted

REGISTERED = CustomerRegistered.type


def profile_data(customer: uuid.UUID) -> dict[str, object]:
    return {
        "customer_id": str(customer),
        "profile": {"kind": "consumer", "name": "Li Na", "email": "li.na@example.com", "phone": None},
        "registered_at": "2026-12-01T00:00:00+00:00",
    }


@pytest.fixture
async def sealer(tmp_path: Path) -> Sealer:
    return Sealer(KeyStore(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"))


async def test_personal_fields_travel_sealed_and_open_for_whoever_has_the_store(
    sealer: Sealer, tmp_path: Path
) -> None:
    customer = uuid.uuid4()
    await sealer.load([customer], create=True)
    sealed = sealer.seal(REGISTERED, profile_data(customer), customer)
    assert sealed["profile"]["name"].startswith(PREFIX) and sealed["profile"]["email"].startswith(PREFIX)
    assert sealed["profile"]["kind"] == "consumer" and sealed["profile"]["phone"] is None
    assert "Li Na" not in str(sealed)

    another_process = Sealer(KeyStore(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"))
    await another_process.load([customer])
    assert another_process.open(REGISTERED, sealed, customer) == profile_data(customer)
    with pytest.raises(KeyError):
        another_process.open(REGISTERED, sealed, uuid.uuid4())
    await sealer.store.close()
    await another_process.store.close()


async def test_a_sealed_value_opens_only_in_its_own_customers_event_and_field(sealer: Sealer) -> None:
    customer, other = uuid.uuid4(), uuid.uuid4()
    await sealer.load([customer, other], create=True)
    sealed = sealer.seal(REGISTERED, profile_data(customer), customer)
    moved = {**profile_data(other), "profile": sealed["profile"]}
    with pytest.raises(ValueError, match="does not open"):
        sealer.open(REGISTERED, moved, other)
    swapped = {**sealed, "profile": {**sealed["profile"], "name": sealed["profile"]["email"]}}
    with pytest.raises(ValueError, match="does not open"):
        sealer.open(REGISTERED, swapped, customer)
    await sealer.store.close()


async def test_erasure_destroys_the_key_for_good(sealer: Sealer, tmp_path: Path) -> None:
    customer = uuid.uuid4()
    await sealer.load([customer], create=True)
    sealed = sealer.seal(REGISTERED, profile_data(customer), customer)
    key = (await sealer.store.keys([customer], create=False))[customer]
    files = (tmp_path / "keys.db", tmp_path / "keys.db-wal")
    assert key is not None and key in b"".join(path.read_bytes() for path in files)
    await sealer.erase([customer], at=utcnow())

    fresh = Sealer(KeyStore(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"))
    await fresh.load([customer], create=True)  # asking for a key again makes none
    opened = fresh.open(REGISTERED, sealed, customer)
    assert opened["profile"]["name"] == ERASED and opened["profile"]["email"] is None
    assert fresh.seal(REGISTERED, profile_data(customer), customer)["profile"]["name"] == ERASED
    assert await fresh.store.keys([customer], create=True) == {customer: None}
    assert key not in b"".join(path.read_bytes() for path in files), (
        "no copy of the key in the file, its free pages or its log"
    )
    await sealer.store.close()
    await fresh.store.close()


def test_retained_copies_are_redacted_field_by_field() -> None:
    customer = uuid.uuid4()
    escalation = {"customer_id": str(customer), "reason": "threatens the press, +8613955556666", "level": 1}
    assert redacted(ComplaintEscalated.type, escalation) == {**escalation, "reason": ERASED}
    assert redacted(REGISTERED, profile_data(customer))["profile"] == {
        "kind": "consumer",
        "name": ERASED,
        "email": None,
        "phone": None,
    }


def test_the_event_catalog_says_which_fields_travel_sealed() -> None:
    document = asyncapi_document(
        title="t", version="1", publishes=["csm.customer"], consumes=[], bootstrap="b:9092"
    )
    sealed = {m["name"]: m.get("x-csm-sealed") for m in document["components"]["messages"].values()}
    assert sealed[REGISTERED] == [f"data.{path}" for path in CustomerRegistered.personal]
    assert sealed["csm.purchase.recorded.v1"] is None
