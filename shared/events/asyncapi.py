"""The event catalog as an AsyncAPI 3.0 document, for the enterprise systems that consume the topics.

It says what goes on the wire: the schemas are of the JSON csm writes (money as decimal strings),
each message's ``type`` is pinned, channel addresses carry the environment's topic prefix, and the
intake topic (``complaint.submitted``) is marked as what csm receives from other systems.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from shared.events.base import CONTENT_TYPE, Envelope, Event

# A money amount as csm writes it: a decimal string with at most two places, never a float.
MONEY_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"


def _money_as_written(event: type[Event], schemas: dict[str, Any]) -> None:
    properties = schemas[event.__name__]["properties"]
    for name, field in event.model_fields.items():
        if field.annotation is Decimal:
            properties[name] = {
                "type": "string",
                "pattern": MONEY_PATTERN,
                "description": 'An amount in the company\'s currency, as a decimal string (e.g. "199.99").',
                "examples": ["199.99"],
            }


def _identifier(text: str) -> str:
    return "".join(char if char.isalnum() or char in "_-" else "_" for char in text)


def asyncapi_document(
    *,
    title: str,
    version: str,
    publishes: Iterable[str],
    consumes: Iterable[str],
    bootstrap: str,
    topic_prefix: str = "",
) -> dict[str, Any]:
    """Describe the topics a service publishes to and the event types it consumes."""
    from shared.events import ALL_EVENTS, TOPICS

    publish_topics = set(publishes)
    consumed_types = set(consumes)
    sent = [event for event in ALL_EVENTS if event.topic in publish_topics]
    received = [event for event in ALL_EVENTS if event.type in consumed_types]

    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for event in {*sent, *received}:
        message_id = _identifier(event.type)
        schema = Envelope[event].model_json_schema(  # type: ignore[valid-type]
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        schemas.update(schema.pop("$defs", {}))
        _money_as_written(event, schemas)
        schema["properties"]["type"] = {"const": event.type, "type": "string", "title": "Type"}
        schema["required"] = ["specversion", *(name for name in schema["required"] if name != "specversion")]
        messages[message_id] = {
            "name": event.type,
            "title": event.__name__,
            "summary": inspect.getdoc(event) if event.__doc__ else event.type,
            "contentType": CONTENT_TYPE,
            "payload": schema,
            "bindings": {"kafka": {"key": {"type": "string", "description": "The customer id."}}},
        }
        if event.personal:
            # Personal fields travel as "csm:sealed:v1:..." strings, sealed per customer (README: Security).
            messages[message_id]["x-csm-sealed"] = [f"data.{path}" for path in event.personal]
        channel = channels.setdefault(
            _identifier(event.topic), {"address": topic_prefix + event.topic, "messages": {}}
        )
        if event.topic == TOPICS["complaints_intake"]:
            channel["description"] = (
                "Where other systems hand complaints to csm; csm receives here and never sends."
            )
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


def catalog_document(*, version: str, bootstrap: str, topic_prefix: str = "") -> dict[str, Any]:
    """Every event csm sends, and what it receives from other systems, as one document."""
    from shared.events import ALL_EVENTS, TOPICS

    intake = TOPICS["complaints_intake"]
    return asyncapi_document(
        title="csm events",
        version=version,
        publishes=[topic for topic in TOPICS.values() if topic != intake],
        consumes=[event.type for event in ALL_EVENTS if event.topic == intake],
        bootstrap=bootstrap,
        topic_prefix=topic_prefix,
    )
