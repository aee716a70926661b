"""Reading a mail for the complaints service: who wrote it, what it answers, and whether a person did. Pure.

Parsed with the standard library's ``email`` package under ``policy.default`` (RFC 5322 headers,
encoded words decoded, ``get_body`` for the text). Nothing here touches a database.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser

# A complaint's reference in a subject line: the first eight hex digits of its id, as notify's
# acknowledgement shows them (``[#C-3F2A1B4C]``).
REFERENCE = re.compile(r"\[#C-([0-9A-Fa-f]{8})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Precedence values that mark a message no person wrote to us (RFC 3834 section 2).
AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list"})
# Local parts of the addresses that send bounces.
BOUNCERS = frozenset({"mailer-daemon", "postmaster"})
# The references a reply carries at most: enough for any mail client to thread it.
MAX_REFERENCES = 20


@dataclass(frozen=True)
class Attachment:
    name: str | None
    media_type: str
    content: bytes


@dataclass(frozen=True)
class Inbound:
    """A mail as the complaints service reads it."""

    message_id: str
    sender: str | None
    # The sender's display name, if the From header gives one.
    sender_name: str | None
    subject: str
    body: str
    in_reply_to: str | None
    references: tuple[str, ...]
    # Why no person wrote it (an auto-reply, a bounce, a list), if so: it opens and answers nothing.
    automatic: str | None
    attachments: tuple[Attachment, ...]

    @property
    def answers(self) -> tuple[str, ...]:
        """The Message-IDs this mail replies to, nearest first."""
        ids = ([self.in_reply_to] if self.in_reply_to else []) + list(reversed(self.references))
        return tuple(dict.fromkeys(ids))

    @property
    def reference(self) -> str | None:
        """The complaint reference in the subject (upper-case hex), if there is one."""
        found = REFERENCE.search(self.subject)
        return found.group(1).upper() if found else None


def reference_of(complaint_id: uuid.UUID) -> str:
    return str(complaint_id)[:8].upper()


def tagged(subject: str, complaint_id: uuid.UUID) -> str:
    """The subject with the complaint's reference, added once."""
    tag = f"[#C-{reference_of(complaint_id)}]"
    return subject if tag.lower() in subject.lower() else f"{subject} {tag}".strip()


def reply_subject(answered: str | None, complaint_id: uuid.UUID, *, fallback: str) -> str:
    """``Re:`` the customer's last subject (or ``fallback`` when they never wrote), with the reference."""
    if not answered:
        return tagged(fallback, complaint_id)
    subject = answered if answered[:3].lower() == "re:" else f"Re: {answered}"
    return tagged(subject, complaint_id)


def thread_after(earlier: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) of a message that follows ``earlier`` Message-IDs, oldest first."""
    if not earlier:
        return None, ()
    return earlier[-1], tuple(earlier[-MAX_REFERENCES:])


def new_message_id(message_uuid: uuid.UUID, address: str) -> str:
    return f"<{message_uuid}@{address.rpartition('@')[2] or 'csm.invalid'}>"


def address_of(value: str | None) -> str | None:
    """The bare address of a header such as From, case-folded; None when there is none."""
    if not value:
        return None
    pairs = [address for _, address in getaddresses([value]) if "@" in address]
    return pairs[0].strip().lower() if pairs else None


def name_of(value: str | None) -> str | None:
    """The display name of a header such as From, if it has one."""
    if not value:
        return None
    names = [name.strip() for name, _ in getaddresses([value]) if name.strip()]
    return names[0][:200] if names else None


def parse(raw: bytes, *, envelope_sender: str | None) -> Inbound:
    """Read a mail. ``envelope_sender`` is SMTP's MAIL FROM ("" or "<>": the null sender), None if unknown."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    found = MESSAGE_ID.search(str(message.get("Message-ID", "")))
    # A mail without a Message-ID is known by its bytes: the same mail sent again is the same mail.
    message_id = found.group(0) if found else f"<{hashlib.sha256(raw).hexdigest()[:40]}@csm.invalid>"
    in_reply_to = MESSAGE_ID.search(str(message.get("In-Reply-To", "")))
    sender = address_of(str(message.get("From", "")))
    return Inbound(
        message_id=message_id,
        sender=sender,
        sender_name=name_of(str(message.get("From", ""))),
        subject=" ".join(str(message.get("Subject", "")).split()),
        body=_text_of(message),
        in_reply_to=in_reply_to.group(0) if in_reply_to else None,
        references=tuple(MESSAGE_ID.findall(str(message.get("References", "")))),
        automatic=automatic(message, sender=sender, envelope_sender=envelope_sender),
        attachments=tuple(_attachments_of(message)),
    )


def automatic(message: EmailMessage, *, sender: str | None, envelope_sender: str | None) -> str | None:
    """Why ``message`` was sent by a machine rather than a person (RFC 3834, RFC 3464), or None.

    Answering such a message is how two auto-responders end up mailing each other for ever.
    """
    if envelope_sender in ("", "<>") or str(message.get("Return-Path", "")).strip() == "<>":
        return "null sender (a bounce)"
    auto_submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in AUTOMATIC_PRECEDENCE:
        return f"Precedence: {precedence}"
    if "X-Autoreply" in message or "X-Autorespond" in message:
        return "an auto-reply (X-Autoreply)"
    if message.get_content_type() == "multipart/report":
        return "a delivery or disposition report"
    if sender is None:
        return "no sender address"
    if sender.partition("@")[0] in BOUNCERS:
        return "a mail system's address"
    return None


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if not isinstance(content, str):
        return ""
    if body.get_content_subtype() == "html":
        reader = _Text()
        reader.feed(content)
        content = "".join(reader.parts)
    return "\n".join(line.rstrip() for line in content.strip().splitlines())


def _attachments_of(message: EmailMessage) -> list[Attachment]:
    found = []
    for part in message.iter_attachments():
        if not isinstance(part, EmailMessage) or part.is_multipart():
            continue
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):
            continue
        found.append(
            Attachment(name=part.get_filename(), media_type=part.get_content_type(), content=content)
        )
    return found
