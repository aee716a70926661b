"""The playbooks a new installation starts with: the follow-up practice of DOMAIN.md §4, as data.

They are version 0 of their keys. Saving a playbook over the API makes version 1 and so on;
the highest version is in force, so an operator changes any of these without touching code.
"""

from __future__ import annotations

from typing import Any

from services.notify.playbooks import PlaybookDefinition

ALERTS_WEBHOOK = "complaint-alerts"

_NAME_ZH = "{{ customer.name or '您' }}，您好："
_NAME_EN = "Dear {{ customer.name or 'customer' }},"
_PREFERENCES_ZH = "不想再收到此类消息？请在这里设置：{{ links.preferences }}"
_PREFERENCES_EN = "Rather not hear about this? Change your choices here: {{ links.preferences }}"
_STILL_A_CUSTOMER = {"fact": "customer.status", "none_of": ["erased", "lost"]}
_CUSTOMER_CHANNELS = ["email", "sms", "in_app"]

_DEFAULTS: dict[str, dict[str, Any]] = {
    "first_purchase_care": {
        "name": "Thanks after a first purchase, and a care call a week later",
        "trigger": {"kind": "event", "event": "csm.purchase.recorded.v1"},
        "conditions": [{"fact": "event.first_purchase", "equals": True}],
        "steps": [
            {
                "kind": "message",
                "id": "thanks",
                "purpose": "service",
                "channels": _CUSTOMER_CHANNELS,
                "template": {
                    "zh": {
                        "title": "感谢您的首次购买",
                        "body": f"{_NAME_ZH}\n\n感谢您选择我们，订单 {{{{ event.order_id }}}} 已收到。"
                        "使用中有任何问题，"
                        "随时联系我们，我们一直都在。一周后我们会再与您联系，听听您的使用感受。",
                        "sms": "感谢您的首次购买（订单 {{ event.order_id }}）！使用中有任何问题，"
                        "请随时联系我们。",
                    },
                    "en": {
                        "title": "Thank you for your first order",
                        "body": f"{_NAME_EN}\n\nThank you for choosing us: we have your order "
                        f"{{{{ event.order_id }}}}. "
                        "If anything is unclear, we are always here to help, and we will call in a week to "
                        "hear "
                        "how you are getting on.",
                        "sms": "Thank you for your first order ({{ event.order_id }})! We are here if you "
                        "need us.",
                    },
                },
            },
            {"kind": "wait", "id": "a_week", "duration": "P7D"},
            {"kind": "stop_unless", "id": "still_a_customer", "conditions": [_STILL_A_CUSTOMER]},
            {
                "kind": "task",
                "id": "care_call",
                "task": "care_call",
                "title": "首次购买一周回访：{{ customer.name or '客户' }}",
                "detail": "电话了解使用情况与满意度，解答疑问（订单 {{ event.order_id }}）。",
                "assign": {"person": "account_manager", "role": "agent"},
                "due_in": "P2D",
            },
        ],
    },
    "tier_upgrade_welcome": {
        "name": "Welcome and benefits on an upgrade to gold or platinum; an account manager for platinum",
        "trigger": {"kind": "event", "event": "csm.segment.tier_changed.v1"},
        "conditions": [
            {"fact": "event.tier_move", "one_of": ["up", "new"]},
            {"fact": "event.tier", "one_of": ["gold", "platinum"]},
            # Only the customer's own doing is celebrated: a recompute, a policy apply, imported
            # history or a merge moves people who did nothing new (no welcome storm).
            {"fact": "event.cause", "equals": "customer_event"},
        ],
        "steps": [
            {
                "kind": "message",
                "id": "welcome",
                "purpose": "service",
                "channels": _CUSTOMER_CHANNELS,
                "template": {
                    "zh": {
                        "title": "{% set names = {'gold': '金卡', 'platinum': '白金'} %}"
                        "欢迎成为{{ names[event.tier] }}会员",
                        "body": f"{_NAME_ZH}\n\n感谢您一直以来的信任与支持。{{{{ offer }}}}\n\n有任何需要，"
                        "欢迎随时联系我们。",
                        "sms": "{% set names = {'gold': '金卡', 'platinum': '白金'} %}"
                        "恭喜您成为{{ names[event.tier] }}会员！"
                        "{{ offer }}",
                    },
                    "en": {
                        "title": "Welcome to {{ event.tier | title }}",
                        "body": f"{_NAME_EN}\n\nThank you for your continued trust. {{{{ offer }}}}\n\n"
                        "Whenever you need us, we are here.",
                        "sms": "Welcome to {{ event.tier | title }}! {{ offer }}",
                    },
                },
            },
            {
                "kind": "task",
                "id": "account_manager",
                "task": "account_manager_introduction",
                "when": [{"fact": "event.tier", "equals": "platinum"}],
                "title": "白金客户：请客户经理主动联系 {{ customer.name or '客户' }}",
                "detail": "介绍专属服务，了解客户的长期需求。",
                "assign": {"person": "account_manager", "role": "manager"},
                "due_in": "P3D",
            },
        ],
    },
    "win_back": {
        "name": "A win-back offer when a customer is at risk; a manager's call for high tiers",
        "trigger": {"kind": "event", "event": "csm.segment.risk_changed.v1"},
        "conditions": [
            {"fact": "event.risk", "one_of": ["at_risk", "lost"]},
            # A lapse is noticed by the scheduled recompute (time passed): that is news. A policy
            # apply, imported history or an analysis date re-labels many people at once: that is not.
            {"fact": "event.cause", "none_of": ["policy", "imported", "manual", "analysis_date"]},
        ],
        "steps": [
            {
                "kind": "message",
                "id": "offer",
                "purpose": "marketing",
                "channels": _CUSTOMER_CHANNELS,
                "template": {
                    "zh": {
                        "title": "好久不见，我们想念您",
                        "body": f"{_NAME_ZH}\n\n好久没有您的消息了，我们很想念您。{{{{ offer }}}}\n\n"
                        f"如果我们哪里做得不好，请直接告诉我们。\n\n{_PREFERENCES_ZH}",
                        "sms": "好久不见，我们想念您！{{ offer }} 退订请回复TD",
                    },
                    "en": {
                        "title": "We have missed you",
                        "body": f"{_NAME_EN}\n\nIt has been a while, and we have missed you. "
                        f"{{{{ offer }}}}\n\n"
                        f"If we let you down somewhere, please tell us.\n\n{_PREFERENCES_EN}",
                        "sms": "We have missed you! {{ offer }} Reply STOP to opt out.",
                    },
                },
            },
            {
                "kind": "task",
                "id": "manager_call",
                "task": "win_back_call",
                "when": [{"fact": "event.tier", "one_of": ["platinum", "gold"]}],
                "title": "高价值客户流失预警：请亲自联系 {{ customer.name or '客户' }}",
                "detail": "客户等级 {{ event.tier }}，原因：{{ event.reason }}。了解原因，挽回客户。",
                "assign": {"person": "account_manager", "role": "manager"},
                "due_in": "P2D",
            },
        ],
    },
    "complaint_acknowledgement": {
        "name": "Immediate acknowledgement of a complaint, stating the response promise",
        "trigger": {"kind": "event", "event": "csm.complaint.opened.v1"},
        "steps": [
            {
                "kind": "message",
                "id": "acknowledge",
                "purpose": "service",
                "urgent": True,
                "channels": ["sms", "email", "in_app"],
                "template": {
                    "zh": {
                        # The reference in brackets: a customer's reply to this mail finds its complaint.
                        "title": "我们已收到您的投诉 [#C-{{ complaint.reference }}]",
                        "body": f"{_NAME_ZH}\n\n非常抱歉给您带来不便。您的投诉已经记录，由专人全程负责，"
                        "直到问题解决。"
                        "{% if complaint.promise %}我们承诺在 {{ complaint.promise | duration }}内"
                        "（{{ complaint.first_response_due_at | localtime('%m月%d日 %H:%M') }}前）答复您。"
                        "{% else %}我们会尽快答复您。{% endif %}\n\n感谢您给我们改进的机会。",
                        "sms": "您的投诉（编号 {{ complaint.reference }}）已收到，由专人负责。"
                        "{% if complaint.promise %}我们将在 {{ complaint.promise | duration }}内答复您。"
                        "{% else %}我们会尽快答复您。{% endif %}",
                    },
                    "en": {
                        "title": "We have received your complaint [#C-{{ complaint.reference }}]",
                        "body": f"{_NAME_EN}\n\nWe are sorry for the trouble. Your complaint is recorded and "
                        "one "
                        "person owns it until it is resolved. {% if complaint.promise %}We promise to "
                        "respond "
                        "within {{ complaint.promise | duration }} (by "
                        "{{ complaint.first_response_due_at | localtime('%d %b %H:%M') }}).{% else %}We will "
                        "respond as soon as we can.{% endif %}\n\nThank you for giving us the chance to put "
                        "it right.",
                        "sms": "We have your complaint (ref. {{ complaint.reference }}). "
                        "{% if complaint.promise %}"
                        "We will respond within {{ complaint.promise | duration }}.{% else %}We will respond "
                        "soon.{% endif %}",
                    },
                },
            },
        ],
    },
    "complaint_escalation_alert": {
        "name": "Alert staff when a complaint escalates, and give the level that must act a task",
        "trigger": {"kind": "event", "event": "csm.complaint.escalated.v1"},
        "steps": [
            {
                "kind": "alert",
                "id": "alert",
                "webhook": ALERTS_WEBHOOK,
                "template": {
                    "zh": {
                        "title": "投诉升级：{{ complaint.reference }}（第 {{ event.level }} 级，"
                        "{{ event.level_name }}）",
                        "body": "投诉 {{ complaint.reference }} 已升级，须由 {{ event.must_act }} 处理。"
                        "原因：{{ event.reason }}。"
                        "首问负责人：{{ complaint.first_owner or '未知' }}。",
                    },
                    "en": {
                        "title": "Complaint escalated: {{ complaint.reference }} (level {{ event.level }}, "
                        "{{ event.level_name }})",
                        "body": "Complaint {{ complaint.reference }} escalated; {{ event.must_act }} must "
                        "act. "
                        "Reason: {{ event.reason }}. First owner: {{ complaint.first_owner or 'unknown' }}.",
                    },
                },
            },
            {
                "kind": "task",
                "id": "review",
                "task": "escalation_review",
                "title": "处理升级投诉 {{ complaint.reference }}（{{ event.level_name }}）",
                "detail": "原因：{{ event.reason }}",
                "assign": {"role": "must_act"},
                "due_in": "PT1H",
            },
        ],
    },
    "sla_breach_alert": {
        "name": "Alert staff when a complaint's promise is breached",
        "trigger": {"kind": "event", "event": "csm.complaint.sla_breached.v1"},
        "steps": [
            {
                "kind": "alert",
                "id": "alert",
                "webhook": ALERTS_WEBHOOK,
                "template": {
                    "zh": {
                        "title": "投诉超时：{{ complaint.reference }}",
                        "body": "投诉 {{ complaint.reference }} 的承诺（{{ event.target }}）已于 "
                        "{{ event.due_at | localtime }} 到期未完成。首问负责人：{{ event.first_owner }}。",
                    },
                    "en": {
                        "title": "Promise breached: complaint {{ complaint.reference }}",
                        "body": "The {{ event.target }} promise of complaint {{ complaint.reference }} fell "
                        "due at "
                        "{{ event.due_at | localtime }}. First owner: {{ event.first_owner }}.",
                    },
                },
            },
            {
                "kind": "task",
                "id": "act_now",
                "task": "breach_follow_up",
                "title": "投诉 {{ complaint.reference }} 已超时，请立即处理",
                "assign": {"person": "first_owner", "role": "supervisor"},
                "due_in": "PT1H",
            },
        ],
    },
    "complaint_survey": {
        "name": "A satisfaction survey a day after a complaint is resolved",
        "trigger": {"kind": "event", "event": "csm.complaint.resolved.v1"},
        "steps": [
            {"kind": "wait", "id": "a_day", "duration": "P1D"},
            {
                "kind": "stop_unless",
                "id": "still_resolved",
                "conditions": [
                    {"fact": "complaint.status", "equals": "resolved"},
                    _STILL_A_CUSTOMER,
                ],
            },
            {
                "kind": "message",
                "id": "survey",
                "purpose": "service",
                "channels": _CUSTOMER_CHANNELS,
                "template": {
                    "zh": {
                        "title": "您对我们的处理满意吗？",
                        "body": f"{_NAME_ZH}\n\n您的投诉（编号 {{{{ complaint.reference }}}}）已处理完毕。"
                        "您的感受对我们很重要，"
                        "请花一分钟告诉我们您的评价：{{ links.survey }}\n\n谢谢您！",
                        "sms": "您的投诉（{{ complaint.reference }}）已处理完毕，请为我们的服务打分："
                        "{{ links.survey }}",
                    },
                    "en": {
                        "title": "How did we do?",
                        "body": f"{_NAME_EN}\n\nYour complaint (ref. {{{{ complaint.reference }}}}) has been "
                        "resolved. "
                        "How you feel about it matters to us: please take a minute to tell us at "
                        "{{ links.survey }}\n\nThank you!",
                        "sms": "Your complaint ({{ complaint.reference }}) is resolved. Rate us: "
                        "{{ links.survey }}",
                    },
                },
            },
        ],
    },
    "poor_survey_follow_up": {
        "name": "A person follows up a poor survey answer",
        "trigger": {"kind": "event", "event": "csm.complaint.survey_answered.v1"},
        "conditions": [{"fact": "event.poor", "equals": True}],
        "steps": [
            {
                "kind": "task",
                "id": "follow_up",
                "task": "survey_follow_up",
                "title": "满意度差评回访：投诉 {{ complaint.reference }}（评分 {{ event.csat }}）",
                "detail": "致电客户了解不满意的原因，必要时补救。",
                "assign": {"person": "first_owner", "role": "supervisor"},
                "due_in": "P1D",
            },
        ],
    },
    "key_account_visit": {
        "name": "A proactive on-site visit to every key account each quarter",
        "trigger": {"kind": "schedule", "every": "quarter"},
        "conditions": [{"fact": "customer.key_account", "equals": True}, _STILL_A_CUSTOMER],
        "steps": [
            {
                "kind": "task",
                "id": "visit",
                "task": "on_site_visit",
                "title": "大客户季度上门巡检：{{ customer.name or '客户' }}（{{ period }}）",
                "detail": "上门检查使用情况，更新客户档案，了解下季度需求。",
                "assign": {"person": "account_manager", "role": "manager"},
                "due_in": "P30D",
            },
        ],
    },
    "interest_match": {
        "name": "News on a topic to the customers interested in it, with a personal recommendation",
        "trigger": {"kind": "announcement"},
        "conditions": [_STILL_A_CUSTOMER],
        "steps": [
            {
                "kind": "message",
                "id": "recommend",
                "purpose": "marketing",
                "channels": _CUSTOMER_CHANNELS,
                "template": {
                    "zh": {
                        "title": "{{ announcement.title }}",
                        "body": f"{_NAME_ZH}\n\n您关注的「{{{{ announcement.topic }}}}」有新消息："
                        f"\n\n{{{{ announcement.body }}}}"
                        f"\n\n为您推荐：{{{{ offer }}}}\n\n{_PREFERENCES_ZH}",
                        "sms": "您关注的「{{ announcement.topic }}」有新消息：{{ announcement.title }}。"
                        "{{ offer }} 退订请回复TD",
                    },
                    "en": {
                        "title": "{{ announcement.title }}",
                        "body": f"{_NAME_EN}\n\nThere is news on {{{{ announcement.topic }}}}, which you "
                        "follow:\n\n"
                        f"{{{{ announcement.body }}}}\n\nOur suggestion for you: "
                        f"{{{{ offer }}}}\n\n{_PREFERENCES_EN}",
                        "sms": "News on {{ announcement.topic }}: {{ announcement.title }}. {{ offer }} "
                        "Reply STOP to opt out.",
                    },
                },
            },
        ],
    },
}


def default_playbooks() -> dict[str, PlaybookDefinition]:
    """The shipped playbooks, validated (a broken default fails at start-up, not at a customer)."""
    return {key: PlaybookDefinition.model_validate(definition) for key, definition in _DEFAULTS.items()}
