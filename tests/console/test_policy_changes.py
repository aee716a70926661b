"""What a candidate complaint policy changes, as the console lists it before a manager applies it."""

from __future__ import annotations

from services.console.policy_changes import Change, changes


def test_only_the_leaves_that_differ_are_listed_by_their_path() -> None:
    before = {"targets": {"gold": {"response_hours": 4, "resolution_hours": 48}}, "limits": [100, 200]}
    after = {"targets": {"gold": {"response_hours": 2, "resolution_hours": 48}}, "limits": [100, 300]}
    assert changes(before, after) == [
        Change("targets.gold.response_hours", "4", "2"),
        Change("limits[1]", "200", "300"),
    ]


def test_added_and_removed_fields_and_a_list_of_another_length_are_shown_whole() -> None:
    before = {"ladder": [{"after_hours": 4}], "old": True}
    after = {"ladder": [{"after_hours": 4}, {"after_hours": 8}], "new": "x"}
    assert changes(before, after) == [
        Change("ladder", '[{"after_hours": 4}]', '[{"after_hours": 4}, {"after_hours": 8}]'),
        Change("old", "true", None),
        Change("new", None, '"x"'),
    ]


def test_the_same_policy_changes_nothing() -> None:
    policy = {"targets": {"gold": {"response_hours": 4}}, "calendar": ["mon", "tue"]}
    assert changes(policy, {**policy}) == []
