"""One customer's purchase is one trace across customer, segmentation and notify, and its log lines say so.

The services export over OTLP/HTTP to a real receiver started here, as they would to a collector;
the purchase goes in over HTTP, out through the outbox and the real broker, moves the tier and
ends in a welcome e-mail at a real SMTP server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from shared.observability import QUIETED, configure_logging
from shared.settings import CommonSettings
from tests.harness import Stack, auth, eventually
from tests.notify.fixtures import http_receiver, mailbox
from tests.notify.receivers import HttpReceiver, Mailbox
from tests.notify.support import start_notify, subject
from tests.otlp import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

__all__ = ["http_receiver", "mailbox"]

NAME, EMAIL, PHONE = "Li Na", "li.na@example.com", "+86 138 1234 5678"
WELCOME = "欢迎成为金卡会员"
SERVER, CONSUMER, PRODUCER, CLIENT = 2, 5, 4, 3  # OTLP span kinds


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


class Lines(logging.Handler):
    """What the handler csm configures writes (JSON lines, masked, with trace ids), kept in memory."""

    def __init__(self, real: logging.Handler) -> None:
        super().__init__()
        self.real = real
        self.filters = real.filters
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.real.format(record))


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """csm's logging as ``csm serve`` configures it, at its most talkative level, captured."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in QUIETED}
    configure_logging("DEBUG", "json")
    [real] = root.handlers
    lines = Lines(real)
    root.handlers[:] = [lines]
    yield lines
    root.handlers[:], level, quieted = saved
    root.setLevel(level)
    for name, quieted_level in quieted.items():
        logging.getLogger(name).setLevel(quieted_level)
    logging.getLogger("uvicorn.access").disabled = False


async def buy_and_be_welcomed(
    stack: Stack, common: CommonSettings, mailbox: Mailbox, http: HttpReceiver
) -> str:
    """A purchase that lifts a new customer to gold; returns the customer's id once the welcome is filed."""
    await stack.start("customer", common=common)
    await stack.start("segmentation", common=common)
    await start_notify(stack, mailbox, http, common=common)
    customer = stack["customer"].client
    registered = await customer.post(
        "/customers", json={"name": NAME, "email": EMAIL, "phone": PHONE}, headers=auth()
    )
    assert registered.status_code == 201, registered.text
    customer_id = str(registered.json()["id"])

    async def segmented() -> None:
        # The registration applied first, so that the purchase is a batch of its own in segmentation.
        found = await stack["segmentation"].client.get(f"/segments/{customer_id}", headers=auth())
        assert found.status_code == 200, found.text

    await eventually(segmented)
    bought = await customer.post(
        f"/customers/{customer_id}/purchases",
        json={"order_id": "SO-2001", "amount": "12000.00", "currency": "CNY", "channel": "web"},
        headers=auth(),
    )
    assert bought.status_code == 201, bought.text
    # A search by personal data: its query string must not leave the process in a span.
    found = await customer.get("/customers", params={"email": EMAIL, "phone": PHONE}, headers=auth())
    assert found.status_code == 200, found.text

    async def welcomed() -> None:
        assert WELCOME in [subject(message) for message in mailbox.to(EMAIL)]

    await eventually(welcomed)
    # Stopping the services sends the spans they still hold.
    await stack.close()
    return customer_id


