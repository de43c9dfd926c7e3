"""The departments' names in the reader's language (accounts/data/departments.csv, ADR 0016):
English when the page speaks English, Chinese otherwise, and Chinese where the file has no
English name."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import translation

from accounts.departments import (
    department_name,
    department_names,
    department_short_names,
    known_departments,
    read_departments,
)
from config.languages import in_reader_language, reads_english

CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def test_every_department_has_an_english_full_and_short_name() -> None:
    departments = read_departments()
    assert len(departments) == 22
    for department in departments.values():
        assert department.name_en and department.short_name_en, department.code
        assert not CHINESE.search(department.name_en + department.short_name_en), department


def test_a_department_is_named_in_the_readers_language() -> None:
    water = known_departments()["SWJ"]
    with translation.override("en"):
        assert department_name("SWJ") == "Longhua District Water Affairs Bureau"
        assert water.short_label == "Water Affairs"
    with translation.override("zh-hans"):
        assert department_name("SWJ") == "龙华区水务局"
        assert water.short_label == "水务"
    # Outside a request: LANGUAGE_CODE, Chinese.
    assert department_name("SWJ") == "龙华区水务局"


def test_the_names_keep_the_files_order_in_either_language() -> None:
    with translation.override("en"):
        english = department_names()
    chinese = department_names()
    assert list(english) == list(chinese) == list(known_departments())
    assert list(english)[:3] == ["CGJ", "ZJJ", "SWJ"]
    assert english["CGJ"] == (
        "Longhua District Urban Management and Comprehensive Law Enforcement Bureau"
    )
    assert chinese["CGJ"] == "龙华区城市管理和综合执法局"
    with translation.override("en"):
        assert department_short_names()["CGJ"] == "Urban Management"
    assert department_short_names()["CGJ"] == "城管"


def test_a_department_without_an_english_name_reads_in_chinese(tmp_path: Path) -> None:
    blank = tmp_path / "blank.csv"
    blank.write_text(
        "code,name,short_name,name_en,short_name_en,note\nXX,某某局,某某,,,\n", encoding="utf-8"
    )
    without = tmp_path / "without.csv"  # a file from before the English columns
    without.write_text("code,name,short_name,note\nXX,某某局,某某,\n", encoding="utf-8")
    with translation.override("en"):
        for path in (blank, without):
            department = read_departments(path)["XX"]
            assert (department.label, department.short_label) == ("某某局", "某某")


def test_a_code_that_is_no_department_has_no_name() -> None:
    with translation.override("en"):
        assert department_name("NOPE") == ""


def test_the_rule_reads_the_active_language() -> None:
    with translation.override("en-gb"):
        assert reads_english()
        assert in_reader_language("火灾", "Fire") == "Fire"
        assert in_reader_language("火灾", "") == "火灾"
    with translation.override("zh-hans"):
        assert not reads_english()
        assert in_reader_language("火灾", "Fire") == "火灾"
    with translation.override(None):
        assert in_reader_language("火灾", "Fire") == "火灾"
