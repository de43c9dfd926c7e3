"""The consoles (/command/…): who may open which page, whose cases each shows (never another
street's), the queue's filters and paging, the case page's action forms, the intake form.

Access matrix: role × page × whose case. A page or case the user may not open is 404 — the same
answer as for a code or number that does not exist. The browser side (actions posted to the API,
live updates) is tests/e2e/test_consoles.py.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from command.views.consoles import AREA_BATCH, DEPARTMENT_BATCH
from incidents.api.batch import BATCH_ACTIONS
from incidents.models import Incident
from incidents.selectors import EARTH_RADIUS_M
from incidents.services import (
    incident_accept,
    incident_dispatch,
    incident_feed_back,
    incident_merge,
    incident_register,
    incident_reject,
)
from incidents.services.escalation import incident_escalate, incident_warn
from tests.incidents.cases import (
    COMMUNITY,
    FIRE,
    OTHER_STREET,
    OTHER_STREET_COMMUNITY,
    OTHER_STREET_GRID,
    STREET,
    Cast,
    make_cast,
    make_user,
    report,
)
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

OTHER_COMMUNITY_SAME_STREET = "440309001002"


@pytest.fixture
def people() -> Cast:
    return make_cast()


@pytest.fixture
def mine() -> Incident:
    """A case in 龙华街道 / 三联社区 (grid 440309001001001)."""
    return report(description="三联社区路边堆放垃圾")


@pytest.fixture
def theirs() -> Incident:
    """A case in another street (440309002)."""
    return report(grid=OTHER_STREET_GRID, description="大浪街道的案件")


def _client(user: Any | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _get(user: Any | None, url: str) -> Any:
    return _client(user).get(url)


def _json_script(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"#{element_id} is embedded"
    return json.loads(match.group(1))


def _queue_numbers(html: str) -> list[str]:
    return re.findall(r'<tr data-number="([^"]+)"', html)


# --- who may open which console -------------------------------------------------------------------

STREET_URL = f"/command/street/{STREET}/"
COMMUNITY_URL = f"/command/community/{COMMUNITY}/"
DEPARTMENT_URL = "/command/department/"
INTAKE_URL = "/command/intake/"


@pytest.mark.parametrize(
    ("who", "url", "expected"),
    [
        # the street console of 440309001
        ("street", STREET_URL, 200),
        ("district", STREET_URL, 200),
        ("admin", STREET_URL, 200),
        ("other_street", STREET_URL, 404),
        ("community", STREET_URL, 404),
        ("grid_worker", STREET_URL, 404),
        ("handler", STREET_URL, 404),
        ("auditor", STREET_URL, 404),
        ("no_role", STREET_URL, 404),
        # the community console of 440309001001
        ("community", COMMUNITY_URL, 200),
        ("street", COMMUNITY_URL, 200),  # a community of their street
        ("district", COMMUNITY_URL, 200),
        ("other_community", COMMUNITY_URL, 404),
        ("other_street", COMMUNITY_URL, 404),
        ("grid_worker", COMMUNITY_URL, 404),
        ("handler", COMMUNITY_URL, 404),
        ("auditor", COMMUNITY_URL, 404),
        ("no_role", COMMUNITY_URL, 404),
        # the department console
        ("handler", DEPARTMENT_URL, 200),
        ("other_department", DEPARTMENT_URL, 200),
        ("district", DEPARTMENT_URL, 404),
        ("street", DEPARTMENT_URL, 404),
        ("community", DEPARTMENT_URL, 404),
        ("grid_worker", DEPARTMENT_URL, 404),
        ("auditor", DEPARTMENT_URL, 404),
        ("no_role", DEPARTMENT_URL, 404),
        # the intake form
        ("district", INTAKE_URL, 200),
        ("street", INTAKE_URL, 200),
        ("community", INTAKE_URL, 200),
        ("admin", INTAKE_URL, 200),
        ("handler", INTAKE_URL, 404),
        ("grid_worker", INTAKE_URL, 404),
        ("auditor", INTAKE_URL, 404),
        ("no_role", INTAKE_URL, 404),
    ],
)
def test_who_may_open_each_console(people: Cast, who: str, url: str, expected: int) -> None:
    assert _get(getattr(people, who), url).status_code == expected


@pytest.mark.parametrize(
    "url", [STREET_URL, COMMUNITY_URL, DEPARTMENT_URL, INTAKE_URL, "/command/", "/command/cases/X/"]
)
def test_anonymous_visitors_are_sent_to_sign_in(url: str) -> None:
    response = _get(None, url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_an_inactive_account_opens_no_console(people: Cast) -> None:
    people.street.is_active = False
    people.street.save()
    client = Client()
    client.force_login(people.street)  # the session outlives the deactivation
    assert client.get(STREET_URL).status_code in (302, 404)


def test_a_console_of_a_code_that_is_no_street_is_404(people: Cast) -> None:
    assert _get(people.district, "/command/street/440309999/").status_code == 404
    # A community code is not a street, nor the other way round.
    assert _get(people.district, f"/command/street/{COMMUNITY}/").status_code == 404
    assert _get(people.district, f"/command/community/{STREET}/").status_code == 404


def test_a_department_handler_without_a_department_has_no_console() -> None:
    user = make_user(Role.DEPARTMENT_HANDLER)
    assert _get(user, DEPARTMENT_URL).status_code == 404


# --- whose cases each queue shows -----------------------------------------------------------------


def test_the_street_queue_shows_its_street_and_never_another(
    people: Cast, mine: Incident, theirs: Incident
) -> None:
    also_theirs = [report(grid=OTHER_STREET_GRID) for _ in range(3)]
    html = _get(people.street, STREET_URL).content.decode()
    assert _queue_numbers(html) == [mine.number]
    for case in (theirs, *also_theirs):
        assert case.number not in html
        assert "大浪街道的案件" not in html


def test_a_district_operator_sees_each_street_in_its_own_console(
    people: Cast, mine: Incident, theirs: Incident
) -> None:
    assert _queue_numbers(_get(people.district, STREET_URL).content.decode()) == [mine.number]
    other = _get(people.district, f"/command/street/{OTHER_STREET}/").content.decode()
    assert _queue_numbers(other) == [theirs.number]


def test_the_community_queue_shows_its_community_only(
    people: Cast, mine: Incident, theirs: Incident
) -> None:
    neighbour = report(grid="440309001002001")  # same street, another community
    html = _get(people.community, COMMUNITY_URL).content.decode()
    assert _queue_numbers(html) == [mine.number]
    assert neighbour.number not in html and theirs.number not in html
    # The street operator opens the neighbour's console; its staff cannot open this one.
    neighbour_url = f"/command/community/{OTHER_COMMUNITY_SAME_STREET}/"
    assert _queue_numbers(_get(people.street, neighbour_url).content.decode()) == [neighbour.number]
    assert _get(people.other_community, COMMUNITY_URL).status_code == 404
    assert (
        _get(people.other_street, f"/command/community/{OTHER_STREET_COMMUNITY}/").status_code
        == 200
    )


def test_the_department_queue_shows_the_cases_dispatched_to_the_department(
    people: Cast, mine: Incident, theirs: Incident
) -> None:
    for case in (mine, theirs):
        incident_register(incident=case, by=people.district)
        incident_dispatch(incident=case, by=people.district, department_code="CGJ")
    waiting = report()  # reported, not dispatched: no department's yet
    swj_case = report()
    incident_register(incident=swj_case, by=people.street)
    incident_dispatch(incident=swj_case, by=people.street, department_code="SWJ")

    html = _get(people.handler, DEPARTMENT_URL).content.decode()
    assert set(_queue_numbers(html)) == {mine.number, theirs.number}
    assert waiting.number not in html and swj_case.number not in html
    assert 'data-quick-action="accept"' in html  # 签收 from the queue
    other = _get(people.other_department, DEPARTMENT_URL).content.decode()
    assert _queue_numbers(other) == [swj_case.number]


def test_a_console_embeds_the_live_feed_snapshot(people: Cast, mine: Incident) -> None:
    html = _get(people.street, STREET_URL).content.decode()
    feed = _json_script(html, "queue-feed")
    assert f"street:{STREET}" in feed["scopes"]
    assert feed["seqs"][f"street:{STREET}"] >= 1  # the report was published to the street
    assert set(feed["seqs"]) == set(feed["scopes"])
    assert _json_script(html, "console-match") == {"street": STREET}
    assert 'id="live-banner"' in html and "实时连接中断" in html


# --- the queue: filters, search, paging, countdowns -----------------------------------------------


def test_the_queue_filters_by_status_category_overdue_and_text(
    people: Cast, mine: Incident
) -> None:
    registered = report(description="人行道破损")
    incident_register(incident=registered, by=people.street)
    fire = report(code=FIRE, description="厨房起火")
    late = report(description="已经超时的案件")
    Incident.objects.filter(pk=late.pk).update(stage_deadline=timezone.now() - timedelta(hours=1))
    client = _client(people.street)

    def numbers(query: str) -> set[str]:
        response = client.get(f"{STREET_URL}?{query}")
        assert response.status_code == 200, response.content
        return set(_queue_numbers(response.content.decode()))

    everything = {mine.number, registered.number, fire.number, late.number}
    assert numbers("") == everything
    assert numbers("status=registered") == {registered.number}
    assert numbers("status=reported") == everything - {registered.number}
    assert numbers(f"category={FIRE}") == {fire.number}
    assert numbers("overdue=true") == {late.number}
    assert numbers("overdue=false") == everything - {late.number}
    assert numbers("q=厨房") == {fire.number}
    assert numbers(f"q={mine.number[-6:]}") == {mine.number}
    assert numbers("q=三联社区") == everything  # the community's name
    assert numbers("status=reported&q=人行道") == set()
    # A finished case leaves the default (open) queue but is found under "all".
    incident_reject(incident=mine, by=people.street, reason="不属于城市管理事项")
    assert mine.number not in numbers("")
    assert mine.number in numbers("status=all")
    assert numbers("status=rejected") == {mine.number}


def test_the_queue_puts_the_most_urgent_deadline_first(people: Cast) -> None:
    first, second, third = report(), report(), report()
    now = timezone.now()
    for case, hours in ((first, 5), (second, -2), (third, 1)):
        Incident.objects.filter(pk=case.pk).update(stage_deadline=now + timedelta(hours=hours))
    html = _get(people.street, STREET_URL).content.decode()
    assert _queue_numbers(html) == [second.number, third.number, first.number]
    assert 'class="queue-row is-late"' in html  # the one past its deadline
    newest = _get(people.street, f"{STREET_URL}?order=newest").content.decode()
    assert _queue_numbers(newest) == [third.number, second.number, first.number]


def test_the_queue_can_put_the_gravest_first(people: Cast) -> None:
    # Yesterday's overdue noise complaint (no level) below a Ⅳ级 and a Ⅱ级 due later.
    noise, general, major = report(), report(), report()
    now = timezone.now()
    for case, hours, severity in ((noise, -20, ""), (general, 1, "IV"), (major, 3, "II")):
        Incident.objects.filter(pk=case.pk).update(
            stage_deadline=now + timedelta(hours=hours), severity=severity
        )
    html = _get(people.street, f"{STREET_URL}?order=severity").content.decode()
    assert _queue_numbers(html) == [major.number, general.number, noise.number]
    assert '<option value="severity" selected>事件级别最高优先</option>' in html
    by_deadline = _get(people.street, STREET_URL).content.decode()
    assert _queue_numbers(by_deadline) == [noise.number, general.number, major.number]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=nonsense", "status"),
        ("category=abc", "category"),
        ("overdue=maybe", "overdue"),
        ("response=false", "response"),
        ("order=random", "order"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(people: Cast, query: str, field: str) -> None:
    response = _get(people.street, f"{STREET_URL}?{query}")
    assert response.status_code == 400
    assert f'data-error-for="{field}"' in response.content.decode()


def test_the_queue_pages_by_twenty(people: Cast) -> None:
    cases = [report() for _ in range(23)]
    client = _client(people.street)
    first = client.get(f"{STREET_URL}?order=newest").content.decode()
    second = client.get(f"{STREET_URL}?order=newest&page=2").content.decode()
    assert len(_queue_numbers(first)) == 20
    assert _queue_numbers(second) == [c.number for c in reversed(cases[:3])]
    assert 'rel="next"' in first and 'rel="prev"' in second
    assert "共 23 件" in first


def test_the_queue_shows_fifty_or_a_hundred_a_page_when_asked(people: Cast) -> None:
    cases = [report() for _ in range(53)]
    client = _client(people.street)
    first = client.get(f"{STREET_URL}?order=newest&size=50").content.decode()
    assert len(_queue_numbers(first)) == 50
    # The pager keeps the size; page 2 holds the rest.
    assert "size=50&amp;page=2" in first
    second = client.get(f"{STREET_URL}?order=newest&size=50&page=2").content.decode()
    assert _queue_numbers(second) == [c.number for c in reversed(cases[:3])]
    assert len(_queue_numbers(client.get(f"{STREET_URL}?size=100").content.decode())) == 53
    refused = client.get(f"{STREET_URL}?size=7")
    assert refused.status_code == 400
    assert 'data-error-for="size"' in refused.content.decode()
    assert "每页只能显示 20、50、100 件" in refused.content.decode()


def test_area_queues_offer_batch_actions_on_ticked_cases(people: Cast, mine: Incident) -> None:
    for user, url in ((people.street, STREET_URL), (people.community, COMMUNITY_URL)):
        html = _get(user, url).content.decode()
        actions = re.findall(r'data-batch-action="([a-z_]+)"', html)
        assert actions == ["register", "dispatch", "merge", "reject", "close"]
        assert f'data-pick value="{mine.number}"' in html
        assert "data-pick-all" in html
        # The batch dispatch names no department until one is chosen; a merge's primary is
        # chosen among the ticked cases.
        form = html[html.index('data-batch-form="dispatch"') :]
        assert '<option value="" selected>请选择部门</option>' in form[: form.index("</select>")]
        assert "从已选案件中选一件作为主案件" in html
    fragment = _get(people.street, f"{STREET_URL}?fragment=queue").content.decode()
    assert f'data-pick value="{mine.number}"' in fragment
    # Every action offered has its batch endpoint.
    assert {*AREA_BATCH, *DEPARTMENT_BATCH} <= set(BATCH_ACTIONS)
    assert "batch-bar" not in fragment  # the bar stays on the page across reloads


def test_the_department_queue_offers_a_batch_accept(people: Cast, mine: Incident) -> None:
    incident_register(incident=mine, by=people.community)
    incident_dispatch(incident=mine, by=people.street, department_code="CGJ")
    html = _get(people.handler, DEPARTMENT_URL).content.decode()
    assert re.findall(r'data-batch-action="([a-z_]+)"', html) == ["accept"]
    assert f'data-pick value="{mine.number}"' in html


def test_the_queue_fragment_is_the_queue_alone(people: Cast, mine: Incident) -> None:
    response = _get(people.street, f"{STREET_URL}?fragment=queue")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="queue-filters"' not in html
    assert _queue_numbers(html) == [mine.number]
    assert _json_script(html, "queue-feed")["seqs"][f"street:{STREET}"] >= 1


def test_queue_chips_count_open_cases_by_stage(people: Cast, mine: Incident) -> None:
    registered = report()
    incident_register(incident=registered, by=people.street)
    html = _get(people.street, STREET_URL).content.decode()

    def chip(name: str) -> int:
        match = re.search(
            rf'data-testid="chip-{name}">.*?<strong class="chip-count">(\d+)</strong>', html, re.S
        )
        assert match, name
        return int(match.group(1))

    assert chip("reported") == 1
    assert chip("registered") == 1
    assert chip("dispatched") == 0


def _chip(html: str, name: str) -> tuple[int, str]:
    """A chip's count and link."""
    match = re.search(
        rf'<a class="chip[^"]*" href="([^"]*)" data-testid="chip-{name}"[^>]*>'
        r'.*?<strong class="chip-count">(\d+)</strong>',
        html,
        re.S,
    )
    assert match, name
    return int(match.group(2)), match.group(1).replace("&amp;", "&")


