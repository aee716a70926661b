"""Who may be reached, on which channel, and when: consent, preferences, quiet hours, the marketing cap.

Pure rules over plain values. The policy document itself is data (kept in the database,
changed over ``PUT /policy``); the defaults below are where a new installation starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.clock import LocalTime
from shared.events.customer import ContactChannel, Purpose
from shared.events.segmentation import Tier


def _valid_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None
    return name


class QuietHours(BaseModel):
    """A daily window of the customer's local time in which non-urgent messages wait."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: LocalTime = time(21, 0)
    end: LocalTime = time(8, 0)
    channels: tuple[ContactChannel, ...] = (ContactChannel.email, ContactChannel.sms, ContactChannel.in_app)


class MarketingCap(BaseModel):
    """At most ``messages`` marketing messages to one customer in any window of ``per``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: int = Field(default=2, ge=0, le=1000)
    per: timedelta = Field(default=timedelta(days=7), gt=timedelta(0), le=timedelta(days=366))


DEFAULT_OFFERS: dict[Tier, dict[str, str]] = {
    # The practice's offer per layer of the pyramid: exclusive discounts and points for high
    # value, regular promotions and new products for the general layer, trials for potential.
    Tier.platinum: {
        "zh": "作为白金会员，您可享受专属折扣与双倍积分。",
        "en": "As a Platinum member you enjoy exclusive discounts and double points.",
    },
    Tier.gold: {
        "zh": "作为金卡会员，您可享受会员专属折扣与积分。",
        "en": "As a Gold member you enjoy member-only discounts and points.",
    },
    Tier.iron: {
        "zh": "本月会员促销与新品推荐已为您准备好。",
        "en": "This month's member promotions and new arrivals are ready for you.",
    },
    Tier.lead: {
        "zh": "欢迎预约免费试用或参加我们的体验活动。",
        "en": "You are welcome to book a free trial or join one of our experience events.",
    },
}


class Policy(BaseModel):
    """The figures of the follow-up practice that an operator may change at run time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_hours: QuietHours | None = QuietHours()
    marketing_cap: MarketingCap | None = MarketingCap()
    default_time_zone: str = "Asia/Shanghai"
    default_locale: str = "zh-CN"
    staff_locale: str = Field(default="zh-CN", description="The language of alerts and task titles.")
    unknown_customer_wait: timedelta = Field(
        default=timedelta(minutes=10),
        ge=timedelta(0),
        le=timedelta(days=1),
        description="How long a message waits for the customer's profile to arrive before going out with "
        "what is known.",
    )
    offers: dict[Tier, dict[str, str]] = Field(default_factory=lambda: dict(DEFAULT_OFFERS))

    _zone = field_validator("default_time_zone")(_valid_zone)


def zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _in_window(clock: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def quiet_until(moment: datetime, quiet: QuietHours | None, time_zone: ZoneInfo) -> datetime | None:
    """If ``moment`` falls in the customer's quiet hours, the UTC instant they end; else None."""
    if quiet is None:
        return None
    local = moment.astimezone(time_zone)
    if not _in_window(local.time().replace(tzinfo=None), quiet.start, quiet.end):
        return None
    end_date = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_date += timedelta(days=1)
    # Wall-clock end of the window; across a DST gap the same wall time may not exist, and
    # converting through UTC lands on the first real instant after it.
    end_local = datetime.combine(end_date, quiet.end, tzinfo=time_zone)
    end_utc = end_local.astimezone(UTC)
    return end_utc if end_utc > moment else moment + timedelta(minutes=1)


@dataclass(frozen=True)
class Reach:
    """What notify knows about reaching one customer."""

    addresses: Mapping[ContactChannel, str | None]
    consents: Mapping[tuple[ContactChannel, Purpose], bool] = field(default_factory=dict)
    preferences: Mapping[tuple[ContactChannel, Purpose], bool] = field(default_factory=dict)
    erased: bool = False


def permitted(reach: Reach, channel: ContactChannel, purpose: Purpose) -> str | None:
    """None if the customer may be reached on ``channel`` for ``purpose``; else the reason not."""
    if reach.erased:
        return "the customer was erased"
    consent = reach.consents.get((channel, purpose))
    # Marketing needs a consent the customer gave; service messages go unless they withdrew it.
    if purpose is Purpose.marketing and consent is not True:
        return f"no marketing consent for {channel.value}"
    if consent is False:
        return f"consent withdrawn for {channel.value}"
    if reach.preferences.get((channel, purpose)) is False:
        return f"the customer turned off {purpose.value} messages on {channel.value}"
    if channel is not ContactChannel.in_app and not reach.addresses.get(channel):
        return f"no {channel.value} address"
    return None


@dataclass(frozen=True)
class Choice:
    channel: ContactChannel | None
    address: str | None
    refusals: tuple[str, ...]


def choose_channel(candidates: Iterable[ContactChannel], reach: Reach, purpose: Purpose) -> Choice:
    """The first candidate channel the customer can be reached on and may be; the reasons otherwise."""
    refusals: list[str] = []
    for channel in candidates:
        reason = permitted(reach, channel, purpose)
        if reason is None:
            return Choice(channel, reach.addresses.get(channel), tuple(refusals))
        refusals.append(reason)
    return Choice(None, None, tuple(refusals))


def cap_allows(sent_in_window: int, cap: MarketingCap | None) -> bool:
    return cap is None or sent_in_window < cap.messages


def retry_delay(attempts: int, backoff: Sequence[float]) -> timedelta | None:
    """The wait before the next try after ``attempts`` tries; None once the tries are used up."""
    if attempts < 1 or attempts > len(backoff):
        return None
    return timedelta(seconds=backoff[attempts - 1])


def offer_for(policy: Policy, tier: Tier | None, language: str) -> str:
    texts = policy.offers.get(tier or Tier.lead) or {}
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")


@dataclass(frozen=True)
class Outgoing:
    """What the dispatcher knows of one message when it is due."""

    purpose: Purpose
    candidates: tuple[ContactChannel, ...]
    urgent: bool
    created_at: datetime
    to_staff: bool = False


@dataclass(frozen=True)
class Decision:
    """Send now on ``channel``; or wait until ``wait_until``; or never (``suppressed``), with the reason."""

    channel: ContactChannel | None = None
    address: str | None = None
    wait_until: datetime | None = None
    suppressed: str | None = None


# While the profile has not arrived, a message is looked at again this often.
PROFILE_RECHECK = timedelta(seconds=30)


def decide(
    message: Outgoing,
    *,
    reach: Reach | None,
    profile_known: bool,
    policy: Policy,
    now: datetime,
    time_zone: ZoneInfo,
    quiet: QuietHours | None,
    marketing_sent: int,
    configured: frozenset[ContactChannel],
) -> Decision:
    """Whether, when and on which channel a due message goes. The one gate every message passes."""
    if message.to_staff:
        return Decision(channel=ContactChannel.webhook)
    if reach is not None and reach.erased:
        return Decision(suppressed="the customer was erased")
    if not profile_known:
        # Events from different services race: give the customer's profile a moment to arrive,
        # then go with what is known (the app inbox needs no address).
        waited_enough = message.created_at + policy.unknown_customer_wait
        if now < waited_enough:
            return Decision(wait_until=min(waited_enough, now + PROFILE_RECHECK))
    if reach is None:
        reach = Reach(addresses={ContactChannel.in_app: "app"})
    usable = [channel for channel in message.candidates if channel in configured]
    choice = choose_channel(usable, reach, message.purpose)
    if choice.channel is None:
        unconfigured = [
            f"no {c.value} provider configured" for c in message.candidates if c not in configured
        ]
        return Decision(suppressed="; ".join([*choice.refusals, *unconfigured]) or "no channel")
    if not message.urgent and quiet is not None and choice.channel in quiet.channels:
        until = quiet_until(now, quiet, time_zone)
        if until is not None:
            return Decision(wait_until=until)
    if message.purpose is Purpose.marketing and not cap_allows(marketing_sent, policy.marketing_cap):
        return Decision(suppressed="the marketing frequency cap is reached")
    return Decision(channel=choice.channel, address=choice.address)


def quiet_hours_for(policy: Policy, own: tuple[str, str] | None) -> QuietHours | None:
    """The customer's own quiet hours if they set them, on the policy's channels; else the policy's."""
    if own is None:
        return policy.quiet_hours
    start, end = (time.fromisoformat(value) for value in own)
    channels = policy.quiet_hours.channels if policy.quiet_hours else QuietHours().channels
    return QuietHours(start=start, end=end, channels=channels)


class PolicyDocument(Policy):
    """A policy as it is saved: whole. A field left out would silently go back to its default."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=lambda schema, _model: schema.update(required=sorted(schema["properties"])),
    )

    @model_validator(mode="after")
    def _whole(self) -> PolicyDocument:
        if missing := [name for name in Policy.model_fields if name not in self.model_fields_set]:
            raise ValueError(
                f"a policy is saved whole (read it, change it, put it back); missing: {', '.join(missing)}"
            )
        return self
