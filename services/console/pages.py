"""The pages: my work, the customer on one screen, a complaint. Each calls the services as the person."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.backends import Backends, ServiceRefused
from services.console.clocks import read_clock, urgency
from services.console.csrf import CsrfChecked
from services.console.customer_actions import (
    CONSENT_CHANNELS,
    CONSENT_PURPOSES,
    CONTACT_ROLES,
    INTERACTION_KINDS,
)
from services.console.session import Person, SignedIn
from services.console.views import back_to, render, safe_next
from shared.events.complaints import ComplaintCategory, ComplaintChannel, Severity
from shared.events.customer import BehaviourSignal, InteractionChannel, Sentiment
from shared.events.segmentation import TIER_ORDER

router = APIRouter()

OPEN_STATUSES = ("new", "acknowledged", "in_progress", "waiting_on_customer", "reopened")


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def _with_clocks(complaint: dict[str, Any], now: datetime) -> dict[str, Any]:
    readings = [read_clock(clock, now=now) for clock in complaint.get("clocks", [])]
    return {**complaint, "readings": readings, "urgency": urgency(readings)}


@router.get("/", include_in_schema=False)
async def home(_person: SignedIn) -> Response:
    return back_to("/work")


@router.get("/work", response_class=HTMLResponse)
async def my_work(
    request: Request,
    person: SignedIn,
    tier: Annotated[str | None, Query(max_length=20)] = None,
    severity: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=30)] = None,
    first_owner: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    backends = _backends(request)
    filters = {"tier": tier, "severity": severity, "status": status, "open": None if status else "true"}
    found: dict[str, dict[str, Any]] = {}
    # Mine as first owner and mine as assignee: two questions, one list. A first-owner filter narrows it.
    for mine in ({"first_owner": person.subject}, {"assignee": person.subject}):
        query = {**filters, **mine}
        if first_owner:
            if "first_owner" in mine and first_owner != person.subject:
                continue
            query["first_owner"] = first_owner
        page = await backends.get(person, "complaints", "/complaints", limit=100, **query)
        for complaint in page["items"]:
            found[complaint["id"]] = complaint
    now = datetime.now(UTC)
    complaints = sorted((_with_clocks(c, now) for c in found.values()), key=lambda c: c["urgency"])
    mine_tasks = await backends.get(person, "notify", "/tasks", assignee=person.subject, limit=100)
    for_role = await backends.get(person, "notify", "/tasks", assignee_role=person.role.value, status="open")
    return render(
        request,
        "work.html",
        complaints=complaints,
        tasks=[task for task in mine_tasks["items"] if task["status"] != "done"],
        role_tasks=[task for task in for_role["items"] if task["assignee"] is None],
        filters={"tier": tier, "severity": severity, "status": status, "first_owner": first_owner},
        tiers=[t.value for t in TIER_ORDER],
        severities=[s.value for s in Severity],
        statuses=(*OPEN_STATUSES, "resolved", "closed"),
    )


@router.post("/tasks/{task_id}/claim")
async def claim_task(
    request: Request,
    task_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    next: Annotated[str, Form()] = "",
) -> Response:
    await _backends(request).post(person, "notify", f"/tasks/{task_id}/claim")
    return back_to(safe_next(next))


@router.post("/tasks/{task_id}/complete")
async def complete_task(
    request: Request,
    task_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    outcome: Annotated[str, Form(min_length=1, max_length=4000)],
    next: Annotated[str, Form()] = "",
) -> Response:
    await _backends(request).post(person, "notify", f"/tasks/{task_id}/complete", {"outcome": outcome})
    return back_to(safe_next(next))


def search_by(query: str, *, region: str) -> tuple[str, str]:
    """What the person typed, as the customer search takes it: an e-mail address; a phone number, written
    as people write them (``139 1234 5678`` in the console's region, or ``+86 …``), in E.164; or else the
    start of a name."""
    if "@" in query:
        return "email", query
    if re.fullmatch(r"[+\d][\d\s()-]{4,}", query):
        try:
            number = phonenumbers.parse(query, region)
        except phonenumbers.NumberParseException:
            return "phone", query
        return "phone", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return "name", query


@router.get("/customers", response_class=HTMLResponse)
async def find_customers(
    request: Request, person: SignedIn, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    query = q.strip()
    customers: list[dict[str, Any]] | None = None
    if query:
        field, value = search_by(query, region=request.app.state.settings.phone_region)
        page = await _backends(request).get(person, "customer", "/customers", limit=50, **{field: value})
        customers = page["items"]
    return render(request, "customers.html", q=query, customers=customers)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_360(request: Request, customer_id: uuid.UUID, person: SignedIn) -> Response:
    backends = _backends(request)
    view = await backends.get(person, "customer", f"/customers/{customer_id}/360")
    segment = await _segment(backends, person, customer_id)
    complaints = await backends.get(
        person, "complaints", "/complaints", customer_id=str(customer_id), open="true", limit=50
    )
    tasks = await backends.get(person, "notify", "/tasks", customer_id=str(customer_id), limit=20)
    now = datetime.now(UTC)
    return render(
        request,
        "customer.html",
        view=view,
        segment=segment,
        complaints=sorted((_with_clocks(c, now) for c in complaints["items"]), key=lambda c: c["urgency"]),
        tasks=[task for task in tasks["items"] if task["status"] != "done"],
        interaction_channels=[c.value for c in InteractionChannel],
        interaction_kinds=INTERACTION_KINDS,
        sentiments=[s.value for s in Sentiment],
        signals=[s.value for s in BehaviourSignal],
        complaint_channels=[c.value for c in ComplaintChannel],
        categories=[c.value for c in ComplaintCategory],
        severities=[s.value for s in Severity],
        contact_roles=CONTACT_ROLES,
        consent_channels=CONSENT_CHANNELS,
        consent_purposes=CONSENT_PURPOSES,
    )


async def _segment(backends: Backends, person: Person, customer_id: uuid.UUID) -> dict[str, Any] | None:
    """Segmentation's own record, with why the tier is what it is; none before its first event arrives."""
    try:
        segment: dict[str, Any] = await backends.get(person, "segmentation", f"/segments/{customer_id}")
    except ServiceRefused as refused:
        if refused.status == 404:
            return None
        raise
    return segment


@router.post("/language")
async def choose_language(
    request: Request,
    _csrf: CsrfChecked,
    language: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    if language in ("zh", "en"):
        request.session["language"] = language
    return back_to(safe_next(next))
