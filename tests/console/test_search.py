"""What the person types in the customer search, as the customer service's search takes it."""

from __future__ import annotations

from services.console.pages import search_by


def test_a_phone_number_as_people_write_it_is_searched_in_e164() -> None:
    assert search_by("139 1234 5678", region="CN") == ("phone", "+8613912345678")
    assert search_by("+86 139-1234-5678", region="US") == ("phone", "+8613912345678")


def test_an_address_is_searched_as_an_email_and_anything_else_as_the_start_of_a_name() -> None:
    assert search_by("zhao.min@example.com", region="CN") == ("email", "zhao.min@example.com")
    assert search_by("Zhao", region="CN") == ("name", "Zhao")
    assert search_by("赵敏", region="CN") == ("name", "赵敏")