def test_queue_chips_count_within_the_other_filters_and_keep_them(people: Cast) -> None:
    rubbish = report()
    fire = report(code=FIRE, description="厂房起火")
    incident_register(incident=fire, by=people.street)
    yesterday = timezone.now() - timedelta(days=1)
    older_fire = report(code=FIRE, description="仓库冒烟")
    Incident.objects.filter(pk=older_fire.pk).update(created_at=yesterday, stage_deadline=yesterday)
    today = timezone.localdate().isoformat()

    html = _get(people.street, STREET_URL).content.decode()
    assert _chip(html, "reported") == (2, "?status=reported")
    assert _chip(html, "registered") == (1, "?status=registered")
    assert _chip(html, "overdue") == (1, "?overdue=true")

    query = f"category={FIRE}&since={today}&order=newest"
    html = _get(people.street, f"{STREET_URL}?{query}").content.decode()
    assert _queue_numbers(html) == [fire.number]
    # The chips count the fires received today only, and each link keeps those filters.
    assert _chip(html, "reported") == (0, f"?status=reported&{query}")
    assert _chip(html, "registered") == (1, f"?status=registered&{query}")
    assert _chip(html, "overdue") == (
        0,
        f"?category={FIRE}&overdue=true&since={today}&order=newest",
    )
    assert "在办案件（按当前事项、搜索和受理日期筛选）" in html

    # Following a chip: its stage within the same filters, and only that chip is current.
    count, href = _chip(html, "registered")
    html = _get(people.street, STREET_URL + href).content.decode()
    assert _queue_numbers(html) == [fire.number]
    assert 'chip-registered is-current" href' in html
    assert html.count("is-current") == 1

    # The overdue chip keeps the category and trades the stage for every open case past its time.
    html = _get(people.street, f"{STREET_URL}?category={FIRE}&status=reported").content.decode()
    count, href = _chip(html, "overdue")
    assert (count, href) == (1, f"?category={FIRE}&overdue=true")
    html = _get(people.street, STREET_URL + href).content.decode()
    assert _queue_numbers(html) == [older_fire.number]
    assert 'chip-overdue is-current" href' in html
    assert rubbish.number not in html


