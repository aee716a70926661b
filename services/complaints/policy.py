"""The complaint policy as data: SLA targets per tier and severity, calendars, the escalation
ladder, compensation authority and what counts as a poor survey. Pure.

An operator changes it at run time (``PUT /complaint-policy``); every change is a new version
and complaints remember the version their promise was made under.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.complaints import sla
from shared.events.complaints import Severity
from shared.events.segmentation import Tier
from shared.roles import STAFF_RANK, Role

FIRST_OWNER = "first_owner"
DEFAULT_ROOT_CAUSES = (
    "product_defect",
    "carrier_delay",
    "billing_error",
    "staff_conduct",
    "installation_error",
    "miscommunication",
    "customer_misuse",
    "other",
)
HOURS_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$")


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _hours_text(text: str) -> str:
    if not HOURS_PATTERN.match(text):
        raise ValueError(f"opening hours {text!r} are not HH:MM-HH:MM")
    opening, closing = (_minutes(part) for part in text.split("-"))
    if opening >= closing:
        raise ValueError(f"opening hours {text!r} close before they open")
    return text


HoursText = Annotated[str, AfterValidator(_hours_text)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
PositiveDuration = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=366))]
Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


def _parse_hours(texts: list[str]) -> sla.Hours:
    return tuple((_minutes(a), _minutes(b)) for a, b in sorted(text.split("-") for text in texts))


class CalendarSpec(BaseModel):
    """24x7, or opening hours per weekday in a time zone with holidays and special days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    always_open: bool = False
    time_zone: TimeZone = "UTC"
    hours: dict[Weekday, list[HoursText]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    # Hours for a particular date, over weekday and holiday: a make-up working Saturday (调休), a short day.
    special_hours: dict[date, list[HoursText]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _usable(self) -> CalendarSpec:
        if not self.always_open:
            self.calendar()  # raises CalendarError (a ValueError) for overlapping or missing hours
        return self

    def calendar(self) -> sla.Calendar:
        return self.built

    @functools.cached_property
    def built(self) -> sla.Calendar:
        """The calendar, parsed once per policy: every promise reads it, and parsing the hours cost
        more than reading the promise."""
        if self.always_open:
            return sla.ALWAYS
        days = list(Weekday)
        return sla.Calendar(
            time_zone=self.time_zone,
            weekly=tuple(_parse_hours(self.hours.get(day, [])) for day in days),
            holidays=frozenset(self.holidays),
            special={day: _parse_hours(texts) for day, texts in self.special_hours.items()},
        )


class TargetRule(BaseModel):
    """The promise for one tier and severity; a None tier is the default (for tiers without a rule of
    their own and customers whose tier is not known yet), a None severity matches any."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier | None = None
    severity: Severity | None = None
    first_response: PositiveDuration
    on_site: PositiveDuration
    resolution: PositiveDuration
    calendar: Name

    def duration(self, target: str) -> timedelta:
        return {
            "first_response": self.first_response,
            "on_site": self.on_site,
            "resolution": self.resolution,
        }[target]


class EscalationLevel(BaseModel):
    """One rung of the ladder; ``after`` is how long the rung below has to act while a breach lasts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    # A role, team or person that must act; "first_owner" is the complaint's first owner. A team in the
    # staff directory with a lead is answered for by the lead.
    must_act: Name
    after: Annotated[timedelta, Field(ge=timedelta(0), le=timedelta(days=30))] = timedelta(0)
    key_accounts_only: bool = False


class ComplaintPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    calendars: dict[Name, CalendarSpec]
    targets: list[TargetRule] = Field(min_length=1)
    # Warn when this share of a target's time is used.
    warning_share: float = Field(default=0.75, gt=0, lt=1)
    reopen: sla.ReopenRule = sla.ReopenRule.restart
    escalation: list[EscalationLevel] = Field(min_length=2)
    # The most one may grant without approval, per staff role; null is no limit.
    compensation_limits: dict[Role, Amount | None]
    # A CSAT at or below this is poor; so is an NPS at or below poor_nps, when that is set.
    poor_csat: int = Field(default=2, ge=1, le=5)
    poor_nps: int | None = Field(default=None, ge=0, le=10)
    # The root causes a resolution may name, so that recurring ones can be counted.
    root_causes: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]] = Field(
        default_factory=lambda: list(DEFAULT_ROOT_CAUSES), min_length=1
    )

    # Field validators rather than one model validator, so that a 422 names the field at fault.
    @field_validator("targets")
    @classmethod
    def _targets(cls, targets: list[TargetRule], info: ValidationInfo) -> list[TargetRule]:
        calendars = info.data.get("calendars") or {}
        seen: set[tuple[Tier | None, Severity | None]] = set()
        for index, rule in enumerate(targets):
            if rule.calendar not in calendars:
                raise ValueError(
                    f"targets[{index}] names the calendar {rule.calendar!r}, which is not defined"
                )
            key = (rule.tier, rule.severity)
            if key in seen:
                raise ValueError(f"targets[{index}] repeats tier {rule.tier} and severity {rule.severity}")
            seen.add(key)
        if (None, None) not in seen:
            raise ValueError("targets need a fallback rule with neither tier nor severity")
        return targets

    @field_validator("escalation")
    @classmethod
    def _ladder(cls, ladder: list[EscalationLevel]) -> list[EscalationLevel]:
        names = [level.name for level in ladder]
        if len(set(names)) != len(names):
            raise ValueError("escalation levels need distinct names")
        if ladder[0].key_accounts_only:
            raise ValueError("the front line (the first escalation level) serves every complaint")
        return ladder

    @field_validator("compensation_limits")
    @classmethod
    def _limits(cls, limits: dict[Role, Decimal | None]) -> dict[Role, Decimal | None]:
        staff = sorted(STAFF_RANK, key=STAFF_RANK.__getitem__)
        if set(limits) != set(staff):
            raise ValueError("compensation_limits need exactly the staff roles " + ", ".join(staff))
        previous, unlimited = Decimal(0), False
        for role in staff:
            limit = limits[role]
            if limit is None:
                unlimited = True
            elif unlimited or limit < previous:
                raise ValueError(f"the compensation limit of {role.value} is below that of a lower role")
            else:
                previous = limit
        return {role: limits[role] for role in staff}

    @field_validator("root_causes")
    @classmethod
    def _causes(cls, causes: list[str]) -> list[str]:
        if len(set(causes)) != len(causes):
            raise ValueError("root_causes must not repeat")
        return causes

    def target_for(self, tier: Tier | None, severity: Severity) -> TargetRule:
        """The most specific rule: tier and severity, then tier, then default and severity, then fallback."""
        rules = {(rule.tier, rule.severity): rule for rule in self.targets}
        for key in ((tier, severity), (tier, None), (None, severity), (None, None)):
            if key in rules:
                return rules[key]
        raise AssertionError("the validator guarantees a fallback rule")

    def calendar(self, name: str) -> sla.Calendar:
        return self.calendars[name].calendar()

    def next_level(self, current: int, *, key_account: bool) -> int | None:
        """The rung above ``current`` that serves this customer, or None at the top."""
        for index in range(current + 1, len(self.escalation)):
            if key_account or not self.escalation[index].key_accounts_only:
                return index
        return None

    def limit_of(self, role: Role) -> Decimal | None:
        """The most ``role`` may grant alone (None: no limit); service accounts may grant nothing."""
        if role not in STAFF_RANK:
            return Decimal(0)
        return self.compensation_limits[role]

    def may_grant(self, role: Role, amount: Decimal) -> bool:
        limit = self.limit_of(role)
        return limit is None or amount <= limit

    def approver_for(self, amount: Decimal, *, above: Role | None = None) -> Role:
        """The lowest staff role that may grant ``amount`` (and outranks ``above``, who asked)."""
        floor = STAFF_RANK.get(above, 0) if above is not None else 0
        for role in sorted(STAFF_RANK, key=STAFF_RANK.__getitem__):
            if STAFF_RANK[role] > floor and self.may_grant(role, amount):
                return role
        raise ValueError(f"no role may grant {amount}")

    def is_poor(self, csat: int, nps: int | None) -> bool:
        return csat <= self.poor_csat or (
            self.poor_nps is not None and nps is not None and nps <= self.poor_nps
        )


