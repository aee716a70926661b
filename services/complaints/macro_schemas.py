"""Request and response models of canned replies (macros)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.complaints.routing import LanguageTag
from shared.templates import SOURCE_LIMIT

MacroName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,59}$")]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=SOURCE_LIMIT)]


class MacroWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: MacroName
    title: Title
    # Language tag -> Jinja2 template, e.g. {"zh-CN": "您好，…", "en": "Dear customer, …"}.
    bodies: dict[LanguageTag, Body] = Field(min_length=1, max_length=10)


class MacroRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    title: str
    bodies: dict[str, str]
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class MacroPreviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    complaint_id: uuid.UUID
    # The reply's language; by default the first the agent speaks, else Chinese.
    language: LanguageTag | None = None


class MacroPreview(BaseModel):
    macro_id: uuid.UUID
    complaint_id: uuid.UUID
    language: str
    text: str
