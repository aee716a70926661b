"""Rendering a page: the template with who is signed in, their language, the form token and any notice."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from services.console import i18n
from services.console.csrf import csrf_token
from services.console.session import current

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(value: Any) -> str:
    """An API's instant as a person reads it (UTC, to the minute); the page's script shows local time."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters["when"] = _when


def language(request: Request) -> i18n.Language:
    return i18n.choose(request.session.get("language"), request.headers.get("accept-language"))


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    chosen = language(request)
    notice = request.session.pop("notice", None)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "person": current(request),
            "lang": chosen,
            "languages": i18n.LANGUAGES,
            "t": i18n.translator(chosen),
            "v": i18n.value_namer(chosen),
            "csrf": csrf_token(request),
            "notice": notice,
            **context,
        },
        status_code=status_code,
    )


def notify(request: Request, message: str) -> None:
    """A notice shown once, on the next page (after the redirect that follows a form)."""
    request.session["notice"] = message


def back_to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path on this console: a sign-in never sends anyone to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/work"
