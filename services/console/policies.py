"""The policies: readable by everyone signed in, editable by managers, who see before they apply:
- the segmentation policy: what a candidate would do to today's customers (the service's what-if);
- the complaint policy and notify's follow-up policy (quiet hours, marketing cap, offers): each field
  the candidate changes (the services have no what-if; they check the whole policy when it is put in
  force, and refuse it with their reasons);
- notify's playbooks: what a draft would do for an event or a customer (the service's dry run)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.console.backends import Backends, Service, ServiceRefused
from services.console.csrf import CsrfChecked
from services.console.i18n import translator
from services.console.policy_changes import changes
from services.console.session import Person, SignedIn
from services.console.views import back_to, language, notify, render
from shared.roles import STAFF_RANK, Role

router = APIRouter()

Document = Annotated[str, Form(min_length=2, max_length=200_000)]

# The policies with no what-if in their service: a manager sees each field a candidate changes, and the
# service checks the whole policy when it is put in force. Kind: (service, path of the policy in force).
REVIEWED: dict[str, tuple[Service, str]] = {
    "complaints": ("complaints", "/complaint-policy"),
    "follow_up": ("notify", "/policy"),
}
Reviewed = Literal["complaints", "follow_up"]


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def _may_edit(person: Person) -> bool:
    return STAFF_RANK.get(person.role, 0) >= STAFF_RANK[Role.manager]


def _text(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


async def _page(
    request: Request,
    person: Person,
    *,
    candidate: str | None = None,
    outcome: dict[str, Any] | None = None,
    reviewed: tuple[str, str, list[Any]] | None = None,
) -> Response:
    """``reviewed``: the kind of a reviewed policy, its candidate as written, and what it changes."""
    backends = _backends(request)
    segmentation = await backends.get(person, "segmentation", "/policy")
    documents = []
    for kind, (service, path) in REVIEWED.items():
        in_force = await backends.get(person, service, path)
        mine = reviewed is not None and reviewed[0] == kind
        documents.append(
            {
                "kind": kind,
                "in_force": in_force,
                "text": reviewed[1] if reviewed and mine else _text(in_force["policy"]),
                "changes": reviewed[2] if reviewed and mine else None,
            }
        )
    playbooks = await backends.get(person, "notify", "/playbooks")
    return render(
        request,
        "policies.html",
        segmentation=segmentation,
        segmentation_text=candidate or _text(segmentation["policy"]),
        documents=documents,
        playbooks=playbooks,
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
    try:
        stored = await backends.put(person, "segmentation", "/policy", draft)
    except ServiceRefused as refused:
        notify(request, refused.detail)
        return await _page(request, person, candidate=document)
    outcome = await backends.post(person, "segmentation", f"/policy/versions/{stored['version']}/apply")
    moved = outcome["changed"].get("tier", 0)
    notify(
        request,
        translator(language(request))("policy.applied").format(version=stored["version"], moved=moved),
    )
    return back_to("/policies")


@router.post("/policies/{kind}/review", response_class=HTMLResponse)
async def review_policy(
    request: Request, person: SignedIn, _csrf: CsrfChecked, kind: Reviewed, document: Document
) -> Response:
    candidate = _parsed(request, document)
    if candidate is None:
        return back_to(f"/policies#{kind}")
    service, path = REVIEWED[kind]
    in_force = await _backends(request).get(person, service, path)
    return await _page(request, person, reviewed=(kind, document, changes(in_force["policy"], candidate)))


@router.post("/policies/{kind}/apply")
async def apply_policy(
    request: Request, person: SignedIn, _csrf: CsrfChecked, kind: Reviewed, document: Document
) -> Response:
    candidate = _parsed(request, document)
    if candidate is None:
        return back_to(f"/policies#{kind}")
    service, path = REVIEWED[kind]
    try:
        stored = await _backends(request).put(person, service, path, candidate)
    except ServiceRefused as refused:
        # The page again with the candidate as written, to be mended (the form posted from is no page).
        notify(request, refused.detail)
        return await review_policy(request, person, _csrf, kind, document)
    words = translator(language(request))
    notify(
        request,
        words("policy.reviewed_applied").format(policy=words(f"policy.{kind}"), version=stored["version"]),
    )
    return back_to(f"/policies#{kind}")


PlaybookKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,59}$")]


async def _playbook_page(
    request: Request,
    person: Person,
    key: str,
    *,
    draft: str | None = None,
    trial: dict[str, str] | None = None,
    outcome: dict[str, Any] | None = None,
) -> Response:
    backends = _backends(request)
    playbook = await backends.get(person, "notify", f"/playbooks/{key}")
    return render(
        request,
        "playbook.html",
        playbook=playbook,
        definition_text=draft or _text(playbook["definition"]),
        trial=trial or {},
        may_edit=_may_edit(person),
        outcome=outcome,
    )


@router.get("/policies/playbooks/{key}", response_class=HTMLResponse)
async def playbook(request: Request, person: SignedIn, key: PlaybookKey) -> Response:
    return await _playbook_page(request, person, key)


@router.post("/policies/playbooks/{key}/dry-run", response_class=HTMLResponse)
async def playbook_dry_run(
    request: Request,
    person: SignedIn,
    _csrf: CsrfChecked,
    key: PlaybookKey,
    document: Document,
    customer_id: Annotated[str, Form(max_length=36)] = "",
    event_type: Annotated[str, Form(max_length=200)] = "",
    event_data: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """What the draft would do, for an event (every playbook it would start, the draft standing for this
    one) or, for a calendar or announcement playbook, for a customer; nothing is written or sent."""
    draft = _parsed(request, document)
    data = _parsed(request, event_data) if event_data.strip() else {}
    if draft is None or data is None:
        return back_to(f"/policies/playbooks/{key}")
    asked: dict[str, Any] = {"playbook_key": key, "draft": draft}
    if event_type.strip():
        if customer_id.strip():
            data.setdefault("customer_id", customer_id.strip())
        asked["event"] = {"type": event_type.strip(), "data": data}
    elif customer_id.strip():
        asked["customer_id"] = customer_id.strip()
    outcome = await _backends(request).post(person, "notify", "/playbooks/dry-run", asked)
    trial = {"customer_id": customer_id, "event_type": event_type, "event_data": event_data}
    return await _playbook_page(request, person, key, draft=document, trial=trial, outcome=outcome)


@router.post("/policies/playbooks/{key}/apply")
async def playbook_apply(
    request: Request, person: SignedIn, _csrf: CsrfChecked, key: PlaybookKey, document: Document
) -> Response:
    draft = _parsed(request, document)
    if draft is None:
        return back_to(f"/policies/playbooks/{key}")
    try:
        saved = await _backends(request).put(person, "notify", f"/playbooks/{key}", draft)
    except ServiceRefused as refused:
        notify(request, refused.detail)
        return await _playbook_page(request, person, key, draft=document)
    notify(
        request,
        translator(language(request))("playbook.applied").format(key=key, version=saved["version"]),
    )
    return back_to(f"/policies/playbooks/{key}")


# A what-if, review or dry run answers its form with a page, so a form sent from that page names it as
# where it came from; a refusal sends the person back there, and it is the policies page again.
@router.get("/policies/segmentation/what-if", include_in_schema=False)
async def back_to_policies(_person: SignedIn) -> Response:
    return back_to("/policies")


@router.get("/policies/{kind}/review", include_in_schema=False)
async def back_to_a_policy(kind: Reviewed, _person: SignedIn) -> Response:
    return back_to(f"/policies#{kind}")


@router.get("/policies/playbooks/{key}/dry-run", include_in_schema=False)
async def back_to_playbook(key: PlaybookKey, _person: SignedIn) -> Response:
    return back_to(f"/policies/playbooks/{key}")