def chain(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """``span`` and its ancestors, nearest first."""
    by_id = {s.span_id: s for s in spans}
    found = [span]
    while found[-1].parent_id is not None:
        found.append(by_id[found[-1].parent_id])
    return found


def one(spans: list[ReceivedSpan], service: str, name: str) -> ReceivedSpan:
    matching = [s for s in spans if s.service == service and s.name == name]
    assert len(matching) == 1, (service, name, sorted({(s.service, s.name) for s in spans}))
    return matching[0]


async def test_a_purchase_is_one_trace_from_the_request_to_the_welcome_e_mail(
    stack: Stack, receiver: OtlpReceiver, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    common = stack.common.model_copy(update={"otel_endpoint": receiver.url})
    await buy_and_be_welcomed(stack, common, mailbox, http_receiver)

    spans = receiver.received()
    request = one(spans, "customer", "POST /customers/{customer_id}/purchases")
    assert request.kind == SERVER and request.parent_id is None
    trace = [s for s in spans if s.trace_id == request.trace_id]
    assert {s.service for s in trace} == {"customer", "segmentation", "notify"}

    [send] = [
        s for s in trace if s.name == "send email" and s.attributes["csm.playbook"] == "tier_upgrade_welcome"
    ]
    assert send.kind == CLIENT and send.service == "notify"
    path = [(s.service, s.name) for s in chain(send, trace)]
    assert path == [
        ("notify", "send email"),
        ("notify", "process csm.segment.tier_changed.v1"),
        ("segmentation", "process csm.purchase.recorded.v1"),
        ("customer", "POST /customers/{customer_id}/purchases"),
    ]
    for child, parent in zip(chain(send, trace), chain(send, trace)[1:], strict=False):
        assert child.start >= parent.start, (child.name, parent.name)

    # No span says who the customer is: the search's query string was dropped from its span.
    [search] = [s for s in spans if s.service == "customer" and s.name == "GET /customers"]
    assert search.attributes.get("http.target", "/customers") == "/customers", search.attributes
    everything = repr([s.attributes for s in spans])
    for personal in (NAME, EMAIL, PHONE, "li.na%40example.com", "13812345678"):
        assert personal not in everything, personal

    # The relays' publishing is in the trace too, beside the consumers of what they published.
    purchase_published = one(trace, "customer", "publish csm.customer")
    tier_published = one(trace, "segmentation", "publish csm.segmentation")
    assert (purchase_published.kind, tier_published.kind) == (PRODUCER, PRODUCER)
    assert purchase_published.parent_id == request.span_id
    consumed = one(trace, "segmentation", "process csm.purchase.recorded.v1")
    assert consumed.kind == CONSUMER and consumed.parent_id == request.span_id
    assert tier_published.parent_id == consumed.span_id
    # The SQLAlchemy instrumentation: the consumer's statements are its children.
    assert any(s.parent_id == consumed.span_id and s.attributes.get("db.system") for s in trace)


async def test_an_event_s_log_lines_carry_its_trace_id_and_no_personal_data(
    stack: Stack,
    receiver: OtlpReceiver,
    mailbox: Mailbox,
    http_receiver: HttpReceiver,
    log_lines: Lines,
) -> None:
    common = stack.common.model_copy(update={"otel_endpoint": receiver.url})
    await buy_and_be_welcomed(stack, common, mailbox, http_receiver)

    request = one(receiver.received(), "customer", "POST /customers/{customer_id}/purchases")
    records = [orjson.loads(line) for line in log_lines.lines]
    of_the_purchase = [r for r in records if r.get("trace_id") == request.trace_id]
    loggers = {r["logger"] for r in of_the_purchase}
    # The request's access line in customer, and each consumer's line for the events it caused.
    assert "csm.access" in loggers and "csm.inbox" in loggers, loggers
    assert any(
        r["message"].startswith("POST /customers/{customer_id}/purchases 201") for r in of_the_purchase
    )
    applied = [r["message"] for r in of_the_purchase if r["logger"] == "csm.inbox"]
    assert any("notify applies csm.segment.tier_changed.v1" in m for m in applied), applied
    assert all(len(r["span_id"]) == 16 for r in of_the_purchase)
    # The test's own SMTP server (aiosmtpd's "mail.log") is not csm: what it logs is left out.
    everything = "\n".join(
        line for line, r in zip(log_lines.lines, records, strict=True) if r["logger"] != "mail.log"
    )
    for personal in (NAME, EMAIL, PHONE, "13812345678", "Bearer ey"):
        assert personal not in everything, [line for line in log_lines.lines if personal in line][:1]
