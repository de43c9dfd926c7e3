"""Departments and event categories on the pages in the reader's language (ADR 0016): an
English reader sees "Exposed garbage" and "Longhua District Urban Management and Comprehensive
Law Enforcement Bureau" on the case page, the queue and its filter, the dispatch forms, the
department's console, the intake form, the phone and the export; a Chinese reader sees them
as before; searches find a category by its English words too. The browser side of the pickers'
searches is in tests/e2e (test_consoles.py, test_mobile.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from django.test import Client

from incidents.models import Incident
from incidents.services import incident_dispatch, incident_register
from tests.incidents.cases import COMMUNITY, FIRE, STREET, Cast, make_cast, report
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

STREET_URL = f"/command/street/{STREET}/"
COMMUNITY_URL = f"/command/community/{COMMUNITY}/"
CGJ_EN = "Longhua District Urban Management and Comprehensive Law Enforcement Bureau"
CGJ_ZH = "龙华区城市管理和综合执法局"


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _client(user: Any, language: str) -> Client:
    """A signed-in browser that chose `language` with the header's switcher."""
    client = Client()
    client.force_login(user)
    client.post("/i18n/setlang/", {"language": language, "next": "/"})
    return client


def _html(user: Any, url: str, language: str) -> str:
    response = _client(user, language).get(url)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _json_script(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"#{element_id} is embedded"
    return json.loads(match.group(1))


def _dispatched(people: Cast) -> Incident:
    case = report()
    incident_register(incident=case, by=people.street)
    return incident_dispatch(incident=case, by=people.street, department_code="CGJ")


def test_the_case_page_names_its_category_and_department_in_the_readers_language(
    people: Cast,
) -> None:
    case = _dispatched(people)
    url = f"/command/cases/{case.number}/"

    english = _html(people.street, url, "en")
    assert f"<title>{case.number} · Exposed garbage · CityOps</title>" in english
    assert "City appearance and environment ·" in english
    assert '<span class="category-code">06010</span> Exposed garbage' in english
    assert f"<dd>CGJ {CGJ_EN}" in english
    assert "暴露垃圾" not in english and CGJ_ZH not in english

    chinese = _html(people.street, url, "zh-hans")
    assert '<span class="category-code">06010</span> 暴露垃圾' in chinese
    assert f"<dd>CGJ {CGJ_ZH}" in chinese
    assert "Exposed garbage" not in chinese and CGJ_EN not in chinese


def test_the_dispatch_forms_offer_the_departments_in_the_readers_language(people: Cast) -> None:
    case = report()
    incident_register(incident=case, by=people.street)
    url = f"/command/cases/{case.number}/"

    english = _html(people.street, url, "en")
    assert '<option value="SWJ">SWJ · Longhua District Water Affairs Bureau</option>' in english
    assert f'<option value="CGJ" selected>CGJ · {CGJ_EN}</option>' in english
    # The queue's batch dispatch too.
    queue = _html(people.street, STREET_URL, "en")
    assert '<option value="SWJ">SWJ · Longhua District Water Affairs Bureau</option>' in queue

    chinese = _html(people.street, url, "zh-hans")
    assert '<option value="SWJ">SWJ · 龙华区水务局</option>' in chinese


def test_the_queue_and_its_filter_name_categories_in_the_readers_language(people: Cast) -> None:
    _dispatched(people)
    url = f"{STREET_URL}?status=all"

    english = _html(people.street, url, "en")
    assert '<span class="category-code">06010</span> Exposed garbage' in english
    # The department's column: its short name, the code and full name in the title.
    assert f'<span title="CGJ {CGJ_EN}">Urban Management</span>' in english
    assert '<optgroup label="06 City appearance and environment">' in english
    assert '<option value="06010">06010 Exposed garbage</option>' in english
    assert '<option value="90001">90001 Fire</option>' in english

    chinese = _html(people.street, url, "zh-hans")
    assert '<span class="category-code">06010</span> 暴露垃圾' in chinese
    assert f'<span title="CGJ {CGJ_ZH}">城管</span>' in chinese
    assert '<optgroup label="06 市容环境类">' in chinese
    assert '<option value="06010">06010 暴露垃圾</option>' in chinese


def test_the_department_console_is_headed_with_the_departments_name(people: Cast) -> None:
    _dispatched(people)
    english = _html(people.handler, "/command/department/", "en")
    assert f"<h1>{CGJ_EN}</h1>" in english
    assert "Exposed garbage" in english
    assert f"<h1>{CGJ_ZH}</h1>" in _html(people.handler, "/command/department/", "zh-hans")


def test_a_queue_search_finds_a_case_by_the_english_words_of_its_category(people: Cast) -> None:
    rubbish = report(description="三联路口")
    report(code=FIRE, description="三联路口", severity="IV")
    for language in ("en", "zh-hans"):
        for words in ("exposed GARBAGE", "暴露垃圾"):
            html = _html(people.street, f"{STREET_URL}?q={words}", language)
            assert re.findall(r'<tr data-number="([^"]+)"', html) == [rubbish.number], words


def test_the_intake_form_names_categories_in_english_and_searches_the_chinese_too(
    people: Cast,
) -> None:
    english = _html(people.district, "/command/intake/", "en")
    assert (
        '<option value="06010" data-major="City appearance and environment" '
        'data-aliases="暴露垃圾 市容环境类">06010 Exposed garbage</option>'
    ) in english
    assert '<optgroup label="90 Emergencies">' in english

    chinese = _html(people.district, "/command/intake/", "zh-hans")
    assert '<option value="06010" data-major="市容环境类">06010 暴露垃圾</option>' in chinese


def test_the_phones_picker_names_categories_in_english_with_the_chinese_for_search(
    people: Cast,
) -> None:
    picker = _json_script(_html(people.grid_worker, "/m/", "en"), "m-picker")
    rubbish = next(c for c in picker["categories"] if c["code"] == "06010")
    assert rubbish == {"code": "06010", "name": "Exposed garbage", "major": "06", "zh": "暴露垃圾"}
    assert picker["majors"]["06"] == {
        "name": "City appearance and environment",
        "kind": "event",
        "zh": "市容环境类",
    }
    cover = next(c for c in picker["categories"] if c["code"] == "01001")
    assert cover["name"] == "Water supply manhole cover problem"

    picker = _json_script(_html(people.grid_worker, "/m/", "zh-hans"), "m-picker")
    rubbish = next(c for c in picker["categories"] if c["code"] == "06010")
    assert rubbish == {"code": "06010", "name": "暴露垃圾", "major": "06"}
    assert picker["majors"]["06"] == {"name": "市容环境类", "kind": "event"}


def test_the_phones_tasks_name_the_category_and_departments_in_english(people: Cast) -> None:
    dispatched = _dispatched(people)
    tasks = _html(people.handler, "/m/tasks/", "en")
    assert '<strong class="m-task-title">Exposed garbage</strong>' in tasks
    task = _html(people.handler, f"/m/tasks/{dispatched.number}/", "en")
    assert '<h1 class="m-h1">Exposed garbage <small class="m-code">06010</small></h1>' in task
    assert f"<dd>{CGJ_EN} (CGJ)</dd>" in task
    chinese = _html(people.handler, f"/m/tasks/{dispatched.number}/", "zh-hans")
    assert f"<dd>{CGJ_ZH} (CGJ)</dd>" in chinese

    # The community station dispatches from the phone: the departments by their short names in
    # the select (a full English name does not fit a 360 px select, which cannot wrap), the
    # chosen one's full name and code under it.
    registered = report()
    incident_register(incident=registered, by=people.community)
    url = f"/m/tasks/{registered.number}/"
    english = _html(people.community, url, "en")
    assert (
        '<option value="SWJ" title="Longhua District Water Affairs Bureau (SWJ)">Water Affairs'
        "</option>"
    ) in english
    assert f'data-role="department-name">{CGJ_EN} (CGJ)</p>' in english
    chinese = _html(people.community, url, "zh-hans")
    assert '<option value="SWJ" title="龙华区水务局 (SWJ)">水务</option>' in chinese
    assert f'data-role="department-name">{CGJ_ZH} (CGJ)</p>' in chinese
    assert '<h1 class="m-h1">暴露垃圾 <small class="m-code">06010</small></h1>' in chinese


def _export(user: Any, language: str) -> list[dict[str, str]]:
    response = _client(user, language).get(f"{STREET_URL}?status=all&export=csv")
    assert response.status_code == 200, response.content[:500]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8")[1:])))


def test_the_export_names_categories_and_departments_as_its_page_does(people: Cast) -> None:
    _dispatched(people)
    (row,) = _export(people.street, "en")
    assert (row["Category name"], row["Department"]) == ("Exposed garbage", f"CGJ {CGJ_EN}")
    (row,) = _export(people.street, "zh-hans")
    assert (row["事项名称"], row["处置部门"]) == ("暴露垃圾", f"CGJ {CGJ_ZH}")
