"""The facts a playbook's conditions test, read from an event and from what notify knows of the customer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.notify.conditions import Facts, tier_move
from shared.events import Event
from shared.events.complaints import (
    ComplaintEscalated,
    ComplaintOpened,
    ComplaintReopened,
    ComplaintResolved,
    SlaBreached,
    SurveyAnswered,
)
from shared.events.customer import PurchaseRecorded
from shared.events.segmentation import RiskChanged, TierChanged


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def event_facts(event: Event) -> Facts:
    """The ``event.*`` facts of one event (only those its type provides)."""
    match event:
        case PurchaseRecorded():
            return {
                "event.first_purchase": event.first_purchase,
                "event.channel": event.channel.value,
                "event.amount": float(event.amount),
            }
        case TierChanged():
            previous = _value(event.previous_tier)
            return {
                "event.tier": event.tier.value,
                "event.previous_tier": previous,
                "event.tier_move": tier_move(previous, event.tier.value),
                "event.key_account": event.key_account,
                "event.segment": event.segment,
                "event.stage": _value(event.stage),
                "event.value_group": _value(event.value_group),
                "event.cause": event.cause.value,
            }
        case RiskChanged():
            return {
                "event.risk": event.risk.value,
                "event.previous_risk": _value(event.previous_risk),
                "event.tier": event.tier.value,
                "event.cause": event.cause.value,
            }
        case ComplaintOpened():
            return {
                "event.tier": _value(event.tier),
                "event.category": event.category.value,
                "event.severity": event.severity.value,
                "event.channel": event.channel.value,
            }
        case ComplaintResolved():
            return {
                "event.tier": _value(event.tier),
                "event.category": event.category.value,
                "event.severity": event.severity.value,
            }
        case ComplaintEscalated():
            return {"event.escalation_level": event.level}
        case SlaBreached():
            return {"event.sla_target": event.target.value, "event.tier": _value(event.tier)}
        case SurveyAnswered():
            return {"event.poor": event.poor, "event.csat": event.csat}
        case ComplaintReopened():
            return {}
    return {}


def customer_facts(contact: Mapping[str, Any] | None) -> Facts:
    """The ``customer.*`` facts from notify's projection of the customer (a row as a mapping)."""
    if contact is None:
        return {"customer.known": False, "customer.key_account": False}
    return {
        "customer.known": bool(contact.get("known")),
        "customer.kind": contact.get("kind"),
        "customer.status": contact.get("status"),
        "customer.tier": contact.get("tier"),
        "customer.key_account": bool(contact.get("key_account")),
        "customer.segment": contact.get("segment"),
        "customer.stage": contact.get("stage"),
        "customer.risk": contact.get("risk"),
        "customer.region": contact.get("region"),
    }


def complaint_facts(complaint: Mapping[str, Any] | None) -> Facts:
    if complaint is None:
        return {}
    return {"complaint.status": complaint.get("status"), "complaint.category": complaint.get("category")}
