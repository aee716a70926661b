"""The rules a person expects of a customer record, as plain functions (no web, no database).

Phones are kept in E.164, e-mail addresses in lower case, names with a search key beside them;
locales and time zones must be ones the world knows. Each function raises ``ValueError`` with a
message fit to show the user, and returns the value as it is stored.
"""

from __future__ import annotations

import locale
import re
import unicodedata
import zoneinfo
from functools import cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_SPACES = re.compile(r"\s+")
_LOCALE = re.compile(r"^(?P<language>[a-z]{2,3})(?:-(?P<script>[A-Z][a-z]{3}))?(?:-(?P<region>[A-Z]{2}))?$")
_TAG = re.compile(r"^[\w][\w .:/&+-]*$")


def clean_text(value: str) -> str:
    """Trim and collapse runs of white space, and bring the text to its composed Unicode form."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def name_key(name: str) -> str:
    """The form of a name that search and duplicate detection compare: case and width folded."""
    return clean_text(name).casefold()


def e164(value: str) -> str:
    """A valid international phone number, as E.164 (``+8613812345678``)."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "must be an international phone number in E.164 form, such as +8613812345678"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_address(value: str) -> str:
    """A deliverable-looking address, lower-cased: no provider treats case as meaningful."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"is not a valid e-mail address ({error})") from None
    return checked.normalized.lower()


@cache
def _known_languages() -> frozenset[str]:
    return frozenset(re.split(r"[_.@]", alias)[0] for alias in locale.locale_alias)


def locale_tag(value: str) -> str:
    """A BCP 47 tag of a known language, optionally with script and region: ``zh-CN``, ``zh-Hant-TW``."""
    match = _LOCALE.match(value)
    if match is None:
        raise ValueError("must be a locale such as zh-CN, en-GB or zh-Hant-TW")
    if match["language"] not in _known_languages():
        raise ValueError(f"names an unknown language {match['language']!r}")
    if match["region"] and match["region"] not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"names an unknown region {match['region']!r}")
    return value


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("must be an IANA time zone, such as Asia/Shanghai")
    return value


def tag(value: str, *, max_length: int = 50) -> str:
    """A label for lists and search: trimmed, lower case, letters, digits and a little punctuation."""
    cleaned = clean_text(value).casefold()
    if not cleaned or len(cleaned) > max_length or not _TAG.match(cleaned):
        raise ValueError(f"must be 1 to {max_length} letters, digits, spaces or . : / & + -")
    return cleaned


def distinct(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Values in their first order, each once."""
    return tuple(dict.fromkeys(values))