def test_the_response_chip_and_rows_show_the_cases_with_departments_called_out(
    people: Cast,
) -> None:
    from dispatch.services import plan_activate
    from incidents.services import incident_confirm_arrival

    flood_code = "90002"  # 内涝积水; FLOOD-IV: 水务 leads, 街道 and 交警 beside it
    plain = report(description="路边堆放垃圾")
    flood = report(code=flood_code, severity="IV", description="下穿通道积水")
    flood = plan_activate(incident=flood, plan_code="FLOOD-IV", by=people.district)
    police = make_user(Role.DEPARTMENT_HANDLER, department="JJ")
    incident_confirm_arrival(incident=flood, by=police)
    elsewhere = report(code=flood_code, severity="IV", grid=OTHER_STREET_GRID)
    plan_activate(incident=elsewhere, plan_code="FLOOD-IV", by=people.district)

    # The chip counts this street's open cases in response, not another street's.
    html = _get(people.street, STREET_URL).content.decode()
    assert _chip(html, "response") == (1, "?response=true")
    # Its row says how many of the departments called out have arrived; its title names the
    # plan, who has arrived and who not. A case without departments called out has no flag.
    row = html.split(f'<tr data-number="{flood.number}"')[1].split("</tr>")[0]
    flag = re.search(r'<span class="flag flag-response" title="([^"]*)"[^>]*>([^<]*)<', row)
    assert flag, row
    assert flag.group(2) == "应急响应 · 1/2 到场"
    assert flag.group(1) == "内涝积水一般响应 · 已到场：交警 · 未到场：街道"
    plain_row = html.split(f'<tr data-number="{plain.number}"')[1].split("</tr>")[0]
    assert "flag-response" not in plain_row

    # Following the chip: those cases only, the chip current; the filter form keeps it.
    html = _get(people.street, f"{STREET_URL}?response=true").content.decode()
    assert _queue_numbers(html) == [flood.number]
    assert 'chip-response is-current" href' in html and html.count("is-current") == 1
    assert '<option value="true" selected>应急响应中</option>' in html
    # The other chips trade it for their stage; 选择全部 and the export take it too.
    assert _chip(html, "reported") == (1, "?status=reported")
    numbers = _client(people.street).get(f"{STREET_URL}?response=true&fragment=numbers").json()
    assert [case["number"] for case in numbers["cases"]] == [flood.number]
    # The district's queue counts both streets'.
    html = _get(people.district, "/command/district/").content.decode()
    assert _chip(html, "response")[0] == 2
    # In English.
    english = _client(people.street).get(STREET_URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Response · 1/2 arrived" in english
    assert "Arrived: Traffic Police · Not yet arrived: Street Office" in english


def test_a_countdown_carries_the_deadline_for_the_script(people: Cast, mine: Incident) -> None:
    html = _get(people.street, STREET_URL).content.decode()
    deadline = timezone.localtime(mine.stage_deadline).isoformat()
    assert f'data-deadline="{deadline}"' in html


# --- the case page --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("street", 200),
        ("community", 200),
        ("district", 200),
        ("admin", 200),
        ("grid_worker", 200),  # their grid cell's case
        ("auditor", 200),  # reads everything, acts on nothing
        ("other_street", 404),
        ("other_community", 404),
        ("other_grid_worker", 404),
        ("handler", 404),  # not dispatched to them (yet)
        ("other_department", 404),
        ("no_role", 404),
    ],
)
def test_who_may_open_a_case(people: Cast, mine: Incident, who: str, expected: int) -> None:
    response = _get(getattr(people, who), f"/command/cases/{mine.number}/")
    assert response.status_code == expected
    if expected == 404:
        assert "三联社区路边堆放垃圾" not in response.content.decode()


