"""Metrics, health and logging that every service has.

Logs never carry personal data or secrets: requests are logged by route template (no query
strings), events by id and type (no payload), and a filter masks e-mail addresses, phone
numbers and bearer tokens in anything that slips through. They are JSON lines (python-json-logger:
a formatter for the standard logging every module already uses) with the trace and span ids of
the work in progress, so that a line leads to its trace and a trace to its lines.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pythonjsonlogger.orjson import OrjsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.tracing import current_ids

access_log = logging.getLogger("csm.access")


class Metrics:
    """One registry per app, so that several services can live in one test process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.http_requests = Counter(
            "csm_http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "csm_http_request_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.events_consumed = Counter(
            "csm_events_consumed_total", "Events applied by a consumer", ["consumer", "type"], registry=r
        )
        self.events_duplicate = Counter(
            "csm_events_duplicate_total", "Redelivered events skipped by the inbox", ["consumer"], registry=r
        )
        self.events_ignored = Counter(
            "csm_events_ignored_total",
            "Events of types this consumer does not handle",
            ["consumer"],
            registry=r,
        )
        self.event_retries = Counter(
            "csm_event_retries_total", "Retries of events whose handler failed", ["consumer"], registry=r
        )
        self.events_dead_lettered = Counter(
            "csm_events_dead_lettered_total",
            "Events sent to the dead-letter topic",
            ["consumer", "reason"],
            registry=r,
        )
        self.outbox_published = Counter(
            "csm_outbox_published_total", "Events published from the outbox", ["topic"], registry=r
        )
        self.outbox_pending = Gauge(
            "csm_outbox_pending", "Outbox events not yet acknowledged by the broker", registry=r
        )
        self.consumer_lag = Gauge(
            "csm_consumer_lag",
            "Records on a partition the consumer has not yet taken (the partition's end less its position)",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.outbox_replays = Counter(
            "csm_outbox_replays_total",
            "Times the outbox was replayed into a broker that lost its log",
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class StatusNoted:
    """A ``send`` that passes every message on and remembers the status the response started with."""

    def __init__(self, send: Send, *, default: int) -> None:
        self.send = send
        self.status = default

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class MetricsMiddleware:
    """Counts and times requests by route template (never by raw path: ids would explode the series)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        noted = StatusNoted(send, default=500)
        try:
            await self.app(scope, receive, noted)
        finally:
            status = noted.status
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_seconds.labels(method, route).observe(elapsed)
            if route not in ("/metrics", "/healthz", "/readyz"):
                access_log.info("%s %s %s %.1fms", method, route, status, elapsed * 1000)


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# A run of digits, spaces, brackets and dashes, not glued to words, dots or colons (which
# would make it part of an address, a time or an identifier).
_PHONE_CANDIDATE = re.compile(r"(?<![\w.:/-])\+?\d[\d ()-]{5,20}\d(?![\w.:/-])")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_BEARER = re.compile(r"(?i)bearer\s+[\w.~+/=-]+")


def _mask_phone(match: re.Match[str]) -> str:
    candidate = match.group()
    digits = sum(char.isdigit() for char in candidate)
    if 7 <= digits <= 15 and not _DATE.match(candidate):
        return "[phone]"
    return candidate


def redact(text: str) -> str:
    text = _BEARER.sub("Bearer [redacted]", text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE_CANDIDATE.sub(_mask_phone, text)


class RedactingFilter(logging.Filter):
    """Masks personal data and tokens in every record, whatever logger wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class TraceIds(logging.Filter):
    """Puts the trace and span in progress on every record (``trace_id``, ``span_id``), as trace viewers
    show them, so that one customer's event can be followed from its trace to its log lines and back."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return True


class JsonLines(OrjsonFormatter):
    """One JSON object a line: time, level, logger, message, trace and span ids, and the traceback if any.

    Nothing else a record carries is written (extras that libraries add may repeat a message unmasked),
    and the whole line is masked once more, tracebacks included.
    """

    fields = frozenset({"timestamp", "level", "logger", "message", "trace_id", "span_id", "exc_info"})

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for name in log_data.keys() - self.fields:
            del log_data[name]

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        return redact(super().jsonify_log_record(log_data))


def log_handler(log_format: str = "json") -> logging.Handler:
    """Where csm's log lines go: standard error, masked, with trace ids, as JSON lines or as text."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.addFilter(TraceIds())
    return handler


# Libraries kept to warnings even when csm logs at DEBUG: they are chatty, and aiosqlite's debug lines
# print every statement with its parameters, which are personal data.
QUIETED = ("aiokafka", "httpx", "alembic", "aiosqlite")


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    handler = log_handler(log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Uvicorn's access log prints raw paths and query strings, which may hold personal data.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in QUIETED:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
