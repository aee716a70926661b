"""The event catalog as an AsyncAPI 3.0 document, for the enterprise systems that consume the topics."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from shared.events.base import CONTENT_TYPE, Envelope


def _identifier(text: str) -> str:
    return "".join(char if char.isalnum() or char in "_-" else "_" for char in text)


def asyncapi_document(
    *,
    title: str,
    version: str,
    publishes: Iterable[str],
    consumes: Iterable[str],
    bootstrap: str,
) -> dict[str, Any]:
    """Describe the topics a service publishes to and the event types it consumes."""
    from shared.events import ALL_EVENTS

    publish_topics = set(publishes)
    consumed_types = set(consumes)
    sent = [event for event in ALL_EVENTS if event.topic in publish_topics]
    received = [event for event in ALL_EVENTS if event.type in consumed_types]

    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for event in {*sent, *received}:
        message_id = _identifier(event.type)
        schema = Envelope[event].model_json_schema(ref_template="#/components/schemas/{model}")  # type: ignore[valid-type]
        schemas.update(schema.pop("$defs", {}))
        messages[message_id] = {
            "name": event.type,
            "title": event.__name__,
            "summary": inspect.getdoc(event) if event.__doc__ else event.type,
            "contentType": CONTENT_TYPE,
            "payload": schema,
            "bindings": {"kafka": {"key": {"type": "string", "description": "The customer id."}}},
        }
        channel = channels.setdefault(_identifier(event.topic), {"address": event.topic, "messages": {}})
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}

    operations: dict[str, Any] = {}
    for action, events in (("send", sent), ("receive", received)):
        for event in events:
            channel_id = _identifier(event.topic)
            message_id = _identifier(event.type)
            operations[f"{action}_{message_id}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_id}"}],
            }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": "CloudEvents 1.0 in the Kafka protocol binding (structured mode), "
            "keyed by customer id.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"kafka": {"host": bootstrap, "protocol": "kafka"}},
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items())), "schemas": dict(sorted(schemas.items()))},
    }


def catalog_document(*, version: str, bootstrap: str) -> dict[str, Any]:
    """Every event of every service, as one document."""
    from shared.events import TOPICS

    return asyncapi_document(
        title="csm events", version=version, publishes=TOPICS.values(), consumes=(), bootstrap=bootstrap
    )
