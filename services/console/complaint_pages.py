"""A complaint's page (its whole story and the actions on it) and the approval queue for compensation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console import workflow
from services.console.backends import Backends
from services.console.clocks import read_clock
from services.console.csrf import CsrfChecked
from services.console.i18n import translator
from services.console.session import SignedIn
from services.console.views import back_to, language, notify, render
from shared.roles import Role

router = APIRouter()

Reason = Annotated[str, Form(max_length=500)]


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


@router.get("/complaints/{complaint_id}", response_class=HTMLResponse)
async def complaint_page(request: Request, complaint_id: uuid.UUID, person: SignedIn) -> Response:
    backends = _backends(request)
    base = f"/complaints/{complaint_id}"
    complaint = await backends.get(person, "complaints", base)
    customer = await backends.get(person, "customer", f"/customers/{complaint['customer_id']}")
    policy = await backends.get(person, "complaints", "/complaint-policy")
    now = datetime.now(UTC)
    status = complaint["status"]
    return render(
        request,
        "complaint.html",
        complaint=complaint,
        customer=customer,
        readings=[read_clock(clock, now=now) for clock in complaint["clocks"]],
        transitions=(await backends.get(person, "complaints", f"{base}/transitions", limit=200))["items"],
        escalations=(await backends.get(person, "complaints", f"{base}/escalations", limit=200))["items"],
        compensations=(await backends.get(person, "complaints", f"{base}/compensations", limit=200))["items"],
        surveys=(await backends.get(person, "complaints", f"{base}/surveys", limit=200))["items"],
        moves=workflow.simple_moves(status),
        may_resolve=workflow.may_resolve(status),
        may_reopen=workflow.may_reopen(status),
        is_open=status in workflow.OPEN,
        root_causes=policy["policy"]["root_causes"],
        limit=policy["policy"]["compensation_limits"].get(person.role.value),
    )


@router.post("/complaints/{complaint_id}/move")
async def move(
    request: Request,
    complaint_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    to: Annotated[str, Form(max_length=30)],
    reason: Reason = "",
) -> Response:
    body = {"to": to, **({"reason": reason} if reason.strip() else {})}
    await _backends(request).post(person, "complaints", f"/complaints/{complaint_id}/transitions", body)
    return back_to(f"/complaints/{complaint_id}")


@router.post("/complaints/{complaint_id}/resolve")
async def resolve(
    request: Request,
    complaint_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    summary: Annotated[str, Form(min_length=1, max_length=4000)],
    root_cause: Annotated[str, Form(min_length=1, max_length=60)],
) -> Response:
    body = {"summary": summary, "root_cause": root_cause}
    await _backends(request).post(person, "complaints", f"/complaints/{complaint_id}/resolution", body)
    return back_to(f"/complaints/{complaint_id}")


@router.post("/complaints/{complaint_id}/reopen")
async def reopen(
    request: Request, complaint_id: uuid.UUID, person: SignedIn, _csrf: CsrfChecked, reason: Reason
) -> Response:
    await _backends(request).post(
        person, "complaints", f"/complaints/{complaint_id}/reopen", {"reason": reason}
    )
    return back_to(f"/complaints/{complaint_id}")


@router.post("/complaints/{complaint_id}/compensation")
async def offer_compensation(
    request: Request,
    complaint_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    amount: Annotated[Decimal, Form(gt=0, max_digits=14, decimal_places=2)],
    currency: Annotated[str, Form(pattern=r"^[A-Z]{3}$")],
    reason: Reason,
) -> Response:
    offered = await _backends(request).post(
        person,
        "complaints",
        f"/complaints/{complaint_id}/compensations",
        {"amount": str(amount), "currency": currency, "reason": reason},
    )
    if offered["status"] == "pending":
        t = translator(language(request))
        role = t(f"role.{offered['requires_role']}")
        notify(request, t("compensation.waits").format(amount=offered["amount"], role=role))
    return back_to(f"/complaints/{complaint_id}")


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(request: Request, person: SignedIn) -> Response:
    pending = await _backends(request).get(
        person, "complaints", "/compensations", status="pending", limit=200
    )
    return render(
        request,
        "approvals.html",
        pending=pending["items"],
        may_decide=person.role is not Role.agent,
    )


@router.post("/approvals/{compensation_id}")
async def decide(
    request: Request,
    compensation_id: uuid.UUID,
    person: SignedIn,
    _csrf: CsrfChecked,
    approve: Annotated[bool, Form()],
    reason: Reason = "",
) -> Response:
    body: dict[str, Any] = {"approve": approve, **({"reason": reason} if reason.strip() else {})}
    await _backends(request).post(person, "complaints", f"/compensations/{compensation_id}/decision", body)
    return back_to("/approvals")
