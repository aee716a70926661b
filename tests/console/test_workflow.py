"""The console offers the moves and choices the services take, and no others."""

from __future__ import annotations

from pathlib import Path

import services.console
from services.complaints.workflow import OPEN, TRANSITIONS
from services.console import workflow
from services.console.customer_actions import (
    CONSENT_CHANNELS,
    CONSENT_PURPOSES,
    CONTACT_ROLES,
    INTERACTION_KINDS,
)
from services.customer.record_schemas import InteractionKind
from services.customer.schemas import ContactRole, Standing
from shared.events.customer import ContactChannel, Purpose


def test_the_pages_moves_are_the_services_workflow() -> None:
    assert {
        status.value: tuple(to.value for to in moves) for status, moves in TRANSITIONS.items()
    } == workflow.NEXT
    assert {status.value for status in OPEN} == workflow.OPEN


def test_resolving_and_reopening_have_their_own_forms_and_the_rest_are_buttons() -> None:
    assert workflow.simple_moves("in_progress") == ("waiting_on_customer",)
    assert workflow.simple_moves("resolved") == ("closed",)
    assert workflow.may_resolve("acknowledged") and not workflow.may_resolve("waiting_on_customer")
    assert workflow.may_reopen("closed") and not workflow.may_reopen("in_progress")


def test_the_interaction_kinds_offered_are_the_customer_services() -> None:
    assert tuple(kind.value for kind in InteractionKind) == INTERACTION_KINDS


def test_the_contact_roles_and_consent_choices_offered_are_the_customer_services() -> None:
    assert tuple(role.value for role in ContactRole) == CONTACT_ROLES
    assert tuple(channel.value for channel in ContactChannel) == CONSENT_CHANNELS
    assert tuple(purpose.value for purpose in Purpose) == CONSENT_PURPOSES


def test_the_outlook_the_customer_screen_shows_is_in_the_customer_services_360_view() -> None:
    """P(alive) and the expected purchases, under the names customer.html reads them by."""
    template = (Path(services.console.__file__).parent / "templates" / "customer.html").read_text()
    for field in ("probability_alive", "expected_purchases", "expected_purchases_days"):
        assert field in Standing.model_fields
        assert f"s.{field}" in template