def test_another_streets_case_is_404_like_a_number_that_does_not_exist(
    people: Cast, theirs: Incident
) -> None:
    assert _get(people.street, f"/command/cases/{theirs.number}/").status_code == 404
    assert _get(people.street, "/command/cases/LH-20000101-000001/").status_code == 404
    assert _get(people.district, f"/command/cases/{theirs.number}/").status_code == 200


def test_a_department_sees_a_case_once_it_is_dispatched_to_it(people: Cast, mine: Incident) -> None:
    url = f"/command/cases/{mine.number}/"
    incident_register(incident=mine, by=people.street)
    incident_dispatch(incident=mine, by=people.street, department_code="CGJ")
    html = _get(people.handler, url).content.decode()
    assert 'data-action="accept"' in html and 'data-action="send_back"' in html
    assert 'data-action="dispatch"' not in html
    assert _get(people.other_department, url).status_code == 404


def test_the_case_page_offers_the_actions_the_user_may_take(people: Cast, mine: Incident) -> None:
    url = f"/command/cases/{mine.number}/"
    html = _get(people.street, url).content.decode()
    forms = re.findall(r'<form class="action-form" data-action="([a-z_]+)"', html)
    assert set(forms) == {"register", "reject", "merge"}
    assert _json_script(html, "case-config")["number"] == mine.number
    assert "三联社区路边堆放垃圾" in html
    assert 'data-testid="timeline"' in html and "上报" in html
    # The auditor reads the case and may do nothing.
    auditor = _get(people.auditor, url).content.decode()
    assert 'class="action-form"' not in auditor and 'data-testid="no-actions"' in auditor


