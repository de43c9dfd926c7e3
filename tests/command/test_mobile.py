"""The grid worker's phone pages (/m/): who may open them, what the report form carries, which
tasks are listed (never another grid's), one task with its actions, the session probe and the
service worker. The browser side (GPS, photos, the offline outbox) is tests/e2e/test_mobile.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from incidents.models import Category, Incident
from incidents.services import (
    incident_accept,
    incident_dispatch,
    incident_feed_back,
    incident_merge,
    incident_register,
)
from tests.incidents.cases import (
    GRID,
    OTHER_GRID_SAME_COMMUNITY,
    OTHER_STREET_GRID,
    RUBBISH,
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


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _json_script(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"#{element_id} is embedded"
    return json.loads(match.group(1))


def _dispatched_to(user: Any, people: Cast, grid: str = GRID) -> Incident:
    case = report(grid=grid)
    incident_register(incident=case, by=people.district)
    return incident_dispatch(incident=case, by=people.district, assignee=user)


def _fed_back(people: Cast, grid: str = GRID) -> Incident:
    case = report(grid=grid)
    incident_register(incident=case, by=people.district)
    incident_dispatch(incident=case, by=people.district, department_code="CGJ")
    incident_accept(incident=case, by=people.handler)
    return incident_feed_back(incident=case, by=people.handler, feedback="已清运")


def _listed(client: Client) -> list[str]:
    html = client.get("/m/tasks/").content.decode()
    return re.findall(r'<li class="m-task" data-number="([^"]+)"', html)


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/m/", "/m/tasks/", "/m/tasks/LH-20260101-000001/"])
def test_the_phone_pages_need_a_sign_in(client: Client, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("who", ["auditor", "no_role"])
def test_roles_that_never_report_or_act_are_turned_away(people: Cast, who: str) -> None:
    answer = _client(getattr(people, who)).get("/m/")
    assert answer.status_code == 403
    assert "此页面供网格员和一线工作人员使用" in answer.content.decode()


@pytest.mark.parametrize("who", ["grid_worker", "community", "handler"])
def test_field_roles_open_the_report_page(people: Cast, who: str) -> None:
    assert _client(getattr(people, who)).get("/m/").status_code == 200


# --- report -----------------------------------------------------------------------------------


def test_the_report_page_carries_every_active_category_grouped_by_class(people: Cast) -> None:
    Category.objects.filter(code="06012").update(active=False)
    html = _client(people.grid_worker).get("/m/").content.decode()
    picker = _json_script(html, "m-picker")
    codes = [c["code"] for c in picker["categories"]]
    assert codes == sorted(codes)
    assert len(codes) == Category.objects.filter(active=True).count() == 259
    assert "06012" not in codes
    rubbish = next(c for c in picker["categories"] if c["code"] == RUBBISH)
    assert rubbish == {"code": RUBBISH, "name": "暴露垃圾", "major": "06"}
    assert picker["majors"]["06"] == {"name": "市容环境类", "kind": "event"}
    fire = next(c for c in picker["categories"] if c["code"] == "90001")
    assert fire["severity"] == "IV" and picker["majors"]["90"]["kind"] == "emergency"
    assert len(picker["majors"]) == 11
    assert [s["value"] for s in picker["severities"]] == ["IV", "III", "II", "I"]
    for label in ("事项分类", "问题描述", "位置", "现场照片", 'capture="environment"'):
        assert label in html
    assert "placeholder=" not in html


def test_common_categories_are_those_reported_most_in_the_workers_own_grid(people: Cast) -> None:
    for _ in range(3):
        report(grid=GRID, code="06010")
    report(grid=GRID, code="90001")
    for _ in range(5):
        report(grid=OTHER_STREET_GRID, code="06012")  # another street's: not the worker's
    html = _client(people.grid_worker).get("/m/").content.decode()
    assert _json_script(html, "m-picker")["common"] == ["06010", "90001"]


def test_the_page_tells_its_script_where_to_send_and_who_sends(people: Cast) -> None:
    html = _client(people.grid_worker).get("/m/").content.decode()
    config = _json_script(html, "m-config")
    assert config["user"] == {"id": people.grid_worker.pk, "username": people.grid_worker.username}
    assert config["place"] == GRID
    assert config["reportUrl"] == "/api/v1/incidents/"
    assert config["locateUrl"] == "/api/v1/locate"
    assert config["swUrl"] == "/m/sw.js" and config["swScope"] == "/m/"
    strings = _json_script(html, "m-strings")
    assert strings["pending"] == "待发送"


@pytest.mark.parametrize(
    ("who", "shares"), [("grid_worker", True), ("handler", True), ("community", False)]
)
def test_only_field_roles_get_the_position_sharing_switch(
    people: Cast, who: str, shares: bool
) -> None:
    html = _client(getattr(people, who)).get("/m/tasks/").content.decode()
    config = _json_script(html, "m-config")
    assert (config["positionUrl"] == "/api/v1/responders/me/position/") is shares
    assert ('id="m-share-switch"' in html) is shares


def test_the_report_page_speaks_english_when_asked(people: Cast) -> None:
    client = _client(people.grid_worker)
    client.post("/i18n/setlang/", {"language": "en", "next": "/m/"})
    html = client.get("/m/").content.decode()
    assert '<html lang="en">' in html
    assert "My tasks" in html and "Category" in html
    assert _json_script(html, "m-strings")["pending"] == "Pending"


# --- my tasks ---------------------------------------------------------------------------------


def test_my_tasks_lists_what_is_assigned_to_me_and_fixes_to_verify_in_my_grid(
    people: Cast,
) -> None:
    mine = _dispatched_to(people.grid_worker, people)
    to_verify = _fed_back(people)
    reported_only = report(grid=GRID)  # waits for the community to register it, not for me
    listed = _listed(_client(people.grid_worker))
    assert set(listed) == {mine.number, to_verify.number}
    assert reported_only.number not in listed


def test_another_grids_cases_are_never_listed(people: Cast) -> None:
    neighbour_fix = _fed_back(people, grid=OTHER_GRID_SAME_COMMUNITY)
    neighbour_task = _dispatched_to(
        people.other_grid_worker, people, grid=OTHER_GRID_SAME_COMMUNITY
    )
    far_fix = _fed_back(people, grid=OTHER_STREET_GRID)
    assert _listed(_client(people.grid_worker)) == []
    assert set(_listed(_client(people.other_grid_worker))) == {
        neighbour_fix.number,
        neighbour_task.number,
    }
    assert far_fix.number not in _listed(_client(people.community))


def test_a_fix_i_handled_myself_is_not_mine_to_verify(people: Cast) -> None:
    case = _dispatched_to(people.grid_worker, people)
    incident_accept(incident=case, by=people.grid_worker)
    incident_feed_back(incident=case, by=people.grid_worker, feedback="已处理")
    assert _listed(_client(people.grid_worker)) == []
    assert _listed(_client(people.grid_worker_2)) == [case.number]


def test_community_staff_see_the_decisions_their_station_owes(people: Cast) -> None:
    to_register = report(grid=GRID)
    elsewhere = report(grid=OTHER_STREET_GRID)
    listed = _listed(_client(people.community))
    assert to_register.number in listed
    assert elsewhere.number not in listed


def test_tasks_show_their_deadline_countdown_most_urgent_first(people: Cast) -> None:
    first = _dispatched_to(people.grid_worker, people)
    second = _fed_back(people)
    html = _client(people.grid_worker).get("/m/tasks/").content.decode()
    deadlines = re.findall(r'data-deadline="([^"]+)"', html)
    assert deadlines == sorted(deadlines)
    assert len(deadlines) == 2
    assert re.search(r"剩余 \d", html) or "已超时" in html
    assert {first.number, second.number} <= set(re.findall(r"LH-\d{8}-\d{6}", html))


def test_a_list_cut_at_its_limit_says_how_many_wait(people: Cast, monkeypatch) -> None:
    from command.views import mobile

    cases = [_dispatched_to(people.grid_worker, people) for _ in range(3)]
    monkeypatch.setattr(mobile, "TASKS_SHOWN", 2)

    html = _client(people.grid_worker).get("/m/tasks/?fragment=1").content.decode()
    assert len(re.findall(r'<li class="m-task" data-number=', html)) == 2
    assert "共 3 项待办，这里列出时限最近的 2 项；办完后其余的会依次出现。" in html
    assert "2 项待办，时限最近的在前" not in html

    monkeypatch.setattr(mobile, "TASKS_SHOWN", 3)
    html = _client(people.grid_worker).get("/m/tasks/?fragment=1").content.decode()
    assert 'data-testid="tasks-cut"' not in html
    assert "3 项待办，时限最近的在前" in html
    assert {case.number for case in cases} <= set(re.findall(r"LH-\d{8}-\d{6}", html))


def test_the_list_fragment_carries_the_live_feed_positions(people: Cast) -> None:
    case = _dispatched_to(people.grid_worker, people)
    answer = _client(people.grid_worker).get("/m/tasks/?fragment=1")
    html = answer.content.decode()
    assert "<html" not in html
    assert case.number in html
    seqs = _json_script(html, "task-seqs")
    assert set(seqs) == {f"user:{people.grid_worker.pk}", f"grid:{GRID}"}
    assert seqs[f"user:{people.grid_worker.pk}"] >= 1  # the dispatch reached the assignee


# --- one task ---------------------------------------------------------------------------------


def test_a_task_page_offers_the_actions_the_api_lists_for_me(people: Cast) -> None:
    case = _dispatched_to(people.grid_worker, people)
    client = _client(people.grid_worker)
    html = client.get(f"/m/tasks/{case.number}/").content.decode()
    api = client.get(f"/api/v1/incidents/{case.number}/").json()
    offered = re.findall(r'<form class="m-action-form" data-action="([^"]+)"', html)
    assert sorted(offered) == sorted(api["allowed_actions"]) == ["accept", "send_back"]
    assert f'data-url="/api/v1/incidents/{case.number}/accept/"' in html
    assert "非本部门职责" in html  # the send-back reasons


def test_a_steps_note_is_labelled_note_in_english(people: Cast) -> None:
    # 说明 is also a model field's name (a description); on a step's form it is the step's note.
    case = report(grid=GRID)
    incident_register(incident=case, by=people.community)
    client = _client(people.community)
    client.post("/i18n/setlang/", {"language": "en", "next": "/m/"})
    html = client.get(f"/m/tasks/{case.number}/").content.decode()
    assert re.search(r'<label class="m-label" for="f-dispatch-note">Note</label>', html), html
    assert not re.search(r'class="m-label"[^>]*>[Dd]escription', html)


def test_verification_is_offered_on_a_fix_in_my_grid(people: Cast) -> None:
    case = _fed_back(people)
    html = _client(people.grid_worker).get(f"/m/tasks/{case.number}/").content.decode()
    offered = re.findall(r'<form class="m-action-form" data-action="([^"]+)"', html)
    assert offered == ["verify", "rework"]
    assert "已清运" in html  # the handler's feedback


def test_my_report_merged_into_another_case_names_that_case(people: Cast) -> None:
    primary = report(grid=OTHER_GRID_SAME_COMMUNITY)
    mine = report(reporter=people.grid_worker)
    incident_merge(incident=mine, into=primary, by=people.community)
    html = _client(people.grid_worker).get(f"/m/tasks/{mine.number}/").content.decode()
    assert f'<dd data-testid="merged-into">{primary.number}</dd>' in html


def test_another_grids_case_page_does_not_exist_for_me(people: Cast) -> None:
    case = _fed_back(people, grid=OTHER_GRID_SAME_COMMUNITY)
    assert _client(people.grid_worker).get(f"/m/tasks/{case.number}/").status_code == 404


# --- session probe and service worker ----------------------------------------------------------


def test_the_session_probe_says_who_is_signed_in(people: Cast) -> None:
    anonymous = Client().get("/m/session/").json()
    assert anonymous["user"] is None and anonymous["csrfToken"]
    signed_in = _client(people.grid_worker).get("/m/session/").json()
    assert signed_in["user"]["id"] == people.grid_worker.pk


def test_the_service_worker_is_served_for_the_scope_of_the_phone_pages(client: Client) -> None:
    answer = client.get("/m/sw.js")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/javascript")
    assert answer["Service-Worker-Allowed"] == "/m/"
    source = answer.content.decode()
    assets = json.loads(re.search(r"const CITYOPS_SHELL_ASSETS = (\[.*?\]);", source).group(1))
    assert "/static/command/mobile.js" in assets and "/static/command/mobile.css" in assets
    pages = json.loads(re.search(r"const CITYOPS_SHELL_PAGES = (\[.*?\]);", source).group(1))
    assert pages == ["/m/", "/m/tasks/"]
    assert re.search(r'const CITYOPS_SW_VERSION = "[0-9a-f]{16}";', source)


def test_community_staff_register_and_dispatch_from_the_phone(people: Cast) -> None:
    case = report(grid=GRID)
    client = _client(people.community)
    html = client.get(f"/m/tasks/{case.number}/").content.decode()
    offered = re.findall(r'<form class="m-action-form" data-action="([^"]+)"', html)
    assert offered[0] == "register" and {"reject", "merge"} <= set(offered)
    incident_register(incident=case, by=people.community)
    html = client.get(f"/m/tasks/{case.number}/").content.decode()
    assert re.findall(r'<form class="m-action-form" data-action="([^"]+)"', html)[0] == "dispatch"
    # The category's department is the one proposed (暴露垃圾 → 城管 CGJ).
    assert re.search(r'<option value="CGJ" title="[^"]*" selected>', html)
