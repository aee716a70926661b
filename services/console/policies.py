"""The policies: readable by everyone signed in; the segmentation policy editable by managers, who see
what a candidate would do to today's customers (the what-if) before they store it and put it in force."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.console.backends import Backends
from services.console.csrf import CsrfChecked
from services.console.i18n import translator
from services.console.session import Person, SignedIn
from services.console.views import back_to, language, notify, render
from shared.roles import STAFF_RANK, Role

router = APIRouter()

Document = Annotated[str, Form(min_length=2, max_length=200_000)]


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def _may_edit(person: Person) -> bool:
    return STAFF_RANK.get(person.role, 0) >= STAFF_RANK[Role.manager]


async def _page(
    request: Request, person: Person, *, candidate: str | None = None, outcome: dict[str, Any] | None = None
) -> Response:
    backends = _backends(request)
    segmentation = await backends.get(person, "segmentation", "/policy")
    complaints = await backends.get(person, "complaints", "/complaint-policy")
    return render(
        request,
        "policies.html",
        segmentation=segmentation,
        segmentation_text=candidate or json.dumps(segmentation["policy"], indent=2, ensure_ascii=False),
        complaints=complaints,
        complaints_text=json.dumps(complaints["policy"], indent=2, ensure_ascii=False),
        may_edit=_may_edit(person),
        outcome=outcome,
    )


@router.get("/policies", response_class=HTMLResponse)
async def policies(request: Request, person: SignedIn) -> Response:
    return await _page(request, person)


def _parsed(request: Request, document: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(document)
    except ValueError as error:
        notify(request, f"{translator(language(request))('policy.not_json')}: {error}")
        return None
    if not isinstance(parsed, dict):
        notify(request, translator(language(request))("policy.not_json"))
        return None
    return parsed


@router.post("/policies/segmentation/what-if", response_class=HTMLResponse)
async def what_if(request: Request, person: SignedIn, _csrf: CsrfChecked, document: Document) -> Response:
    candidate = _parsed(request, document)
    if candidate is None:
        return back_to("/policies")
    outcome = await _backends(request).post(person, "segmentation", "/policy/what-if", candidate)
    return await _page(request, person, candidate=document, outcome=outcome)


@router.post("/policies/segmentation/apply")
async def store_and_apply(
    request: Request,
    person: SignedIn,
    _csrf: CsrfChecked,
    document: Document,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    candidate = _parsed(request, document)
    if candidate is None:
        return back_to("/policies")
    backends = _backends(request)
    draft = {"policy": candidate, **({"note": note.strip()} if note.strip() else {})}
    stored = await backends.put(person, "segmentation", "/policy", draft)
    outcome = await backends.post(person, "segmentation", f"/policy/versions/{stored['version']}/apply")
    moved = outcome["changed"].get("tier", 0)
    notify(
        request,
        translator(language(request))("policy.applied").format(version=stored["version"], moved=moved),
    )
    return back_to("/policies")
