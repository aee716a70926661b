"""The gate every message passes: consent, preferences, quiet hours, the marketing cap (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notify.policy import (
    Decision,
    MarketingCap,
    Outgoing,
    Policy,
    QuietHours,
    Reach,
    cap_allows,
    choose_channel,
    decide,
    permitted,
    quiet_hours_for,
    quiet_until,
    retry_delay,
)
from shared.events.customer import ContactChannel, Purpose

EMAIL, SMS, IN_APP, WEBHOOK = (
    ContactChannel.email,
    ContactChannel.sms,
    ContactChannel.in_app,
    ContactChannel.webhook,
)
SERVICE, MARKETING = Purpose.service, Purpose.marketing
ADDRESSES = {EMAIL: "a@example.com", SMS: "+8613800000000", IN_APP: "app"}
ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


def _in(clock: time, quiet: QuietHours) -> bool:
    if quiet.start < quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
clocks = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@settings(max_examples=300, deadline=None)
@given(moments, clocks, clocks, st.sampled_from(ZONES))
def test_a_message_in_quiet_hours_waits_exactly_until_they_end(
    moment: datetime, start: time, end: time, zone: str
) -> None:
    quiet = QuietHours(start=start, end=end)
    tz = ZoneInfo(zone)
    until = quiet_until(moment, quiet, tz)
    local = moment.astimezone(tz).time().replace(tzinfo=None)
    if start == end or not _in(local, quiet):
        assert until is None
        return
    assert until is not None and until > moment
    assert until - moment <= timedelta(hours=25)
    assert not _in(until.astimezone(tz).time().replace(tzinfo=None), quiet), "it ends outside quiet hours"
    # Minimal: a minute before the end is still quiet (unless a clock change swallowed that minute).
    before = until - timedelta(minutes=1)
    if before > moment and before.astimezone(tz).utcoffset() == until.astimezone(tz).utcoffset():
        assert _in(before.astimezone(tz).time().replace(tzinfo=None), quiet)


def test_quiet_hours_in_the_customers_own_time_zone() -> None:
    quiet = QuietHours(start=time(21), end=time(8))
    shanghai_night = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai, 09:00 in New York
    assert quiet_until(shanghai_night, quiet, ZoneInfo("Asia/Shanghai")) == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )
    assert quiet_until(shanghai_night, quiet, ZoneInfo("America/New_York")) is None


def test_marketing_needs_a_consent_given_and_service_goes_unless_withdrawn() -> None:
    nothing_said = Reach(addresses=ADDRESSES)
    assert permitted(nothing_said, EMAIL, MARKETING) == "no marketing consent for email"
    assert permitted(nothing_said, EMAIL, SERVICE) is None
    granted = Reach(addresses=ADDRESSES, consents={(EMAIL, MARKETING): True})
    assert permitted(granted, EMAIL, MARKETING) is None
    assert permitted(granted, SMS, MARKETING) == "no marketing consent for sms", "consent is per channel"
    withdrawn = Reach(addresses=ADDRESSES, consents={(EMAIL, SERVICE): False})
    assert permitted(withdrawn, EMAIL, SERVICE) == "consent withdrawn for email"
    turned_off = Reach(
        addresses=ADDRESSES, consents={(EMAIL, MARKETING): True}, preferences={(EMAIL, MARKETING): False}
    )
    assert permitted(turned_off, EMAIL, MARKETING) == "the customer turned off marketing messages on email"
    assert permitted(Reach(addresses={EMAIL: None}), EMAIL, SERVICE) == "no email address"
    assert permitted(Reach(addresses={}), IN_APP, SERVICE) is None, "the app inbox needs no address"
    assert permitted(Reach(addresses=ADDRESSES, erased=True), IN_APP, SERVICE) == "the customer was erased"


@given(
    st.dictionaries(
        st.tuples(st.sampled_from([EMAIL, SMS, IN_APP]), st.sampled_from([SERVICE, MARKETING])), st.booleans()
    ),
    st.dictionaries(
        st.tuples(st.sampled_from([EMAIL, SMS, IN_APP]), st.sampled_from([SERVICE, MARKETING])), st.booleans()
    ),
    st.permutations([EMAIL, SMS, IN_APP]),
)
def test_no_channel_is_ever_chosen_for_marketing_without_its_consent(consents, preferences, order) -> None:  # type: ignore[no-untyped-def]
    reach = Reach(addresses=ADDRESSES, consents=consents, preferences=preferences)
    choice = choose_channel(order, reach, MARKETING)
    if choice.channel is not None:
        assert consents.get((choice.channel, MARKETING)) is True
        assert preferences.get((choice.channel, MARKETING)) is not False
        earlier = order[: order.index(choice.channel)]
        assert all(permitted(reach, c, MARKETING) for c in earlier), "the first permitted channel is taken"
    else:
        assert len(choice.refusals) == len(order)


def _decide(
    message: Outgoing,
    reach: Reach | None = None,
    *,
    now: datetime,
    known: bool = True,
    sent: int = 0,
    policy: Policy | None = None,
    configured: frozenset[ContactChannel] = frozenset(ContactChannel),
) -> Decision:
    policy = policy or Policy()
    return decide(
        message,
        reach=reach,
        profile_known=known,
        policy=policy,
        now=now,
        time_zone=ZoneInfo("Asia/Shanghai"),
        quiet=policy.quiet_hours,
        marketing_sent=sent,
        configured=configured,
    )


DAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NIGHT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai


def test_the_gate() -> None:
    reach = Reach(addresses=ADDRESSES, consents={(EMAIL, MARKETING): True})
    service = Outgoing(purpose=SERVICE, candidates=(EMAIL, SMS), urgent=False, created_at=DAY)
    marketing = Outgoing(purpose=MARKETING, candidates=(SMS, EMAIL), urgent=False, created_at=DAY)
    assert _decide(service, reach, now=DAY).channel is EMAIL
    assert _decide(marketing, reach, now=DAY).channel is EMAIL, "SMS has no marketing consent"
    assert _decide(service, reach, now=NIGHT).wait_until == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    urgent = Outgoing(purpose=SERVICE, candidates=(SMS,), urgent=True, created_at=NIGHT)
    assert _decide(urgent, reach, now=NIGHT).channel is SMS, "urgent messages do not wait for the morning"
    assert _decide(marketing, reach, now=DAY, sent=2).suppressed == "the marketing frequency cap is reached"
    assert _decide(marketing, reach, now=DAY, sent=1).channel is EMAIL
    no_cap = Policy(marketing_cap=None)
    assert _decide(marketing, reach, now=DAY, sent=99, policy=no_cap).channel is EMAIL
    assert _decide(service, reach, now=DAY, configured=frozenset({SMS, IN_APP})).channel is SMS
    refused = _decide(
        Outgoing(purpose=SERVICE, candidates=(EMAIL,), urgent=False, created_at=DAY),
        reach,
        now=DAY,
        configured=frozenset({IN_APP}),
    )
    assert refused.suppressed == "no email provider configured"
    staff = Outgoing(purpose=SERVICE, candidates=(WEBHOOK,), urgent=True, created_at=DAY, to_staff=True)
    assert _decide(staff, None, now=NIGHT, known=False).channel is WEBHOOK


def test_a_message_waits_a_while_for_the_profile_then_goes_with_what_is_known() -> None:
    message = Outgoing(purpose=SERVICE, candidates=(EMAIL, IN_APP), urgent=True, created_at=DAY)
    waiting = _decide(message, None, now=DAY, known=False)
    assert waiting.wait_until == DAY + timedelta(seconds=30)
    late = _decide(message, None, now=DAY + timedelta(minutes=10), known=False)
    assert late.channel is IN_APP
    nothing_known = Outgoing(purpose=MARKETING, candidates=(IN_APP,), urgent=True, created_at=DAY)
    assert _decide(nothing_known, None, now=DAY + timedelta(minutes=10), known=False).suppressed


def test_the_customers_own_quiet_hours_replace_the_policys() -> None:
    own = quiet_hours_for(Policy(), ("12:00", "14:00"))
    assert own is not None and (own.start, own.end) == (time(12), time(14))
    assert quiet_hours_for(Policy(), None) == Policy().quiet_hours
    assert quiet_hours_for(Policy(quiet_hours=None), None) is None


@pytest.mark.parametrize(("attempts", "delay"), [(0, None), (1, 30), (2, 120), (5, 7200), (6, None)])
def test_retries_back_off_then_stop(attempts: int, delay: float | None) -> None:
    backoff = (30.0, 120.0, 600.0, 1800.0, 7200.0)
    assert retry_delay(attempts, backoff) == (timedelta(seconds=delay) if delay is not None else None)


def test_the_cap() -> None:
    assert cap_allows(1, MarketingCap(messages=2))
    assert not cap_allows(2, MarketingCap(messages=2))
    assert cap_allows(10**6, None)
    assert not cap_allows(0, MarketingCap(messages=0))
