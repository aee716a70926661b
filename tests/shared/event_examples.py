"""One valid example of every event type, for contract and plumbing tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.events import REGISTRY, Event

MOMENT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
FIXED_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")

PROFILE = {
    "kind": "individual",
    "name": "Li Na",
    "email": "li.na@example.com",
    "phone": "+8613812345678",
    "locale": "zh-CN",
    "time_zone": "Asia/Shanghai",
}

FIELDS: dict[str, dict[str, Any]] = {
    "csm.customer.registered.v1": {"profile": PROFILE, "registered_at": MOMENT},
    "csm.customer.updated.v1": {"profile": PROFILE, "changed": ["email"]},
    "csm.customer.erased.v1": {"erased_at": MOMENT},
    "csm.customer.merged.v1": {"merged_id": FIXED_ID, "merged_at": MOMENT},
    "csm.purchase.recorded.v1": {
        "purchase_id": FIXED_ID,
        "order_id": "SO-1",
        "amount": Decimal("199.90"),
        "currency": "CNY",
        "channel": "web",
        "purchased_at": MOMENT,
        "item_count": 2,
        "first_purchase": True,
    },
    "csm.purchase.refunded.v1": {
        "purchase_id": FIXED_ID,
        "refund_id": FIXED_ID,
        "amount": Decimal("50.00"),
        "currency": "CNY",
        "refunded_at": MOMENT,
        "fully_refunded": False,
    },
    "csm.interaction.logged.v1": {
        "interaction_id": FIXED_ID,
        "channel": "phone",
        "kind": "care_call",
        "outcome": "satisfied",
        "sentiment": "positive",
        "signal": None,
        "occurred_at": MOMENT,
    },
    "csm.customer.consent_changed.v1": {
        "channel": "email",
        "purpose": "marketing",
        "granted": False,
        "source": "web form",
        "changed_at": MOMENT,
    },
    "csm.customer.contact_changed.v1": {
        "contact_id": FIXED_ID,
        "email": "zhang.wei@example.com",
        "removed": False,
        "changed_at": MOMENT,
    },
    "csm.customer.interests_changed.v1": {"interests": ["tea", "gardening"], "changed_at": MOMENT},
    "csm.segment.tier_changed.v1": {
        "previous_tier": "iron",
        "tier": "gold",
        "reason": "moved up",
        "policy_version": 1,
        "cause_event_id": FIXED_ID,
        "changed_at": MOMENT,
    },
    "csm.segment.risk_changed.v1": {
        "previous_risk": "low",
        "risk": "at_risk",
        "tier": "gold",
        "probability_alive": 0.4,
        "reason": "lapsed",
        "policy_version": 1,
        "changed_at": MOMENT,
    },
    "csm.complaint.opened.v1": {
        "complaint_id": FIXED_ID,
        "channel": "phone",
        "category": "delivery",
        "severity": "normal",
        "first_owner": "agent-1",
        "tier": "gold",
        "first_response_due_at": MOMENT + timedelta(hours=2),
        "resolution_due_at": MOMENT + timedelta(hours=48),
        "opened_at": MOMENT,
    },
    "csm.complaint.status_changed.v1": {
        "complaint_id": FIXED_ID,
        "previous_status": "new",
        "status": "acknowledged",
        "actor": "agent-1",
        "changed_at": MOMENT,
    },
    "csm.complaint.resolved.v1": {
        "complaint_id": FIXED_ID,
        "category": "delivery",
        "severity": "normal",
        "tier": "gold",
        "first_owner": "agent-1",
        "root_cause": "carrier",
        "compensation": Decimal("100.00"),
        "currency": "CNY",
        "first_contact_resolution": True,
        "within_sla": True,
        "resolved_at": MOMENT,
    },
    "csm.complaint.replied.v1": {
        "complaint_id": FIXED_ID,
        "reply_id": FIXED_ID,
        "channel": "email",
        "subject": "Re: the parcel [#C-3F2A1B4C]",
        "body": "We have sent a new parcel today.",
        "thread": {
            "message_id": "<reply.1@csm.example.com>",
            "in_reply_to": "<first@example.com>",
            "references": ["<first@example.com>"],
        },
        "replied_by": "agent-1",
        "replied_at": MOMENT,
    },
    "csm.complaint.sender_introduced.v1": {
        "name": "Li Na",
        "email": "li.na@example.com",
        "introduced_at": MOMENT,
    },
    "csm.complaint.reopened.v1": {
        "complaint_id": FIXED_ID,
        "reason": "poor survey score",
        "reopened_at": MOMENT,
    },
    "csm.complaint.sla_warning.v1": {
        "complaint_id": FIXED_ID,
        "target": "first_response",
        "due_at": MOMENT,
        "used_share": 0.75,
        "tier": "gold",
        "first_owner": "agent-1",
    },
    "csm.complaint.sla_breached.v1": {
        "complaint_id": FIXED_ID,
        "target": "resolution",
        "due_at": MOMENT,
        "tier": "gold",
        "first_owner": "agent-1",
        "breached_at": MOMENT,
    },
    "csm.complaint.escalated.v1": {
        "complaint_id": FIXED_ID,
        "level": 1,
        "level_name": "supervisor",
        "must_act": "supervisor",
        "reason": "first response breached",
        "escalated_at": MOMENT,
        "first_owner": "agent-1",
        "tier": "gold",
        "target": "first_response",
    },
    "csm.complaint.survey_answered.v1": {
        "complaint_id": FIXED_ID,
        "csat": 2,
        "nps": 3,
        "poor": True,
        "answered_at": MOMENT,
    },
    "csm.complaint.retargeted.v1": {
        "complaint_id": FIXED_ID,
        "previous_tier": None,
        "tier": "gold",
        "severity": "normal",
        "reason": "tier changed",
        "first_response_due_at": MOMENT + timedelta(hours=2),
        "resolution_due_at": MOMENT + timedelta(hours=48),
        "retargeted_at": MOMENT,
    },
    "csm.complaint.submitted.v1": {
        "submission_id": FIXED_ID,
        "channel": "web",
        "category": "billing",
        "severity": "high",
        "description": "Charged twice for one order.",
        "desired_outcome": "Refund the second charge",
        "attachments": [
            {
                "uri": "https://files.example.com/receipt.pdf",
                "name": "receipt.pdf",
                "media_type": "application/pdf",
            }
        ],
        "visit_required": False,
        "received_by": "agent-1",
        "submitted_at": MOMENT,
    },
    "csm.notification.sent.v1": {
        "notification_id": FIXED_ID,
        "channel": "email",
        "purpose": "service",
        "playbook": "thanks",
        "step": "send",
        "cause_event_id": FIXED_ID,
        "sent_at": MOMENT,
    },
    "csm.notification.failed.v1": {
        "notification_id": FIXED_ID,
        "channel": "sms",
        "purpose": "service",
        "playbook": "thanks",
        "step": "send",
        "reason": "provider refused",
        "attempts": 5,
        "failed_at": MOMENT,
    },
    "csm.task.created.v1": {
        "task_id": FIXED_ID,
        "kind": "care_call",
        "playbook": "first_purchase",
        "assignee": None,
        "assignee_role": "agent",
        "due_at": MOMENT,
        "cause_event_id": FIXED_ID,
    },
}


def example(event_type: str, customer_id: uuid.UUID = FIXED_ID, **changes: Any) -> Event:
    """The example of ``event_type``, with ``changes``, validated by its model (as csm would build it:
    ``model_copy(update=…)`` would keep a text where the model holds an enum)."""
    return REGISTRY[event_type].model_validate({"customer_id": customer_id, **FIELDS[event_type], **changes})