def _rule(
    tier: Tier | None, severity: Severity | None, hours: tuple[float, float, float], calendar: str
) -> TargetRule:
    first_response, on_site, resolution = (timedelta(hours=h) for h in hours)
    return TargetRule(
        tier=tier,
        severity=severity,
        first_response=first_response,
        on_site=on_site,
        resolution=resolution,
        calendar=calendar,
    )


@functools.cache
def default_policy(currency: str = "CNY") -> ComplaintPolicy:
    """The practice's figures: gold responds in 2 hours, is on site in 24 and resolves in 48, around the
    clock; platinum tighter; iron and lead looser, in business hours; critical complaints faster."""
    business = {
        day: ["09:00-18:00"] for day in (Weekday.mon, Weekday.tue, Weekday.wed, Weekday.thu, Weekday.fri)
    }
    return ComplaintPolicy(
        currency=currency,
        calendars={
            "24x7": CalendarSpec(always_open=True),
            "business_hours": CalendarSpec(time_zone="Asia/Shanghai", hours=business),
        },
        targets=[
            _rule(Tier.platinum, None, (1, 12, 24), "24x7"),
            _rule(Tier.platinum, Severity.critical, (0.5, 6, 12), "24x7"),
            _rule(Tier.gold, None, (2, 24, 48), "24x7"),
            _rule(Tier.gold, Severity.critical, (1, 12, 24), "24x7"),
            # Business hours: 9 a day, so 18 is two working days and 36 four.
            _rule(Tier.iron, None, (4, 18, 36), "business_hours"),
            _rule(Tier.iron, Severity.critical, (2, 24, 48), "24x7"),
            _rule(Tier.lead, None, (8, 27, 45), "business_hours"),
            _rule(Tier.lead, Severity.critical, (2, 24, 48), "24x7"),
            _rule(None, Severity.critical, (2, 24, 48), "24x7"),
            # Not known yet: treated as an ordinary (iron) customer until the tier arrives.
            _rule(None, None, (4, 18, 36), "business_hours"),
        ],
        escalation=[
            EscalationLevel(name="front_line", must_act=FIRST_OWNER),
            EscalationLevel(name="supervisor", must_act=Role.supervisor.value),
            EscalationLevel(name="manager", must_act=Role.manager.value, after=timedelta(hours=4)),
            EscalationLevel(
                name="key_account_director",
                must_act="key_account_director",
                after=timedelta(hours=4),
                key_accounts_only=True,
            ),
        ],
        compensation_limits={
            Role.agent: Decimal("200"),
            Role.supervisor: Decimal("1000"),
            Role.manager: None,
            Role.admin: None,
        },
    )
