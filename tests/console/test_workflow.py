"""The console offers the moves and choices the services take, and no others."""

from __future__ import annotations

from services.complaints.workflow import OPEN, TRANSITIONS
from services.console import workflow
from services.console.customer_actions import INTERACTION_KINDS
from services.customer.record_schemas import InteractionKind


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
