"""Contacts, the relationship record, installations and attachments over HTTP."""

from __future__ import annotations

import pytest

from tests.customer.helpers import business, register, staged
from tests.harness import Stack, auth, problem


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def test_a_business_keeps_several_named_contacts_with_roles_and_their_own_reach(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    acme = await business(customers)
    base = f"/customers/{acme['id']}/contacts"
    people = [
        {
            "name": "Zhang Wei",
            "role": "decision_maker",
            "title": "CEO",
            "email": "Wei@Acme.example",
            "phone": "+8613900000001",
        },
        {
            "name": "Liu Fang",
            "role": "purchasing",
            "phone": "+86 139 0000 0002",
            "backup_phone": "+8613900000003",
        },
        {"name": "Chen Jing", "role": "finance", "email": "finance@acme.example"},
        {"name": "Sun Lei", "role": "technical"},
    ]
    for person in people:
        assert (await client.post(base, json=person, headers=auth())).status_code == 201
    listed = (await client.get(base, headers=auth())).json()
    assert [(c["role"], c["name"]) for c in listed] == [
        ("decision_maker", "Zhang Wei"),
        ("finance", "Chen Jing"),
        ("purchasing", "Liu Fang"),
        ("technical", "Sun Lei"),
    ]
    assert listed[0]["email"] == "wei@acme.example" and listed[2]["phone"] == "+8613900000002"
    view = (await client.get(f"/customers/{acme['id']}/360", headers=auth())).json()
    assert len(view["contacts"]) == 4 and view["contact_warning"] is None

    liu = listed[2]["id"]
    changed = await client.patch(
        f"{base}/{liu}", json={"role": "decision_maker", "title": "COO"}, headers=auth()
    )
    assert changed.status_code == 200 and changed.json()["role"] == "decision_maker"
    assert (await client.patch(f"{base}/{liu}", json={"name": None}, headers=auth())).status_code == 422
    assert (
        await client.patch(f"{base}/{liu}", json={"backup_phone": "+8613900000002"}, headers=auth())
    ).status_code == 422
    for contact in listed[1:]:
        assert (await client.delete(f"{base}/{contact['id']}", headers=auth())).status_code == 204
    assert (await client.delete(f"{base}/{liu}", headers=auth())).status_code == 404
    view = (await client.get(f"/customers/{acme['id']}/360", headers=auth())).json()
    assert "relationship should not hang on one person" in view["contact_warning"]


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"name": "X", "role": "boss"}, "role"),
        ({"name": "", "role": "other"}, "name"),
        ({"name": "X", "role": "other", "phone": "12345"}, "phone"),
        ({"name": "X", "role": "other", "email": "x@"}, "email"),
        ({"name": "X", "role": "other", "shoe_size": 42}, "shoe_size"),
    ],
)
async def test_a_bad_contact_is_422_naming_the_field(
    customer_api: Stack, contact: dict[str, object], field: str
) -> None:
    acme = await business(customer_api)
    response = await customer_api["customer"].client.post(
        f"/customers/{acme['id']}/contacts", json=contact, headers=auth()
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


async def test_an_individual_has_no_contacts_list(customer_api: Stack) -> None:
    person = await register(customer_api)
    response = await customer_api["customer"].client.post(
        f"/customers/{person['id']}/contacts", json={"name": "Her Husband", "role": "other"}, headers=auth()
    )
    assert problem(response, 409) == "not-an-organisation"


async def test_the_relationship_record_installations_and_attachments(customers: Stack) -> None:
    client = customers["customer"].client
    acme = await business(customers)
    base = f"/customers/{acme['id']}"
    assert (await client.get(f"{base}/relationship", headers=auth())).json()["competitors"] == []
    record = {
        "past_cooperation": "Bought pumps 2019-2022.",
        "current_cooperation": "Annual service contract.",
        "expected_cooperation": "Second factory in 2027.",
        "competitors": ["Rival Pumps Ltd"],
        "notes": "Loyal.",
    }
    written = await client.put(f"{base}/relationship", json=record, headers=auth())
    assert written.status_code == 200 and written.json()["competitors"] == ["Rival Pumps Ltd"]
    assert (await client.get(f"{base}/relationship", headers=auth())).json()[
        "expected_cooperation"
    ] == "Second factory in 2027."

    pump = {
        "product": "Pump X200",
        "serial_number": "SN-1",
        "location": "Plant 2",
        "installed_at": "2024-03-01T08:00:00Z",
        "warranty_until": "2027-03-01T08:00:00Z",
    }
    assert (await client.post(f"{base}/installations", json=pump, headers=auth())).status_code == 201
    backwards = {**pump, "warranty_until": "2020-01-01T00:00:00Z"}
    bad = await client.post(f"{base}/installations", json=backwards, headers=auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "warranty_until"
    assert [
        i["serial_number"] for i in (await client.get(f"{base}/installations", headers=auth())).json()
    ] == ["SN-1"]

    photo = {
        "kind": "store_front_photo",
        "url": "https://files.example.com/acme/front.jpg",
        "caption": "Main street",
    }
    added = await client.post(f"{base}/attachments", json=photo, headers=auth())
    assert added.status_code == 201
    for bad_url in ("file:///etc/passwd", "javascript:alert(1)", "not a url"):
        refused = await client.post(f"{base}/attachments", json={**photo, "url": bad_url}, headers=auth())
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "url"
    assert [a["kind"] for a in (await client.get(f"{base}/attachments", headers=auth())).json()] == [
        "store_front_photo"
    ]
    assert (
        await client.delete(f"{base}/attachments/{added.json()['id']}", headers=auth())
    ).status_code == 204
    assert (await client.get(f"{base}/attachments", headers=auth())).json() == []


async def test_a_contacts_address_is_announced_when_it_is_added_changed_and_removed(customers: Stack) -> None:
    """complaints places mail by these events (``csm.customer.contact_changed``)."""
    client = customers["customer"].client
    acme = await business(customers)
    base = f"/customers/{acme['id']}/contacts"
    added = await client.post(
        base, json={"name": "Zhang Wei", "role": "other", "email": "w@acme.example"}, headers=auth()
    )
    contact = added.json()["id"]
    await client.patch(f"{base}/{contact}", json={"title": "CEO"}, headers=auth())  # not about the address
    await client.patch(f"{base}/{contact}", json={"email": "wei@acme.example"}, headers=auth())
    assert (await client.delete(f"{base}/{contact}", headers=auth())).status_code == 204
    announced = [e["data"] for e in await staged(customers["customer"], "csm.customer.contact_changed.v1")]
    assert [(e["contact_id"], e["email"], e["removed"]) for e in announced] == [
        (contact, "w@acme.example", False),
        (contact, "wei@acme.example", False),
        (contact, None, True),
    ]
