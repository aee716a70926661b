"""What an agent does from the customer's screen: log an interaction or a behavioural signal, open a
complaint, keep the named contacts and the customer's consents. The services check everything; the console
passes the form on as the person."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from services.console.backends import Backends
from services.console.csrf import CsrfChecked
from services.console.session import SignedIn
from services.console.views import back_to

router = APIRouter()

# The customer service's kinds of interaction, offered in the form (a test holds them to the service's).
INTERACTION_KINDS = ("call", "visit", "email", "chat", "meeting", "message", "signal", "other")

# The customer service's contact roles and consent channels and purposes (tests hold them to the service's).
CONTACT_ROLES = ("decision_maker", "purchasing", "finance", "technical", "other")
CONSENT_CHANNELS = ("email", "sms", "phone", "in_app", "webhook")
CONSENT_PURPOSES = ("service", "marketing")

Choice = Annotated[str, Form(max_length=40)]
Short = Annotated[str, Form(max_length=320)]


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def _given(**fields: str) -> dict[str, Any]:
    """The fields the person filled in: an empty optional field is left out, for the service's default."""
    return {name: value.strip() for name, value in fields.items() if value.strip()}


@router.post("/customers/{customer_id}/interactions")
async def log_interaction(
    request: Request,
    customer_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    channel: Choice,
    kind: Choice,
    outcome: Annotated[str, Form(max_length=200)] = "",
    sentiment: Choice = "",
    signal: Choice = "",
) -> Response:
    body = _given(channel=channel, kind=kind, outcome=outcome, sentiment=sentiment, signal=signal)
    await _backends(request).post(person, "customer", f"/customers/{customer_id}/interactions", body)
    return back_to(f"/customers/{customer_id}")


@router.post("/customers/{customer_id}/complaints")
async def open_complaint(
    request: Request,
    customer_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    channel: Choice,
    category: Choice,
    severity: Choice,
    description: Annotated[str, Form(min_length=1, max_length=4000)],
    desired_outcome: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    body = {
        "customer_id": str(customer_id),
        **_given(channel=channel, category=category, severity=severity, description=description),
        **_given(desired_outcome=desired_outcome),
    }
    opened = await _backends(request).post(person, "complaints", "/complaints", body)
    return back_to(f"/complaints/{opened['id']}")


@router.post("/customers/{customer_id}/contacts")
async def add_contact(
    request: Request,
    customer_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Choice,
    title: Short = "",
    email: Short = "",
    phone: Short = "",
) -> Response:
    body = {"name": name.strip(), "role": role, **_given(title=title, email=email, phone=phone)}
    await _backends(request).post(person, "customer", f"/customers/{customer_id}/contacts", body)
    return back_to(f"/customers/{customer_id}#contacts")


@router.post("/customers/{customer_id}/contacts/{contact_id}")
async def change_contact(
    request: Request,
    customer_id: uuid.UUID,
    contact_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Choice,
    title: Short = "",
    email: Short = "",
    phone: Short = "",
) -> Response:
    """The form shows every field: one left empty is cleared."""
    body = {
        "name": name.strip(),
        "role": role,
        **{
            field: value.strip() or None
            for field, value in (("title", title), ("email", email), ("phone", phone))
        },
    }
    path = f"/customers/{customer_id}/contacts/{contact_id}"
    await _backends(request).patch(person, "customer", path, body)
    return back_to(f"/customers/{customer_id}#contacts")


@router.post("/customers/{customer_id}/contacts/{contact_id}/remove")
async def remove_contact(
    request: Request, customer_id: uuid.UUID, contact_id: uuid.UUID, person: SignedIn, _csrf: CsrfChecked
) -> Response:
    await _backends(request).delete(person, "customer", f"/customers/{customer_id}/contacts/{contact_id}")
    return back_to(f"/customers/{customer_id}#contacts")


@router.post("/customers/{customer_id}/consents")
async def record_consent(
    request: Request,
    customer_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    channel: Choice,
    purpose: Choice,
    granted: Annotated[bool, Form()],
    source: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    """The customer's word for one channel and purpose, and where they gave it."""
    if channel not in CONSENT_CHANNELS or purpose not in CONSENT_PURPOSES:
        return back_to(f"/customers/{customer_id}#consents")
    path = f"/customers/{customer_id}/consents/{channel}/{purpose}"
    await _backends(request).put(person, "customer", path, {"granted": granted, "source": source.strip()})
    return back_to(f"/customers/{customer_id}#consents")
