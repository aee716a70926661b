"""Templates chosen by locale, and the channels' wire formats: e-mail encoding, delivery ids, signatures."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from services.notify.channels import (
    WIRE,
    Email,
    build_email,
    delivery_id,
    email_bytes,
    message_id,
    new_webhook_secret,
    sign_webhook,
)
from shared import templates


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        ("zh-CN", "zh"),
        ("zh-TW", "zh"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("fr-FR", "zh"),
        (None, "zh"),
        ("en", "en"),
    ],
)
def test_the_language_is_the_customers_locale_or_the_default(wanted: str | None, chosen: str) -> None:
    assert templates.pick_locale(["zh", "en"], wanted, "zh-CN") == chosen


def test_an_exact_tag_wins_over_the_language() -> None:
    assert templates.pick_locale(["zh", "zh-TW", "en"], "zh-tw", "zh-CN") == "zh-TW"
    assert templates.pick_locale(["en"], "zh-CN", "zh-CN") == "en", "whatever there is, rather than nothing"


def test_a_template_naming_something_that_is_not_there_fails_loudly() -> None:
    with pytest.raises(templates.TemplateProblem, match="nmae"):
        templates.render("Dear {{ customer.nmae }}", {"customer": {"name": "Li"}})
    with pytest.raises(templates.TemplateProblem):
        templates.check("{% if %}")


def test_templates_run_in_a_sandbox() -> None:
    with pytest.raises(templates.TemplateProblem):
        templates.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_times_and_spans_in_the_customers_zone_and_language() -> None:
    due = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    context = {
        "time_zone": "Asia/Shanghai",
        "language": "zh",
        "due": due,
        "span": timedelta(hours=2, minutes=30),
    }
    assert (
        templates.render("{{ due | localtime('%H:%M') }} {{ span | duration }}", context)
        == "12:00 2 小时30 分钟"
    )
    english = {
        **context,
        "language": "en",
        "time_zone": "America/New_York",
        "due": due.isoformat(),
        "span": 86400,
    }
    assert templates.render("{{ due | localtime('%H:%M') }} {{ span | duration }}", english) == "23:00 1 day"


def test_an_email_in_chinese_is_pure_ascii_on_the_wire_and_reads_back_the_same() -> None:
    built = build_email(
        Email(
            recipient="li.na@example.com",
            recipient_name="李娜",
            subject="欢迎成为金卡会员 — 感谢您一直以来的信任与支持，这是一个很长的标题，要折行",
            body="李娜，您好：\n\n感谢您一直以来的信任与支持。",
            language="zh",
            idempotency_key="event-1:welcome:send",
        ),
        sender="service@csm.example.com",
        sender_name="客户服务",
        now=datetime(2026, 11, 23, tzinfo=UTC),
    )
    wire = built.as_bytes(policy=WIRE)
    assert wire.decode("ascii")  # no 8-bit byte anywhere: any relay can carry it
    assert b"=?utf-8?" in wire
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert (
        str(parsed["Subject"]) == "欢迎成为金卡会员 — 感谢您一直以来的信任与支持，这是一个很长的标题，要折行"
    )
    assert parsed["To"].addresses[0].display_name == "李娜"
    assert parsed["From"].addresses[0].display_name == "客户服务"
    assert (
        parsed.get_content().replace("\r\n", "\n").strip() == "李娜，您好：\n\n感谢您一直以来的信任与支持。"
    )
    assert parsed["Content-Language"] == "zh" and parsed["Auto-Submitted"] == "auto-generated"


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300) | st.text(
    "ab \x1c\x1e\x0b\x0c\t\r\n=?", max_size=40
)
_THREAD = st.fixed_dictionaries(
    {
        "message_id": st.just("<reply-1@csm.example.com>"),
        "in_reply_to": st.just("<question@example.com>"),
        "references": st.lists(st.just("<earlier@example.com>"), max_size=3),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.none(), _TEXT),
    subject=_TEXT,
    body=_TEXT,
    sender_name=_TEXT,
    language=st.sampled_from(["zh", "en-GB"]),
    unsubscribe=st.one_of(st.none(), st.text("abc/:.-", max_size=60)),
    thread=st.one_of(st.none(), _THREAD),
)
def test_the_fast_writer_puts_the_same_bytes_on_the_wire_as_the_stdlib_generator(
    name: str | None,
    subject: str,
    body: str,
    sender_name: str,
    language: str,
    unsubscribe: str | None,
    thread: dict[str, object] | None,
) -> None:
    """A send writes ``email_bytes``; it must be exactly the message ``build_email`` describes."""
    mail = Email(
        recipient="li.na@example.com",
        recipient_name=name,
        subject=subject,
        body=body,
        language=language,
        idempotency_key="event-1:welcome:send",
        unsubscribe_url=f"https://{unsubscribe}" if unsubscribe is not None else None,
        thread=thread,
    )
    sender, now = "service@csm.example.com", datetime(2026, 11, 23, tzinfo=UTC)
    written = email_bytes(mail, sender=sender, sender_name=sender_name, now=now)
    assert written == build_email(mail, sender=sender, sender_name=sender_name, now=now).as_bytes(policy=WIRE)


def test_the_message_id_is_the_same_for_every_attempt_and_different_for_every_message() -> None:
    first = message_id("event-1:survey:ask", "service@csm.example.com")
    assert first == message_id("event-1:survey:ask", "service@csm.example.com")
    assert first != message_id("event-2:survey:ask", "service@csm.example.com")
    assert first == f"<{delivery_id('event-1:survey:ask')}@csm.example.com>"
    assert "event-1" not in first, "the key itself stays inside"


def test_webhook_signatures_follow_the_standard_webhooks_specification() -> None:
    secret = new_webhook_secret()
    body = '{"title":"投诉升级"}'.encode()
    now = int(datetime.now(UTC).timestamp())
    signature = sign_webhook(secret, webhook_id="msg_1", timestamp=now, body=body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert Webhook(secret).verify(body, headers) == {"title": "投诉升级"}
    with pytest.raises(Exception, match="signature"):
        Webhook(new_webhook_secret()).verify(body, headers)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 'a' * 200000000 }}", "longer than 100,000 characters"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop steps"),
        ("{% for i in range(100001) %}{% endfor %}", "Range too big"),
        ("{{ 'a'.ljust(1000000000) }}", "longer than"),
        ("{{ '{:>999999999}'.format('a') }}", "format() is not available"),
        ("{{ '{:>999999999}'['format']('a') }}", "format() is not available"),
        ("{{ '%999999999s' % 'a' }}", "pads text"),
        ("{{ '%999999999s'|format('a') }}", "pads text"),
        ("{{ ('a' * 1000)|replace('a', 'b' * 1000) }}", "longer than"),
        ("{{ range(100000)|join('a' * 1000) }}", "longer than"),
        ("{{ 'a'|center(1000000000) }}", "No filter named 'center'"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s~ns.s %}{% endfor %}",
            "longer",
        ),
        (
            "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
            "bits",
        ),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "too deeply"),
        ("{% set items = [1] %}{{ items.append(2) }}", "unsafe"),
        ("{% set x %}{% for i in range(99999) %}{{ 'a' * 50000 }}{% endfor %}{% endset %}", "longer than"),
    ],
)
def test_a_template_cannot_spend_more_than_its_budget(
    source: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock is the last resort (tested below); here each budget must stop the template by itself,
    # which on a loaded machine the quarter-second clock could otherwise do first.
    monkeypatch.setattr(templates, "TIME_BUDGET", 600.0)
    with pytest.raises(templates.TemplateProblem, match=re.escape(reason)):
        templates.check(source)
        templates.render(source, {})


def test_a_template_that_runs_out_of_time_stops_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work that is neither long loops nor long text (a search repeated over a long string) has a clock."""
    slow = "{{ range(100000)|map('string')|select('in', 'a' * 99999)|list|length }}"
    monkeypatch.setattr(templates, "TIME_BUDGET", 0.001)
    with pytest.raises(templates.TemplateProblem, match=r"longer than 0\.001 s"):
        templates.render(slow, {})
    with templates.time_budget(0.0), pytest.raises(templates.TemplateProblem, match="longer than"):
        templates.render("{% for i in range(10) %}{{ i }}{% endfor %}", {})


def test_ordinary_templates_are_unaffected_by_the_budget() -> None:
    source = (
        "{{ name ~ '!' }} {{ '%.2f'|format(amount) }} {{ items|join(', ') }} "
        "{% for i in range(3) %}{{ loop.index }}{% endfor %} {{ 'ab' * 2 }} {{ 2 ** 10 }} {{ name|upper }}"
    )
    context = {"name": "Li", "amount": 3.14159, "items": ["tea", "cups"]}
    assert templates.render(source, context) == "Li! 3.14 tea, cups 123 abab 1024 LI"
