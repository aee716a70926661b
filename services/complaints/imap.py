"""IMAP polling of the company's service mailbox (production), with aioimaplib.

Each poll reads the folder's unseen messages without marking them (``BODY.PEEK[]``), files each
one as the SMTP listener does, and only then marks it seen. A poller that dies between the two
reads the message again next time; its Message-ID makes the second filing a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import aioimaplib

from services.complaints.mail_listener import file_mail
from services.complaints.settings import ComplaintsSettings
from shared.clock import Clock
from shared.db import Database
from shared.service import Runtime, Worker

log = logging.getLogger("csm.complaints.imap")


class MailboxUnavailable(Exception):
    """The IMAP server refused a step (login, select, search); the reason is its answer."""


def _ok(response: aioimaplib.Response, step: str) -> aioimaplib.Response:
    if response.result != "OK":
        said = b" ".join(line for line in response.lines if isinstance(line, bytes))[:200]
        raise MailboxUnavailable(f"{step}: {response.result} {said.decode(errors='replace')}")
    return response


class MailboxPoller:
    def __init__(self, *, db: Database, clock: Clock, settings: ComplaintsSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    def _client(self) -> aioimaplib.IMAP4:
        s = self.settings
        assert s.imap_host is not None
        if s.imap_security == "tls":
            return aioimaplib.IMAP4_SSL(
                host=s.imap_host,
                port=s.imap_port,
                timeout=s.imap_timeout_seconds,
                ssl_context=ssl.create_default_context(),
            )
        return aioimaplib.IMAP4(host=s.imap_host, port=s.imap_port, timeout=s.imap_timeout_seconds)

    async def poll_once(self) -> int:
        """File every unseen message of the folder; returns how many were read."""
        s = self.settings
        client = self._client()
        await client.wait_hello_from_server()
        try:
            password = s.imap_password.get_secret_value() if s.imap_password else ""
            _ok(await client.login(s.imap_username or "", password), "login")
            _ok(await client.select(s.imap_folder), "select")
            found = _ok(await client.uid_search("UNSEEN"), "search")
            uids = [uid for line in found.lines[:1] for uid in bytes(line).decode().split()]
            for uid in uids:
                fetched = _ok(await client.uid("fetch", uid, "(BODY.PEEK[])"), "fetch")
                raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), None)
                if raw is None:
                    continue  # expunged meanwhile
                await file_mail(raw, envelope_sender=None, db=self.db, clock=self.clock, settings=s)
                _ok(await client.uid("store", uid, "+FLAGS.SILENT (\\Seen)"), "store")
            return len(uids)
        finally:
            with contextlib.suppress(OSError, TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout):
                await client.logout()

    async def run(self) -> None:
        while True:
            try:
                read = await self.poll_once()
                if read:
                    log.info("imap: read %d messages", read)
            except (
                OSError,
                TimeoutError,
                MailboxUnavailable,
                aioimaplib.Abort,
                aioimaplib.CommandTimeout,
            ) as error:
                # The mailbox is away or refuses us: try again at the next poll, visibly.
                log.warning("imap poll of %s failed: %s", self.settings.imap_host, error)
            await asyncio.sleep(self.settings.imap_poll_seconds)


def workers(runtime: Runtime) -> list[Worker]:
    settings = runtime.settings
    assert isinstance(settings, ComplaintsSettings)
    if settings.imap_host is None:
        return []
    poller = MailboxPoller(db=runtime.db, clock=runtime.clock, settings=settings)
    return [Worker("mail-imap", poller.run)]