def test_the_timeline_names_the_systems_warning_and_escalation(
    people: Cast, mine: Incident
) -> None:
    """预警 and 督办 are the escalation worker's steps, not rows of the workflow: the console's
    and the phone's timelines name them in words, in the reader's language."""
    deadline = mine.stage_deadline
    assert deadline is not None
    warned = incident_warn(incident=mine, now=deadline - timedelta(seconds=1))
    incident_escalate(incident=warned, now=deadline + timedelta(minutes=1))
    url = f"/command/cases/{mine.number}/"
    step = re.compile(r"<strong>([^<]+)</strong>\s*<time")
    labels = step.findall(_get(people.street, url).content.decode())
    assert labels[-3:] == ["上报", "超时预警", "超时督办"]
    english = _client(people.street)
    english.post("/i18n/setlang/", {"language": "en", "next": "/"})
    labels = step.findall(english.get(url).content.decode())
    assert labels[-3:] == ["Report", "Deadline warning", "Escalated: deadline missed"]
    phone = _get(people.grid_worker, f"/m/tasks/{mine.number}/").content.decode()
    assert re.findall(r"<li><span><strong>([^<]+)</strong>", phone)[:2] == ["超时督办", "超时预警"]


def test_the_queue_says_who_has_an_escalated_case_now(people: Cast, mine: Incident) -> None:
    """A 督办 raises the case to the street: the community's queue still lists it (its place) but
    says the street is in charge now, which is why it offers the community nothing to do."""
    deadline = mine.stage_deadline
    assert deadline is not None
    incident_escalate(incident=mine, now=deadline + timedelta(minutes=1))
    html = _get(people.community, f"/command/community/{COMMUNITY}/").content.decode()
    assert '<span class="flag flag-escalated">已督办 · 街道分中心负责</span>' in html


