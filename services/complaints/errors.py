"""The ways a request to complaints can fail, each with its status and problem type."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from shared.problems import Conflict, Forbidden, NotFound, Unprocessable


class ComplaintNotFound(NotFound):
    slug = "complaint-not-found"

    def __init__(self, complaint_id: object) -> None:
        super().__init__(f"No complaint {complaint_id}.")


class CompensationNotFound(NotFound):
    slug = "compensation-not-found"

    def __init__(self, compensation_id: object) -> None:
        super().__init__(f"No compensation {compensation_id}.")


class TransitionNotAllowed(Conflict):
    """The workflow does not go from the complaint's status to the one asked for."""

    slug = "transition-not-allowed"

    def __init__(self, detail: str, *, allowed: Iterable[str]) -> None:
        super().__init__(detail, allowed=list(allowed))


class ComplaintNotOpen(Conflict):
    """A resolved or closed complaint takes no more work until it is reopened."""

    slug = "complaint-not-open"

    def __init__(self, status: str, refused: str) -> None:
        super().__init__(f"A complaint that is {status} {refused}; reopen it first.", complaint_status=status)


class NoVisitRequired(Conflict):
    slug = "no-visit-required"

    def __init__(self) -> None:
        super().__init__("This complaint needs no on-site visit; set visit_required first.")


class AtTopOfLadder(Conflict):
    slug = "at-top-of-ladder"

    def __init__(self, level: str) -> None:
        super().__init__(f"The complaint is already at the top of the escalation ladder ({level}).")


class NothingToRate(Conflict):
    slug = "nothing-to-rate"

    def __init__(self, status: str) -> None:
        super().__init__(f"A complaint that is {status} has no resolution to rate yet.")


class AlreadyRated(Conflict):
    slug = "already-rated"

    def __init__(self) -> None:
        super().__init__("This resolution was already rated.")


class CompensationPending(Conflict):
    slug = "compensation-pending"

    def __init__(self) -> None:
        super().__init__("A compensation on this complaint awaits approval; decide it before resolving.")


class CompensationDecided(Conflict):
    slug = "compensation-decided"

    def __init__(self, status: str) -> None:
        super().__init__(f"The compensation was already {status}.")


class BeyondAuthority(Forbidden):
    """Granting (or refusing) this much compensation needs a higher role."""

    slug = "beyond-authority"

    def __init__(self, amount: Decimal, currency: str, *, needs: str | None, has: str) -> None:
        super().__init__(
            f"Deciding a compensation of {amount} {currency} needs the role {needs} or higher; "
            f"the token has {has}.",
            requires_role=needs,
        )


class UnknownRootCause(Unprocessable):
    slug = "unknown-root-cause"

    def __init__(self, known: Iterable[str]) -> None:
        super().__init__(f"Unknown root cause; the policy lists: {', '.join(known)}.", field="root_cause")


class WrongCurrency(Unprocessable):
    slug = "wrong-currency"

    def __init__(self, currency: str) -> None:
        super().__init__(f"Compensation is in the policy's currency, {currency}.", field="currency")


class NotYourComplaint(Forbidden):
    """An agent acts on the complaints they own or are assigned; supervisors and above on any."""

    slug = "not-your-complaint"

    def __init__(self) -> None:
        super().__init__(
            "An agent may act only on a complaint they own or are assigned; ask a supervisor, "
            "or to be assigned."
        )


class PersonNotFound(NotFound):
    slug = "person-not-found"

    def __init__(self, subject: str) -> None:
        super().__init__(f"No one with the subject {subject!r} is in the staff directory.")


class TeamNotFound(NotFound):
    slug = "team-not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"No team {name!r} is in the staff directory.")


class UnknownTeam(Unprocessable):
    slug = "unknown-team"

    def __init__(self, name: str, *, field: str = "teams") -> None:
        super().__init__(f"There is no team {name!r}; create it first (PUT /teams/{name}).", field=field)


class UnknownPerson(Unprocessable):
    slug = "unknown-person"

    def __init__(self, subject: str, *, field: str) -> None:
        super().__init__(f"No one with the subject {subject!r} is in the staff directory.", field=field)


class PersonInactive(Conflict):
    """Someone who has left, or is away for good, takes no new work."""

    slug = "person-inactive"

    def __init__(self, subject: str) -> None:
        super().__init__(f"{subject} is marked inactive in the staff directory and takes no new work.")


class TeamUnavailable(Conflict):
    slug = "team-unavailable"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Nobody in the team {name!r} is on duty with room for another complaint; "
            "assign a person, or raise someone's capacity.",
            team=name,
        )


class MacroNotFound(NotFound):
    slug = "macro-not-found"

    def __init__(self, macro_id: object) -> None:
        super().__init__(f"No canned reply {macro_id}.")


class MacroNameTaken(Conflict):
    slug = "macro-name-taken"

    def __init__(self, name: str) -> None:
        super().__init__(f"A canned reply named {name!r} exists already.")


class MacroDoesNotRender(Unprocessable):
    """A canned reply whose text fails to compile or names a placeholder that does not exist."""

    slug = "macro-does-not-render"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail, field=field)


class MailNotInTriage(NotFound):
    """No mail with this id waits in the triage list (it may have been placed already)."""

    slug = "mail-not-in-triage"

    def __init__(self, message_id: object) -> None:
        super().__init__(f"No mail {message_id} waits in the triage list.")


class AttachmentNotFound(NotFound):
    slug = "attachment-not-found"

    def __init__(self, attachment_id: object) -> None:
        super().__init__(f"No attachment {attachment_id}.")
