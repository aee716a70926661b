"""The pure rules: normalising what people type, money, likeness of records, redaction, ids."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.customer import profile_rules
from services.customer.erasure import fill_blanks
from services.customer.ids import uuid7
from services.customer.ledger import RefundRefused, refund_amount
from services.customer.matching import Record, likeness, name_similarity
from services.customer.redaction import ERASED_NAME, redact
from tests.shared.event_examples import FIELDS, example


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+86 138 1234 5678", "+8613812345678"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (212) 555-0100", "+12125550100"),
    ],
)
def test_phones_are_kept_in_e164(typed: str, stored: str) -> None:
    assert profile_rules.e164(typed) == stored


@pytest.mark.parametrize("typed", ["13812345678", "+86 123", "phone me", "+999 1234567"])
def test_a_phone_that_is_not_an_international_number_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        profile_rules.e164(typed)


def test_email_addresses_are_checked_and_lower_cased() -> None:
    assert profile_rules.email_address(" Li.Na@Example.COM ") == "li.na@example.com"
    for bad in ("li.na", "li@", "@example.com", "li na@example.com"):
        with pytest.raises(ValueError):
            profile_rules.email_address(bad)


@pytest.mark.parametrize("tag", ["zh-CN", "en-GB", "zh-Hant-TW", "fr", "de-DE"])
def test_known_locales_are_accepted(tag: str) -> None:
    assert profile_rules.locale_tag(tag) == tag


@pytest.mark.parametrize("tag", ["chinese", "zh_CN", "xx-CN", "zh-XX", "ZH-cn", "en-"])
def test_unknown_or_malformed_locales_are_refused(tag: str) -> None:
    with pytest.raises(ValueError):
        profile_rules.locale_tag(tag)


def test_time_zones_must_be_iana_names() -> None:
    assert profile_rules.time_zone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ValueError):
        profile_rules.time_zone("CET+1")


@given(st.text(min_size=1, max_size=50))
def test_the_name_key_ignores_case_width_and_spacing(name: str) -> None:
    key = profile_rules.name_key(name)
    assert key == profile_rules.name_key(name.upper().lower()) or key == profile_rules.name_key(
        name.casefold()
    )
    assert key == profile_rules.name_key(f"  {name}  ")
    assert "  " not in key


def test_the_name_key_folds_full_width_letters() -> None:
    # Full-width letters, as typed on a Chinese keyboard: the point of the test.
    assert profile_rules.name_key("ＬＩ　Ｎａ") == profile_rules.name_key("li na") == "li na"  # noqa: RUF001


def test_tags_are_trimmed_lower_case_labels() -> None:
    assert profile_rules.tag("  VIP Customer ") == "vip customer"
    for bad in ("", "x" * 51, "<script>"):
        with pytest.raises(ValueError):
            profile_rules.tag(bad)


@given(
    paid=st.integers(1, 10**9),
    refunded=st.integers(0, 10**9),
    requested=st.none() | st.integers(-10, 2 * 10**9),
)
def test_a_refund_never_takes_the_total_beyond_what_was_paid(
    paid: int, refunded: int, requested: int | None
) -> None:
    try:
        amount = refund_amount(paid=paid, refunded=refunded, requested=requested)
    except RefundRefused:
        assert refunded >= paid or (requested is not None and (requested <= 0 or requested > paid - refunded))
        return
    assert 0 < amount <= paid - refunded
    assert refunded + amount <= paid
    assert amount == (paid - refunded if requested is None else requested)


def test_names_that_differ_only_in_word_order_or_a_letter_are_similar() -> None:
    assert name_similarity("li na", "na li") == pytest.approx(1.0)
    assert name_similarity("zhang wei", "zhang wie") > 0.85
    assert name_similarity("zhang wei", "peter smith") < 0.5
    assert name_similarity("", "li") == 0.0


@given(st.text(max_size=20), st.text(max_size=20))
def test_name_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    assert 0.0 <= name_similarity(a, b) <= 1.0
    assert name_similarity(a, b) == name_similarity(b, a)


def test_name_similarity_does_not_depend_on_which_name_is_first() -> None:
    # found by the property above: difflib's ratio is 0.67 one way and 0.33 the other
    assert name_similarity("12", "2102") == name_similarity("2102", "12") == pytest.approx(2 / 3)


def test_a_shared_phone_or_email_weighs_more_than_a_similar_name() -> None:
    me = Record("li na", "li@example.com", frozenset({"+8613812345678"}))
    namesake = Record("li na")
    same_phone = Record("wang fang", None, frozenset({"+8613812345678"}))
    same_everything = Record("li na", "li@example.com", frozenset({"+8613812345678"}))
    stranger = Record("peter smith", "p@example.com")
    scores = {
        name: likeness(me, other, name_threshold=0.85)
        for name, other in {
            "namesake": namesake,
            "phone": same_phone,
            "all": same_everything,
            "stranger": stranger,
        }.items()
    }
    assert scores["stranger"] == (0.0, [])
    assert scores["namesake"][1] == ["same name"] and scores["phone"][1] == ["same phone number"]
    assert scores["namesake"][0] < scores["phone"][0] < scores["all"][0] <= 1.0


def test_merging_fills_only_blanks_and_says_what_it_could_not_keep() -> None:
    survivor = {
        "kind": "individual",
        "email": "li@example.com",
        "phone": "+8613812345678",
        "backup_phone": None,
        "address": None,
        "tags": ["vip"],
        "industry": None,
    }
    duplicate = {
        "kind": "individual",
        "email": "old@example.com",
        "phone": "+8613900000000",
        "backup_phone": None,
        "address": "1 Tea Road",
        "tags": ["tea", "vip"],
        "industry": "retail",
    }
    taken, lost = fill_blanks(survivor, duplicate)
    assert taken == {"address": "1 Tea Road", "backup_phone": "+8613900000000", "tags": ["vip", "tea"]}
    assert lost == ["email"]


@pytest.mark.parametrize(
    "event_type", sorted(t for t in FIELDS if t.startswith("csm.customer") or t.startswith("csm.interaction"))
)
def test_redaction_leaves_no_personal_data_in_an_event(event_type: str) -> None:
    data = example(event_type).model_dump(mode="json")
    redacted = redact(event_type, data)
    text = str(redacted)
    for personal in ("Li Na", "li.na@example.com", "+8613812345678", "satisfied", "gardening", "web form"):
        assert personal not in text
    if "profile" in data:
        assert redacted["profile"]["name"] == ERASED_NAME and redacted["profile"]["status"] == "erased"
    assert redacted["customer_id"] == data["customer_id"]


def test_ids_are_time_ordered_version_7_uuids() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
    went_back = uuid7(now_ms=1)  # the system clock stepping back must not break the order
    assert went_back > ids[-1]
    assert uuid7() > went_back