def test_the_timeline_says_what_a_warning_and_an_escalation_did(
    people: Cast, mine: Incident
) -> None:
    """A 督办 names the centres it moved the case between (not "原主案件", a merge's word) and
    neither step claims a new deadline: the clock they saw is the stage's."""
    deadline = mine.stage_deadline
    assert deadline is not None
    warned = incident_warn(incident=mine, now=deadline - timedelta(seconds=1))
    incident_escalate(incident=warned, now=deadline + timedelta(minutes=1))
    html = _get(people.street, f"/command/cases/{mine.number}/").content.decode()
    details = re.findall(r'<div class="timeline-detail">([^<]+)</div>', html)
    clock = timezone.localtime(deadline).strftime("%Y-%m-%d %H:%M")
    assert details.count(f"环节时限：{clock}") == 2  # 预警 and 督办
    assert "督办：三联社区 社区工作站 → 龙华街道 街道分中心" in details
    assert "督办次数：1" in details
    assert not [d for d in details if d.startswith(("原主案件", "新时限"))]


def test_the_dispatch_form_lists_the_departments_with_the_categorys_default(
    people: Cast, mine: Incident
) -> None:
    incident_register(incident=mine, by=people.street)
    html = _get(people.street, f"/command/cases/{mine.number}/").content.decode()
    form = html[html.index('data-action="dispatch"') :]
    form = form[: form.index("</form>")]
    codes = re.findall(r'<option value="([A-Z]+)"', form)
    assert codes[:3] == ["CGJ", "ZJJ", "SWJ"] and "JD" in codes and len(codes) == 22
    assert '<option value="CGJ" selected>' in form  # 06010 暴露垃圾 → 城管


def test_the_reporters_phone_is_shown_to_operators_and_masked_for_departments(
    people: Cast,
) -> None:
    case = report(reporter_name="陈先生", reporter_phone="13800138000")
    incident_register(incident=case, by=people.street)
    incident_dispatch(incident=case, by=people.street, department_code="CGJ")
    url = f"/command/cases/{case.number}/"
    assert "13800138000" in _get(people.street, url).content.decode()
    handler_html = _get(people.handler, url).content.decode()
    assert "13800138000" not in handler_html and "138****8000" in handler_html


def test_the_case_fragment_carries_state_and_actions(people: Cast, mine: Incident) -> None:
    html = _get(people.street, f"/command/cases/{mine.number}/?fragment=case").content.decode()
    assert "<html" not in html
    assert 'id="case-main"' in html and 'id="case-actions"' in html
    assert 'data-actions="register,reject,merge"' in html


def test_the_case_page_shows_a_sensors_repeat_alarms(people: Cast, mine: Incident) -> None:
    at = timezone.now() - timedelta(minutes=5)
    # The counters as bulk intake leaves them (tests/incidents/test_api_bulk.py drives it).
    Incident.objects.filter(pk=mine.pk).update(
        source_ref="JG-00042", repeat_count=3, last_repeated_at=at
    )
    html = _get(people.street, f"/command/cases/{mine.number}/").content.decode()
    assert 'data-testid="repeat-count">重复报警 3 次<' in html
    assert '<code data-testid="source-ref">JG-00042</code>' in html
    assert f"3 次 · 最近 {timezone.localtime(at):%Y-%m-%d %H:%M}" in html
    queue = _get(people.street, STREET_URL).content.decode()
    assert '<span class="flag flag-repeat">重复报警 3 次</span>' in queue
    # A case nobody repeated says nothing of it.
    plain = _get(people.street, f"/command/cases/{report().number}/").content.decode()
    assert "flag-repeat" not in plain and "source-ref" not in plain


def test_the_primary_case_page_lists_the_cases_merged_into_it(people: Cast, mine: Incident) -> None:
    near = report(channel="hotline_12345")
    elsewhere = report(grid=f"{OTHER_COMMUNITY_SAME_STREET}001")
    for case in (near, elsewhere):
        incident_merge(incident=case, into=mine, by=people.district)
    url = f"/command/cases/{mine.number}/"

    street = _get(people.street, url).content.decode()
    assert "已合并 2 件重复上报" in street
    listed = re.findall(r'<li><a href="/command/cases/([^/]+)/" data-number=', street)
    assert listed == [near.number, elsewhere.number]
    assert "12345热线" in street and "不在您的查看范围内" not in street
    # The community's staff are told of both and shown the one in their community.
    community = _get(people.community, url).content.decode()
    listed = re.findall(r'<li><a href="/command/cases/([^/]+)/" data-number=', community)
    assert listed == [near.number]
    assert "已合并 2 件重复上报" in community and "其中 1 件不在您的查看范围内" in community
    # The duplicate's own page points at the primary, and lists nothing merged into it.
    duplicate = _get(people.street, f"/command/cases/{near.number}/").content.decode()
    assert f'已合并至 <a href="/command/cases/{mine.number}/">' in duplicate
    assert 'data-testid="merged-cases"' not in duplicate
    assert "merged-more" not in street  # two numbers are listed open


