"""How mail reaches the complaints service: an SMTP listener for the service mailbox.

The listener is aiosmtpd's SMTP protocol served on the service's own event loop, so a mail is
filed in the database before the sender hears 250: a mail the sender was told we have is never
lost, and one we could not file is answered 451 and sent again by the sender's server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import IntegrityError

from services.complaints import mail, mail_intake
from services.complaints.settings import ComplaintsSettings
from shared.clock import Clock
from shared.db import Database
from shared.service import Runtime, Worker

log = logging.getLogger("csm.complaints.mail")


async def file_mail(
    raw: bytes, *, envelope_sender: str | None, db: Database, clock: Clock, settings: ComplaintsSettings
) -> mail_intake.Received:
    """File one mail in its own transaction; a repeat delivered at the same moment is a repeat."""
    try:
        async with db.unit_of_work() as session:
            received = await mail_intake.receive(
                raw, session=session, envelope_sender=envelope_sender, settings=settings, now=clock.now()
            )
    except IntegrityError:
        # Two deliveries of one Message-ID raced, and the other one's commit stands; anything
        # else is a failure to file, which the sender must hear about (451) and retry.
        async with db.read() as session:
            if not await mail_intake.stored(
                mail.parse(raw, envelope_sender=None).message_id, session=session
            ):
                raise
        return mail_intake.Received(mail_intake.Outcome.repeat)
    log.info("mail %s: %s", received.outcome.value, received.complaint_id or received.reason or "")
    return received


class MailHandler:
    """aiosmtpd's handler: accepts mail for any address here and files it before answering."""

    def __init__(self, *, db: Database, clock: Clock, settings: ComplaintsSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            await file_mail(
                raw,
                envelope_sender=envelope.mail_from,
                db=self.db,
                clock=self.clock,
                settings=self.settings,
            )
        except Exception:  # the sender's server keeps the mail and tries again later
            log.exception("filing a mail failed")
            return "451 4.3.0 Cannot file the message now; try again later"
        return "250 2.0.0 Filed"


class MailListener:
    def __init__(self, *, db: Database, clock: Clock, settings: ComplaintsSettings) -> None:
        self.settings = settings
        self.handler = MailHandler(db=db, clock=clock, settings=settings)

    def _protocol(self) -> Any:
        return SMTP(
            self.handler,
            data_size_limit=self.settings.mail_max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=self.settings.mail_address.rpartition("@")[2] or None,
            ident="csm complaints",
        )

    async def run(self) -> None:
        port = self.settings.mail_listen_port
        assert port is not None
        server = await asyncio.get_running_loop().create_server(
            self._protocol, host=self.settings.mail_listen_host, port=port
        )
        log.info("listening for mail on %s:%d", self.settings.mail_listen_host, port)
        try:
            await server.serve_forever()
        finally:
            server.close()
            await server.wait_closed()


def workers(runtime: Runtime) -> list[Worker]:
    settings = runtime.settings
    assert isinstance(settings, ComplaintsSettings)
    found = []
    if settings.mail_listen_port is not None:
        listener = MailListener(db=runtime.db, clock=runtime.clock, settings=settings)
        found.append(Worker("mail-listener", listener.run))
    return found
