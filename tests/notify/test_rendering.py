"""A batch's renderings, made once per distinct input, are the renderings ``templates.render`` makes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify.rendering import Renderings
from shared import templates

SOURCES = [
    "{{ announcement.title }}",
    "{{ customer.name }}，您好：{{ announcement.body }} {{ offer }}",
    "{% if customer.key_account %}重要客户{% else %}{{ customer.tier }}{% endif %}",
    "{{ customer.name | default('客户') }} {{ links.preferences }}",
    "{{ event.at | localtime }} {{ complaint.promise | duration }}",
    "{% for n in range(3) %}{{ n }}{% endfor %}{{ offer }}",
]

names = st.one_of(st.none(), st.text(max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0, 1.5]), names)


def context(
    name: Any, tier: Any, key_account: Any, offer: Any, zone: str, language: str, promise: Any
) -> dict[str, Any]:
    return {
        "customer": {"name": name, "tier": tier, "key_account": key_account},
        "announcement": {"title": "新茶上市", "body": "今年的明前龙井到了。"},
        "offer": offer,
        "links": {"preferences": "https://example.com/preferences"},
        "event": {"at": "2026-05-01T02:00:00+00:00"},
        "complaint": {"promise": promise},
        "time_zone": zone,
        "language": language,
    }


contexts = st.builds(
    context,
    names,
    scalars,
    scalars,
    scalars,
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "UTC"]),
    st.sampled_from(["zh", "en"]),
    st.sampled_from([None, 60, 7200.0, 90000]),
)


def rendered_or_problem(render: Any, source: str, values: dict[str, Any]) -> str:
    try:
        return str(render(source, values))
    except templates.TemplateProblem as problem:
        return f"problem: {problem}"


@given(st.lists(st.tuples(st.sampled_from(SOURCES), contexts), min_size=1, max_size=12))
def test_a_shared_rendering_is_the_one_each_recipient_would_get(
    batch: list[tuple[str, dict[str, Any]]],
) -> None:
    renderings = Renderings()
    for source, values in batch:
        assert rendered_or_problem(renderings.render, source, values) == rendered_or_problem(
            templates.render, source, values
        )


@pytest.mark.parametrize(
    ("first", "second"),
    [(True, 1), (1, 1.0), (0, False), (None, "None"), ("1", 1)],
)
def test_values_that_are_equal_keys_but_render_differently_are_rendered_each(first: Any, second: Any) -> None:
    renderings = Renderings()
    assert renderings.render("{{ offer }}", {"offer": first}) == str(first)
    assert renderings.render("{{ offer }}", {"offer": second}) == str(second)


def test_the_time_zone_a_filter_reads_is_part_of_what_a_rendering_depends_on() -> None:
    renderings = Renderings()
    moment = datetime(2026, 5, 1, 2, 0, tzinfo=UTC).isoformat()
    source = "{{ at | localtime('%H:%M') }}"
    assert renderings.render(source, {"at": moment, "time_zone": "Asia/Shanghai"}) == "10:00"
    assert renderings.render(source, {"at": moment, "time_zone": "Europe/Berlin"}) == "04:00"


def test_a_value_with_no_exact_key_is_rendered_each_time() -> None:
    renderings = Renderings()
    at = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    source = "{{ at | localtime('%H:%M') }}"
    assert renderings.render(source, {"at": at, "time_zone": "UTC"}) == "02:00"
    assert renderings.render(source, {"at": at.replace(hour=3), "time_zone": "UTC"}) == "03:00"