def test_many_merged_cases_keep_their_numbers_folded(people: Cast, mine: Incident) -> None:
    # Thirty reports of one underpass: the numbers fold away, so the case stays in view.
    for _ in range(6):
        incident_merge(incident=report(), into=mine, by=people.district)
    html = _get(people.street, f"/command/cases/{mine.number}/").content.decode()
    assert "已合并 6 件重复上报" in html
    folded = html[html.index('<details class="merged-more">') :]
    assert folded.startswith('<details class="merged-more"><summary>查看 6 件的编号</summary>')
    assert len(re.findall(r'data-number="LH-', folded[: folded.index("</details>")])) == 6


# --- "my console", the district's list, the intake form, the header -------------------------------


@pytest.mark.parametrize(
    ("who", "location"),
    [
        ("street", STREET_URL),
        ("community", COMMUNITY_URL),
        ("handler", DEPARTMENT_URL),
    ],
)
def test_my_console_leads_each_role_to_its_screen(people: Cast, who: str, location: str) -> None:
    response = _get(getattr(people, who), "/command/")
    assert response.status_code == 302
    assert response["Location"] == location


def test_the_district_chooses_among_all_streets(people: Cast, mine: Incident) -> None:
    html = _get(people.district, "/command/").content.decode()
    streets = re.findall(r'href="/command/street/(\d+)/"', html)
    assert streets == [f"44030900{n}" for n in range(1, 7)]
    assert f'href="{COMMUNITY_URL}"' in html
    assert "在办 1 件" in html


DISTRICT_URL = "/command/district/"


def test_the_district_queue_holds_every_street_and_picks_the_districts_own(
    people: Cast, mine: Incident, theirs: Incident
) -> None:
    html = _get(people.district, DISTRICT_URL).content.decode()
    assert set(_queue_numbers(html)) == {mine.number, theirs.number}
    assert "龙华区 区指挥中心" in html
    assert "龙华街道" in html and "大浪街道" in html  # each row names its street
    assert re.findall(r'data-batch-action="([a-z_]+)"', html) == list(AREA_BATCH)
    # 负责层级: the district owns a case as it owns its triage (属地兜底) or an arbitration.
    Incident.objects.filter(pk=theirs.pk).update(owner_level="district", owner_code="440309")
    own = _get(people.district, f"{DISTRICT_URL}?owner=district").content.decode()
    assert _queue_numbers(own) == [theirs.number]
    # The chips count within it, and keep it in their links.
    chip = re.search(r'data-testid="chip-reported".*?class="chip-count">(\d+)<', own, re.S)
    assert chip and chip.group(1) == "1"
    assert "owner=district" in own[own.index('data-testid="queue-chips"') :]
    communities = _get(people.district, f"{DISTRICT_URL}?owner=community").content.decode()
    assert _queue_numbers(communities) == [mine.number]
    refused = _get(people.district, f"{DISTRICT_URL}?owner=city")
    assert refused.status_code == 400
    assert 'data-error-for="owner"' in refused.content.decode()
    assert 'href="/command/district/"' in _get(people.district, "/command/").content.decode()


@pytest.mark.parametrize("who", ["street", "community", "handler", "auditor", "grid_worker"])
def test_only_the_district_opens_the_district_queue(people: Cast, who: str) -> None:
    assert _get(getattr(people, who), DISTRICT_URL).status_code == 404


def test_the_admin_opens_the_district_queue(people: Cast, mine: Incident) -> None:
    assert _queue_numbers(_get(people.admin, DISTRICT_URL).content.decode()) == [mine.number]


@pytest.mark.parametrize("who", ["grid_worker", "auditor", "no_role"])
def test_roles_without_a_console_get_404_from_my_console(people: Cast, who: str) -> None:
    assert _get(getattr(people, who), "/command/").status_code == 404


def test_the_intake_form_carries_categories_channels_and_the_map(people: Cast) -> None:
    html = _get(people.street, INTAKE_URL).content.decode()
    options = re.findall(r'<option value="(\d{5})" data-major=', html)
    assert len(options) == 260 and options[0] == "01001" and FIRE in options
    assert len(re.findall(r"<optgroup ", html)) >= 10
    assert re.findall(r'name="channel" value="([a-z0-9_]+)"', html) == ["hotline_12345", "console"]
    config = _json_script(html, "intake-config")
    assert config["reportUrl"] == "/api/v1/incidents/"
    assert config["place"] == STREET
    assert FIRE in config["emergencies"] and "06010" not in config["emergencies"]
    assert 'src="/static/vendor/leaflet/leaflet.js"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "no CDN, no remote tiles"
    assert "placeholder=" not in html


