"""The console speaks Chinese and English: the same words in both, and the person's choice wins."""

from __future__ import annotations

import re
from pathlib import Path

import services.console
from services.console.i18n import choose, translator, value_namer
from services.console.policies import REVIEWED
from services.console.words_en import ENGLISH
from services.console.words_zh import CHINESE


def test_both_catalogues_have_the_same_words() -> None:
    assert set(CHINESE) == set(ENGLISH)
    assert all(value.strip() for value in [*CHINESE.values(), *ENGLISH.values()])


def test_every_word_the_templates_use_is_in_the_catalogue() -> None:
    templates = Path(services.console.__file__).parent / "templates"
    used = set()
    for template in templates.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']\s*\)""", template.read_text()))
    assert used, "the pattern finds the templates' words"
    assert used <= set(ENGLISH), used - set(ENGLISH)


def test_the_choice_stored_in_the_session_wins_over_the_browser() -> None:
    assert choose("en", "zh-CN,zh;q=0.9") == "en"
    assert choose("zh", "en-US,en;q=0.9") == "zh"


def test_without_a_choice_the_browser_language_decides_and_chinese_is_the_default() -> None:
    assert choose(None, "en-GB,en;q=0.8") == "en"
    assert choose(None, "de-DE") == "zh"
    assert choose("fr", None) == "zh"


def test_a_translator_speaks_its_language() -> None:
    assert translator("zh")("nav.work") == "我的工作"
    assert translator("en")("nav.work") == "My work"


def test_domain_values_are_named_in_the_language_and_unknown_ones_pass_as_they_are() -> None:
    assert value_namer("zh")("status", "waiting_on_customer") == "等待客户"
    assert value_namer("en")("status", "waiting_on_customer") == "waiting on the customer"
    assert value_namer("zh")("status", "something_new") == "something_new"
    assert value_namer("zh")("tier", None) == ""


def test_each_reviewed_policy_has_its_words() -> None:
    """The policies page names them by kind (``t("policy." ~ kind)``), out of the templates' pattern."""
    for kind in REVIEWED:
        assert {f"policy.{kind}", f"policy.{kind}_document"} <= set(ENGLISH)
