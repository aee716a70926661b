"""Request and response models of the staff directory."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from services.complaints.policy import HoursText, TimeZone, Weekday
from services.complaints.routing import LanguageTag
from shared.roles import STAFF_RANK, Role

TeamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,59}$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat")
    return values


class PersonWrite(BaseModel):
    """A person as a manager records them; the subject is in the path."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName
    email: EmailStr | None = None
    role: Role
    teams: list[TeamName] = Field(default_factory=list, max_length=20)
    skills: list[Label] = Field(default_factory=list, max_length=50)
    languages: list[LanguageTag] = Field(default_factory=list, max_length=20)
    time_zone: TimeZone = "Asia/Shanghai"
    # No hours: none recorded, so the person is on duty at any time.
    working_hours: dict[Weekday, list[HoursText]] = Field(default_factory=dict)
    capacity: int = Field(default=20, ge=0, le=1000)
    active: bool = True

    @field_validator("role")
    @classmethod
    def _staff(cls, role: Role) -> Role:
        if role not in STAFF_RANK:
            raise ValueError("a person has a staff role: agent, supervisor, manager or admin")
        return role

    @field_validator("teams", "skills", "languages")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        return _distinct(values)


class PersonRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    subject: str
    display_name: str
    email: str | None
    role: Role
    teams: list[str]
    skills: list[str]
    languages: list[str]
    time_zone: str
    working_hours: dict[str, list[str]]
    capacity: int
    active: bool
    created_at: datetime
    updated_at: datetime


class TeamWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName
    # Who acts for the team when the escalation ladder names it: a person in the directory.
    lead: Subject | None = None


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    display_name: str
    lead: str | None
    members: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
