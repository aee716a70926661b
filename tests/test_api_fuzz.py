"""Schemathesis over the four OpenAPI documents: no input is a 500, and every answer is the one declared.

Each service runs with the harness (a real database, no workers) and is fuzzed through its own live
``/openapi.json``, once with an admin's token and once with an agent's: schemathesis's examples,
coverage (boundaries, missing and malformed parameters) and fuzzing phases, valid and invalid
input. Every answer must be no server error, of a declared status, with the declared content type,
headers and body schema.

A few real records are made first, through the API or, where only events make them, through the
service's own consumer; a path or query parameter that names one (``customer_id``, ``task_id``, …)
is drawn from them as often as it is generated: otherwise nearly every request stops at a 404 and
the routes and answers behind it are never reached.

The services run on an event loop of their own, in a thread (an anyio portal): the database engines
and the broker clients belong to the loop that started them, and schemathesis calls synchronously.
Requests go through ``requests`` (schemathesis's transport, so bodies are serialized as it means
them) to an adapter that hands each one to the harness's in-process client on that loop.

Bounded and reproducible: a fixed number of examples per operation, a fixed seed, derandomized
generation, no example database, a deadline per request and a timeout per run.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import requests.adapters
import schemathesis
import urllib3
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import strategies as st
from schemathesis import Case, HookContext
from schemathesis.core.result import Err
from schemathesis.pytest.lazy import get_all_tests

from services.notify.models import Task
from shared.broker import EmbeddedBroker
from shared.events import envelope_for
from shared.roles import Role
from tests.harness import Databases, RunningService, Stack, auth, eventually
from tests.shared.bus_helpers import as_consumed
from tests.shared.event_examples import example

SERVICES = ("customer", "segmentation", "complaints", "notify")
ROLES = (Role.admin, Role.agent)

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]

# Examples per operation in the fuzzing phase (the coverage and examples phases add their own).
MAX_EXAMPLES = 20
SEED = 20260613
# The coverage phase (every boundary and every malformed part of each parameter and body, a few
# hundred cases for a large body) is input validation, which is the same code for every role: the
# admin's run, which reaches every operation, takes it. The agent's run is about what an agent may
# reach and what it is refused, and the fuzzing phase, valid and invalid, covers that.
PHASES = {Role.admin: ["examples", "coverage", "fuzzing"], Role.agent: ["examples", "fuzzing"]}
# One request of any of these services answers in milliseconds; five seconds is a finding, not noise.
REQUEST_DEADLINE_MS = 5_000
# The bound of one service's run with one token; the whole file takes a few minutes.
RUN_TIMEOUT_SECONDS = 240


class _ThroughPortal(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter that sends each request to an in-process service on the portal's loop."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        super().__init__()
        self.portal = portal
        self.client = client

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        body = request.body
        content = body.encode() if isinstance(body, str) else body
        assert content is None or isinstance(content, bytes), type(content)
        # Header values travel as latin-1; httpx counts the body itself.
        headers = {
            name: value.decode("latin-1") if isinstance(value, bytes) else value
            for name, value in request.headers.items()
            if name.lower() != "content-length"
        }

        async def answered() -> httpx.Response:
            return await self.client.request(
                request.method or "GET", request.url or "/", headers=headers, content=content
            )

        answer = self.portal.call(answered)
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=urllib3.HTTPHeaderDict(answer.headers.multi_items()),
            status=answer.status_code,
            reason=answer.reason_phrase,
            version=11,
            preload_content=False,
            request_method=request.method,
        )
        return self.build_response(request, raw)


@dataclass
class Fuzzed:
    service: RunningService
    portal: BlockingPortal
    # Path and query parameter name -> ids of records that exist.
    known: dict[str, list[str]] = field(default_factory=dict)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("http://", _ThroughPortal(self.portal, self.service.client))
        return session

    @property
    def base_url(self) -> str:
        return str(self.service.client.base_url)


async def _ready(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")
    assert answer.status_code == 200, answer.text


async def _made(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> str:
    answer = await client.request(method, path, json=body, headers=auth(Role.admin, subject="fuzz-seed"))
    assert answer.is_success, answer.text
    return str(answer.json()["id"])


async def _consumed(service: RunningService, *event_types: str) -> uuid.UUID:
    """One customer's events, applied by the service's own consumer as if they came from the broker."""
    customer = uuid.uuid4()
    consumer = service.runtime.consumer
    assert consumer is not None
    envelopes = [envelope_for(example(kind, customer), source="/tests/fuzz") for kind in event_types]
    records = as_consumed(envelopes, prefix=service.runtime.bus.settings.topic_prefix)
    await consumer.process(records)
    return customer


async def _ids(client: httpx.AsyncClient, path: str) -> list[str]:
    answer = await client.get(path, headers=auth(Role.admin, subject="fuzz-seed"))
    assert answer.is_success, answer.text
    return [str(item["id"]) for item in answer.json()["items"]]


async def _seed_customer(service: RunningService) -> dict[str, list[str]]:
    client = service.client
    person = await _made(client, "POST", "/customers", {"name": "Li Na"})
    company = await _made(
        client, "POST", "/customers", {"name": "Acme Trading", "kind": "business", "industry": "retail"}
    )
    contact = await _made(
        client, "POST", f"/customers/{company}/contacts", {"name": "Wang Wei", "role": "purchasing"}
    )
    purchase = await _made(
        client,
        "POST",
        f"/customers/{person}/purchases",
        {"order_id": "SO-1", "amount": "1200.00", "currency": "CNY"},
    )
    attachment = await _made(
        client,
        "POST",
        f"/customers/{company}/attachments",
        {"kind": "contract", "url": "https://files.example.com/contract.pdf"},
    )
    return {
        "customer_id": [person, company],
        "contact_id": [contact],
        "purchase_id": [purchase],
        "attachment_id": [attachment],
    }


async def _seed_segmentation(service: RunningService) -> dict[str, list[str]]:
    customer = await _consumed(
        service, "csm.customer.registered.v1", "csm.purchase.recorded.v1", "csm.complaint.opened.v1"
    )
    segment = await service.client.get(f"/segments/{customer}", headers=auth(Role.admin, subject="fuzz-seed"))
    assert segment.is_success, segment.text
    return {"customer_id": [str(customer)]}


async def _seed_complaints(service: RunningService) -> dict[str, list[str]]:
    client = service.client
    customer = await _consumed(service, "csm.customer.registered.v1", "csm.segment.tier_changed.v1")
    complaint = await _made(
        client,
        "POST",
        "/complaints",
        {"customer_id": str(customer), "channel": "phone", "category": "delivery", "description": "Late."},
    )
    compensation = await _made(
        client,
        "POST",
        f"/complaints/{complaint}/compensations",
        {"amount": "50.00", "currency": "CNY", "reason": "A week late."},
    )
    return {"customer_id": [str(customer)], "complaint_id": [complaint], "compensation_id": [compensation]}


async def _seed_notify(service: RunningService) -> dict[str, list[str]]:
    client = service.client
    customer = await _consumed(
        service, "csm.customer.registered.v1", "csm.purchase.recorded.v1", "csm.complaint.opened.v1"
    )
    announcement = await _made(
        client, "POST", "/announcements", {"topic": "solar", "title": "New panels", "body": "They are here."}
    )
    # A playbook's tasks fall due later, to a worker that does not run here: one open task, as it makes them.
    task = Task(
        id=uuid.uuid4(),
        idempotency_key=str(uuid.uuid4()),
        customer_id=customer,
        kind="care_call",
        playbook="first_purchase_care",
        step="care_call",
        title="回访",
        purpose="service",
        assignee=None,
        assignee_role="agent",
        status="open",
        due_at=datetime.now(UTC) + timedelta(days=1),
        created_at=datetime.now(UTC),
    )
    async with service.runtime.db.unit_of_work() as session:
        session.add(task)
    return {
        "customer_id": [str(customer)],
        "announcement_id": [announcement],
        "task_id": [str(task.id)],
        "notification_id": await _ids(client, f"/notifications?customer_id={customer}"),
        "key": ["first_purchase_care"],
    }


SEEDS: dict[str, Callable[[RunningService], Awaitable[dict[str, list[str]]]]] = {
    "customer": _seed_customer,
    "segmentation": _seed_segmentation,
    "complaints": _seed_complaints,
    "notify": _seed_notify,
}


@pytest.fixture(scope="module", params=SERVICES)
def fuzzed(request: pytest.FixtureRequest, broker: EmbeddedBroker, databases: Databases) -> Iterator[Fuzzed]:
    """One service on a loop of its own, shared by the admin's and the agent's run."""
    name: str = request.param
    with start_blocking_portal() as portal:
        stack = Stack(broker.bootstrap, databases)
        try:
            service = portal.call(partial(stack.start, name, run_workers=False))
            # Until the broker answers, /readyz says 503 as documented: that is not what is fuzzed here.
            portal.call(partial(eventually, partial(_ready, service.client), timeout=30))
            known = portal.call(SEEDS[name], service)
            yield Fuzzed(service=service, portal=portal, known=known)
        finally:
            portal.call(stack.close)


def _real_or_generated(known: dict[str, list[str]], values: Any) -> st.SearchStrategy[Any]:
    """``values`` with each parameter that names a record replaced by a real one half of the time."""
    if not isinstance(values, dict):
        return st.just(values)
    names = [name for name in values if known.get(name)]
    if not names:
        return st.just(values)
    choices = {name: st.sampled_from(known[name]) | st.just(values[name]) for name in names}
    return st.fixed_dictionaries(choices).map(lambda chosen: {**values, **chosen})


def load_schema(fuzzed: Fuzzed, role: Role) -> schemathesis.BaseSchema:
    """The service's live OpenAPI document, with the bounds, checks and real ids of this file."""
    answer: httpx.Response = fuzzed.portal.call(fuzzed.service.client.get, "/openapi.json")
    assert answer.status_code == 200, answer.text
    config = schemathesis.Config(seed=SEED)
    project = config.projects.default
    project.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    project.phases.update(phases=PHASES[role])
    project.checks.update(included_check_names=CHECKS)
    project.update(base_url=fuzzed.base_url)
    schema = schemathesis.openapi.from_dict(answer.json(), config=config)

    @schema.hook
    def flatmap_path_parameters(context: HookContext, path_parameters: Any) -> st.SearchStrategy[Any]:
        return _real_or_generated(fuzzed.known, path_parameters)

    @schema.hook
    def flatmap_query(context: HookContext, query: Any) -> st.SearchStrategy[Any]:
        return _real_or_generated(fuzzed.known, query)

    return schema


# A deadline for each request; the run as a whole is bounded by the timeout of the test.
SETTINGS = hypothesis.settings(
    deadline=REQUEST_DEADLINE_MS, suppress_health_check=list(hypothesis.HealthCheck)
)


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS)
@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value)
def test_every_operation_answers_as_documented(fuzzed: Fuzzed, role: Role, subtests: pytest.Subtests) -> None:
    schema = load_schema(fuzzed, role)
    headers = auth(role, subject=f"fuzz-{role.value}")
    with fuzzed.session() as session:

        def call(case: Case[Any]) -> None:
            case.call_and_validate(session=session, headers=headers)

        # What ``schemathesis.pytest.from_fixture`` runs (the examples, coverage and fuzzing of each
        # operation, as configured) without its wrapper, which renames the pytest item through
        # ``Node._nodeid``: pytest 9.2 has no such attribute.
        tests = list(get_all_tests(schema=schema, test_func=call, settings=SETTINGS, given_kwargs=None))
        assert tests, "the document names no operation"
        for built in tests:
            if isinstance(built, Err):
                with subtests.test(msg=built.err().label):
                    raise built.err()
                continue
            operation, test = built.ok()
            with subtests.test(msg=operation.label):
                test()
