"""Real receivers for notify's channels, behaving as real ones do about repeats.

- ``Mailbox``: an SMTP server (aiosmtpd) that files each message once per Message-ID, as a
  mailbox with duplicate suppression does (Mailpit ``--ignore-duplicate-ids``, the Sieve
  duplicate test of RFC 7352), while keeping a log of every delivery it accepted.
- ``HttpReceiver``: a real HTTP server (uvicorn) with two parts. A webhook endpoint that verifies
  Standard Webhooks signatures with the specification's reference library and files each
  ``webhook-id`` once; and a stand-in for the SMS provider, speaking the same API as the real
  adapter (``POST /sms/messages``, bearer key, ``Idempotency-Key``), which answers a repeated
  key with the first message instead of sending a second SMS, as idempotent APIs do.

Each can be told to refuse the next deliveries (temporarily or for good) or to hold one.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.broker import free_port


@dataclass
class Delivery:
    message: EmailMessage
    raw: bytes
    recipients: list[str]


class Mailbox:
    def __init__(self) -> None:
        self.port = free_port()
        self.lock = threading.Lock()
        self.accepted: list[Delivery] = []  # every delivery the server said 250 to (or was about to)
        self.filed: dict[str, Delivery] = {}  # what the mailbox shows: one per Message-ID
        self.refusals: list[str] = []  # replies to give to the next deliveries instead of 250
        self.hold_next = threading.Event()  # set: the next delivery is filed, then its reply waits
        self.held = threading.Event()  # set once a delivery is being held
        self.release = threading.Event()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refusals:
                return self.refusals.pop(0)
        raw = bytes(envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        delivery = Delivery(message, raw, list(envelope.rcpt_tos))
        with self.lock:
            self.accepted.append(delivery)
            self.filed.setdefault(str(message["Message-ID"]), delivery)
        if self.hold_next.is_set():
            self.hold_next.clear()
            self.held.set()
            # The message is in the mailbox; the sender has not heard so yet.
            # ``release`` is set from the test's thread, which an asyncio.Event cannot be.
            while not self.release.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return "250 2.0.0 Ok: queued"

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.controller.stop()

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [delivery.message for delivery in self.filed.values()]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if address in str(m["To"])]


@dataclass
class Sms:
    id: str
    to: str
    text: str
    idempotency_key: str


@dataclass
class HttpReceiver:
    sms_key: str = "sms-test-key"
    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected_signatures: int = 0
    sms_requests: list[dict[str, Any]] = field(default_factory=list)
    sms: dict[str, Sms] = field(default_factory=dict)
    sms_refusals: list[int] = field(default_factory=list)
    webhook_refusals: list[int] = field(default_factory=list)
    # While ``hold`` is set, each request is taken in (the SMS sent, the webhook filed) and then its
    # answer waits for ``release``: the sender cannot know it went through.
    hold: bool = False
    held: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        app = Starlette(
            routes=[
                Route("/hooks/{name}", self._webhook, methods=["POST"]),
                Route("/sms/messages", self._sms, methods=["POST"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _webhook(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        try:
            payload = Webhook(self.secrets[name]).verify(body, dict(request.headers))
        except (KeyError, WebhookVerificationError):
            self.rejected_signatures += 1
            return Response(status_code=401)
        if self.webhook_refusals:
            return Response(status_code=self.webhook_refusals.pop(0))
        self.webhook_deliveries.append(payload)
        self.webhooks.setdefault(request.headers["webhook-id"], payload)
        await self._maybe_hold("webhook")
        return Response(status_code=204)

    async def _maybe_hold(self, what: str) -> None:
        if self.hold:
            self.held.append(what)
            await self.release.wait()

    async def _sms(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.sms_key}":
            return JSONResponse({"error": "bad key"}, status_code=401)
        if self.sms_refusals:
            return JSONResponse({"error": "refused"}, status_code=self.sms_refusals.pop(0))
        body = await request.json()
        key = request.headers.get("idempotency-key", "")
        self.sms_requests.append(body)
        if key and key in self.sms:
            return JSONResponse({"id": self.sms[key].id, "status": "accepted"}, status_code=200)
        message = Sms(id=f"SM{uuid.uuid4().hex[:16]}", to=body["to"], text=body["text"], idempotency_key=key)
        self.sms[key or message.id] = message
        await self._maybe_hold("sms")
        return JSONResponse({"id": message.id, "status": "accepted"}, status_code=201)

    async def start(self) -> HttpReceiver:
        self.task = asyncio.create_task(self.server.serve())
        # uvicorn says it has started only through this flag.
        while not self.server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self.release.set()
        self.server.should_exit = True
        if self.task is not None:
            await self.task
