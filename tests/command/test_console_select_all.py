"""选择全部 (批量办理 on every case a queue's filters match): the console answers ?fragment=numbers
with the numbers of every matching case, on every page, in the queue's order, each with its tick
box's summary — from the same queryset as the queue, so the same filters and the same scope;
over SELECT_ALL_MAX it says how many and gives none; a bad filter is a 400 naming it.

The page's side (the offer, the chunks, 停止) is tests/e2e/test_batch_e2e.py.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from command.views import consoles
from incidents.api.batch import BATCH_MAX
from incidents.services import incident_dispatch, incident_register, incident_reject
from tests.incidents.cases import (
    COMMUNITY,
    FIRE,
    OTHER_STREET,
    OTHER_STREET_GRID,
    STREET,
    Cast,
    make_cast,
    report,
)
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

STREET_URL = f"/command/street/{STREET}/"
FLOOD = "90002"  # 内涝积水


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _numbers(client: Client, url: str, query: str = "") -> Any:
    response = client.get(f"{url}?{query}&fragment=numbers")
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def _listed(answer: dict[str, Any]) -> list[str]:
    return [case["number"] for case in answer["cases"]]


def _page_numbers(client: Client, url: str, query: str) -> list[str]:
    page = client.get(f"{url}?{query}").content.decode()
    return re.findall(r'<tr data-number="([^"]+)"', page)


def test_the_numbers_are_every_case_the_filters_match_on_every_page_in_the_queues_order(
    people: Cast,
) -> None:
    floods = [report(code=FLOOD, description=f"下穿隧道积水 {n}") for n in range(23)]
    registered = floods.pop()
    incident_register(incident=registered, by=people.street)
    fire = report(code=FIRE, description="厨房起火")
    client = _client(people.street)
    query = f"status=reported&category={FLOOD}"

    status, answer = _numbers(client, STREET_URL, query)
    assert status == 200
    assert answer["total"] == 22 and answer["too_many"] is False
    assert answer["max"] == consoles.SELECT_ALL_MAX
    # Two pages of twenty on screen; every one of them here, in the queue's order.
    pages = _page_numbers(client, STREET_URL, query) + _page_numbers(
        client, STREET_URL, f"{query}&page=2"
    )
    assert len(pages) == 22
    assert _listed(answer) == pages
    assert set(_listed(answer)) == {case.number for case in floods}
    assert registered.number not in _listed(answer) and fire.number not in _listed(answer)
    # The page asked for does not narrow it, the order does.
    assert _numbers(client, STREET_URL, f"{query}&page=2")[1] == answer
    newest = _numbers(client, STREET_URL, f"{query}&order=newest")[1]
    assert _listed(newest) == [case.number for case in reversed(floods)]
    # The other filters do: the search box, the status.
    assert _listed(_numbers(client, STREET_URL, "q=下穿隧道积水 7")[1]) == [floods[7].number]
    assert _listed(_numbers(client, STREET_URL, "status=registered")[1]) == [registered.number]


def test_each_number_carries_the_summary_of_its_tick_box(people: Cast) -> None:
    cases = [report(code=FLOOD), report()]
    client = _client(people.street)
    page = client.get(STREET_URL).content.decode()
    boxes = dict(re.findall(r'data-pick value="([^"]+)" data-summary="([^"]+)"', page))
    answer = _numbers(client, STREET_URL)[1]
    assert {case["number"]: case["summary"] for case in answer["cases"]} == {
        number: html.unescape(summary) for number, summary in boxes.items()
    }
    assert answer["cases"][0]["summary"].startswith(("内涝积水 · ", "暴露垃圾 · "))
    assert {case.number for case in cases} == set(boxes)
    # In the reader's language, as the page.
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    english = {case["summary"].split(" · ")[0] for case in _numbers(client, STREET_URL)[1]["cases"]}
    assert "Waterlogging" in english and "内涝积水" not in english


def test_a_street_operator_never_gets_another_streets_numbers(people: Cast) -> None:
    mine = [report(code=FLOOD) for _ in range(3)]
    theirs = [report(code=FLOOD, grid=OTHER_STREET_GRID) for _ in range(3)]
    status, answer = _numbers(_client(people.street), STREET_URL, f"category={FLOOD}")
    assert status == 200
    assert set(_listed(answer)) == {case.number for case in mine}
    # Their console is not theirs to open: 404, as the page.
    other_url = f"/command/street/{OTHER_STREET}/"
    response = _client(people.street).get(f"{other_url}?fragment=numbers")
    assert response.status_code == 404
    assert not any(case.number in response.content.decode() for case in theirs)
    # The district sees each street in its own console.
    district = _client(people.district)
    assert set(_listed(_numbers(district, other_url)[1])) == {case.number for case in theirs}
    assert set(_listed(_numbers(district, STREET_URL)[1])) == {case.number for case in mine}


def test_a_community_and_a_department_get_only_their_own_numbers(people: Cast) -> None:
    mine = report(code=FLOOD)
    neighbour = report(code=FLOOD, grid="440309001002001")  # same street, another community
    community = _numbers(_client(people.community), f"/command/community/{COMMUNITY}/")[1]
    assert _listed(community) == [mine.number]
    incident_register(incident=neighbour, by=people.street)
    incident_dispatch(incident=neighbour, by=people.street, department_code="CGJ")
    department = _numbers(_client(people.handler), "/command/department/")[1]
    assert _listed(department) == [neighbour.number]
    assert _listed(_numbers(_client(people.other_department), "/command/department/")[1]) == []


def test_more_than_select_all_max_gives_how_many_and_no_numbers(
    people: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consoles, "SELECT_ALL_MAX", 4)
    cases = [report(code=FLOOD) for _ in range(5)]
    client = _client(people.street)
    status, answer = _numbers(client, STREET_URL)
    assert status == 200
    assert answer == {"total": 5, "max": 4, "too_many": True, "cases": []}
    # One fewer open (不予立案): all four.
    incident_reject(incident=cases[0], by=people.street, reason="重复报送")
    status, answer = _numbers(client, STREET_URL)
    assert status == 200
    assert answer["total"] == 4 and answer["too_many"] is False
    assert set(_listed(answer)) == {case.number for case in cases[1:]}


def test_the_page_carries_the_limits_and_the_queues_total(people: Cast) -> None:
    for _ in range(3):
        report()
    page = _client(people.street).get(STREET_URL).content.decode()
    assert f'data-batch-max="{BATCH_MAX}"' in page
    assert f'data-select-max="{consoles.SELECT_ALL_MAX}"' in page
    assert 'data-total="3"' in page
    fragment = _client(people.street).get(f"{STREET_URL}?fragment=queue").content.decode()
    assert 'data-total="3"' in fragment


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=nonsense", "status"),
        ("category=abc", "category"),
        ("overdue=maybe", "overdue"),
        ("since=2026-13-01", "since"),
        ("order=random", "order"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(people: Cast, query: str, field: str) -> None:
    report()
    status, answer = _numbers(_client(people.street), STREET_URL, query)
    assert status == 400
    assert list(answer) == [field]
    assert answer[field][0]


def test_the_numbers_take_the_same_queries_for_three_cases_or_thirty(people: Cast) -> None:
    client = _client(people.street)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            status, _answer = _numbers(client, STREET_URL)
        assert status == 200
        return len(captured)

    for _ in range(3):
        report()
    few = queries()
    for _ in range(27):
        report(code=FLOOD)
    assert queries() == few