@pytest.mark.parametrize(
    ("who", "console", "intake"),
    [
        ("street", True, True),
        ("community", True, True),
        ("district", True, True),
        ("handler", True, False),
        ("grid_worker", False, False),
        ("auditor", False, False),
    ],
)
def test_the_header_links_each_role_to_its_screens(
    people: Cast, who: str, console: bool, intake: bool
) -> None:
    html = _get(getattr(people, who), "/map/").content.decode()
    nav = re.search(r'<nav class="nav".*?</nav>', html, re.S)
    assert nav
    assert ('href="/command/"' in nav.group(0)) is console
    assert ('href="/command/intake/"' in nav.group(0)) is intake


def test_the_home_page_links_every_role_to_its_screen(people: Cast) -> None:
    html = _get(people.street, "/").content.decode()
    roles = html[html.index('data-testid="role-screens"') :]
    for url in ("/command/wall/", "/command/", "/command/department/", "/command/intake/", "/m/"):
        assert f'href="{url}"' in roles
    assert 'class="card card-link role-card is-mine" href="/command/"' in roles


def test_pages_carry_no_placeholders(people: Cast, mine: Incident) -> None:
    incident_register(incident=mine, by=people.street)
    for url in (STREET_URL, f"/command/cases/{mine.number}/", INTAKE_URL, "/command/"):
        html = _get(people.street if url != "/command/" else people.district, url)
        assert "placeholder=" not in html.content.decode(), url


def test_the_english_console_is_translated(people: Cast, mine: Incident) -> None:
    client = _client(people.street)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = client.get(STREET_URL).content.decode()
    assert "Search" in html and "Overdue" in html and "搜索" not in html
    case = client.get(f"/command/cases/{mine.number}/").content.decode()
    assert "Register" in case and "立案" not in case.split("<main", 1)[1].split("</main>")[0]

    # The timeline's details and the feedback read as English: ASCII colons, a noun.
    incident_register(incident=mine, by=people.street)
    incident_dispatch(incident=mine, by=people.street, department_code="CGJ")
    incident_accept(incident=mine, by=people.handler)
    incident_feed_back(incident=mine, by=people.handler, feedback="done")
    main = client.get(f"/command/cases/{mine.number}/").content.decode().split("<main", 1)[1]
    assert "<dt>Feedback</dt>" in main
    assert 'class="timeline-detail">Department: CGJ' in main
    assert "：" not in main.split("</main>")[0]


def test_a_case_page_lists_the_responders_sharing_a_position_nearby(
    people: Cast, mine: Incident
) -> None:
    """附近的响应人员: nearest first with the distance, only those the viewer may see, none
    beyond the radius; the map gets the same list."""
    from dispatch.services import responder_position_report
    from tests.incidents.cases import point_in

    lon, lat = mine.location.x, mine.location.y
    responder_position_report(user=people.grid_worker, lon=lon, lat=lat)
    responder_position_report(user=people.handler, lon=lon + 0.0004, lat=lat)  # ≈ 40 m east
    far_lon, far_lat = point_in(OTHER_STREET_GRID)
    responder_position_report(user=people.other_grid_worker, lon=far_lon, lat=far_lat)

    html = _get(people.street, f"/command/cases/{mine.number}/").content.decode()
    panel = html[html.index('data-testid="nearby-responders"') :]
    panel = panel[: panel.index("</section>")]
    listed = [int(pk) for pk in re.findall(r'data-responder="(\d+)"', panel)]
    assert listed[:2] == [people.grid_worker.pk, people.handler.pk]
    assert people.other_grid_worker.pk not in listed  # another street's place or too far
    assert "0 米" in panel
    assert "刚刚" in panel  # the "ago" text, kept fresh by the page's script
    # The script gets the case point, the radius (and the haversine's earth radius), the
    # server's clock and the same list, to keep it live (and draw it on the map).
    found = re.search(r'id="case-nearby-config" type="application/json">(.*?)</script>', html)
    config = json.loads(found.group(1))
    assert [r["id"] for r in config["responders"]] == listed
    assert (config["lon"], config["lat"]) == (lon, lat)
    assert config["radiusM"] == 3000
    assert config["earthRadiusM"] == EARTH_RADIUS_M
    assert config["listUrl"] == "/api/v1/responders/positions/"
    assert config["maxAgeMinutes"] == settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES

    # Community staff of 三联社区 see their community's; an auditor (no place) sees nobody's,
    # and the panel says so.
    html = _get(people.community, f"/command/cases/{mine.number}/").content.decode()
    assert f'data-responder="{people.grid_worker.pk}"' in html
    html = _get(people.auditor, f"/command/cases/{mine.number}/").content.decode()
    assert "data-responder=" not in html
    assert "3 公里内暂无共享位置的网格员或部门人员。" in html
    assert 'id="case-nearby-config" type="application/json">null</script>' in html
