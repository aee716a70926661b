"""Profiles over HTTP: full validation, changes and the events that carry them, roles."""

from __future__ import annotations

from typing import Any

import pytest

from shared.roles import Role
from tests.customer.helpers import business, register, staged
from tests.harness import Stack, auth, problem

FULL = {
    "kind": "business",
    "name": "Acme Trading Co.",
    "email": "Buyer@Acme.example",
    "phone": "+86 21 6123 4567",
    "backup_phone": "+86 138 1234 5678",
    "locale": "zh-Hans-CN",
    "time_zone": "Asia/Shanghai",
    "address": "88 Century Avenue, Pudong",
    "region": "East",
    "industry": "Retail",
    "company_size": "medium",
    "acquisition_source": "Canton Fair 2026",
    "acquisition_channel": "field_sales",
    "status": "active",
    "tags": ["Wholesale", "key region", "wholesale"],
    "account_manager": "am-7",
    "notes": "Prefers calls after 10am.",
    "external_id": "ERP-1001",
    "customer_since": "2019-05-01T00:00:00+08:00",
}


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def test_a_full_business_profile_is_stored_normalised_and_announced_with_every_field_others_use(
    customers: Stack,
) -> None:
    customer = await register(customers, **FULL)
    assert customer["email"] == "buyer@acme.example"
    assert (customer["phone"], customer["backup_phone"]) == ("+862161234567", "+8613812345678")
    assert customer["tags"] == ["wholesale", "key region"]
    assert customer["customer_since"] == "2019-04-30T16:00:00Z"
    assert customer["industry"] == "Retail" and customer["company_size"] == "medium"
    [event] = await staged(customers["customer"], "csm.customer.registered.v1")
    profile = event["data"]["profile"]
    assert profile == {
        "kind": "business",
        "name": "Acme Trading Co.",
        "email": "buyer@acme.example",
        "phone": "+862161234567",
        "backup_phone": "+8613812345678",
        "locale": "zh-Hans-CN",
        "time_zone": "Asia/Shanghai",
        "region": "East",
        "status": "active",
        "tags": ["wholesale", "key region"],
        "account_manager": "am-7",
    }
    assert event["data"]["imported"] is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"industry": "Retail"}, "industry"),
        ({"company_size": "medium"}, "company_size"),
        ({"phone": "+8613812345678", "backup_phone": "+86 138 1234 5678"}, "backup_phone"),
        ({"locale": "xx-CN"}, "locale"),
        ({"locale": "zh-XX"}, "locale"),
        ({"status": "erased"}, "status"),
        ({"tags": ["<b>"]}, "tags.0"),
        ({"acquisition_channel": "pigeon"}, "acquisition_channel"),
        ({"customer_since": "2019-05-01"}, "customer_since"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"address": "x" * 501}, "address"),
    ],
)
async def test_a_profile_a_person_would_not_accept_is_422_naming_the_field(
    customer_api: Stack, fields: dict[str, Any], field: str
) -> None:
    response = await customer_api["customer"].client.post(
        "/customers", json={"name": "Li Na", **fields}, headers=auth()
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_an_external_id_names_one_customer(customers: Stack) -> None:
    first = await register(customers, external_id="ERP-9")
    again = await customers["customer"].client.post(
        "/customers", json={"name": "Someone Else", "external_id": "ERP-9"}, headers=auth()
    )
    assert problem(again, 409) == "external-id-taken" and first["id"] in again.json()["detail"]


async def test_a_change_emits_the_whole_profile_and_what_changed(customers: Stack) -> None:
    customer = await register(customers, email="li@example.com")
    client = customers["customer"].client
    changed = await client.patch(
        f"/customers/{customer['id']}",
        json={
            "email": "LI.NA@example.com",
            "status": "dormant",
            "tags": ["tea"],
            "region": None,
            "time_zone": "Europe/Paris",
        },
        headers=auth(),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "li.na@example.com" and changed.json()["status"] == "dormant"
    [event] = await staged(customers["customer"], "csm.customer.updated.v1")
    assert event["data"]["changed"] == ["email", "status", "tags", "time_zone"]
    assert event["data"]["profile"]["email"] == "li.na@example.com"
    assert event["data"]["profile"]["time_zone"] == "Europe/Paris" and event["data"]["profile"]["tags"] == [
        "tea"
    ]
    same_again = await client.patch(
        f"/customers/{customer['id']}", json={"status": "dormant"}, headers=auth()
    )
    assert same_again.status_code == 200
    assert len(await staged(customers["customer"], "csm.customer.updated.v1")) == 1, "no change, no event"
    renamed = await client.patch(f"/customers/{customer['id']}", json={"name": "Li  Na-Wang"}, headers=auth())
    assert renamed.json()["name"] == "Li Na-Wang"
    found = await client.get("/customers", params={"name": "li na-w"}, headers=auth())
    assert [c["id"] for c in found.json()["items"]] == [customer["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"kind": None}, "kind"),
        ({"industry": "Retail"}, "industry"),
        ({"backup_phone": "+8613812345678"}, "backup_phone"),
        ({"status": "erased"}, "status"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_change_is_422_and_changes_nothing(
    customer_api: Stack, change: dict[str, Any], field: str
) -> None:
    customer = await register(customer_api, phone="+8613812345678")
    client = customer_api["customer"].client
    response = await client.patch(f"/customers/{customer['id']}", json=change, headers=auth())
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert (await client.get(f"/customers/{customer['id']}", headers=auth())).json() == customer


async def test_a_business_may_become_an_individual_only_without_business_fields(customers: Stack) -> None:
    customer = await business(customers, industry="Retail")
    client = customers["customer"].client
    refused = await client.patch(f"/customers/{customer['id']}", json={"kind": "individual"}, headers=auth())
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "industry"
    allowed = await client.patch(
        f"/customers/{customer['id']}", json={"kind": "individual", "industry": None}, headers=auth()
    )
    assert allowed.status_code == 200 and allowed.json()["kind"] == "individual"


async def test_every_endpoint_needs_a_token_with_the_right_role(customers: Stack) -> None:
    client = customers["customer"].client
    customer = await register(customers)
    assert (await client.get(f"/customers/{customer['id']}")).status_code == 401
    assert (await client.get(f"/customers/{customer['id']}/360")).status_code == 401
    assert (await client.get("/customers", headers={"Authorization": "Bearer nonsense"})).status_code == 401
    assert (
        await client.get(f"/customers/{customer['id']}/360", headers=auth(Role.service))
    ).status_code == 200
    for role in (Role.agent, Role.manager, Role.service):
        assert (await client.delete(f"/customers/{customer['id']}", headers=auth(role))).status_code == 403
    for role in (Role.agent, Role.service):
        merge = await client.post(
            f"/customers/{customer['id']}/merge", json={"duplicate_id": customer["id"]}, headers=auth(role)
        )
        assert merge.status_code == 403
        assert (
            await client.get("/imports/00000000-0000-4000-8000-000000000000", headers=auth(role))
        ).status_code == 403
    openapi = (await client.get("/openapi.json")).json()
    open_paths = {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}
    for path, operations in openapi["paths"].items():
        if path not in open_paths:
            for operation in operations.values():
                assert operation.get("security"), f"{path} has no security"


async def test_an_agent_cannot_name_an_account_manager_a_supervisor_or_a_system_can(customers: Stack) -> None:
    client = customers["customer"].client
    refused = await client.post(
        "/customers", json={"name": "Li Na", "account_manager": "agent-1"}, headers=auth(subject="agent-1")
    )
    assert problem(refused, 403) == "account-manager-needs-supervisor"
    customer = await register(customers)
    himself = await client.patch(
        f"/customers/{customer['id']}", json={"account_manager": "agent-1"}, headers=auth(subject="agent-1")
    )
    assert problem(himself, 403) == "account-manager-needs-supervisor"
    for who in (auth(Role.supervisor), auth(Role.service)):
        named = await client.patch(
            f"/customers/{customer['id']}", json={"account_manager": "am-3"}, headers=who
        )
        assert named.status_code == 200 and named.json()["account_manager"] == "am-3"
