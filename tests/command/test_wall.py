"""The district wall screen (/command/wall/): screen tokens (issue, open, revoke, what they grant),
who else may look, and the snapshot's figures against a day of known cases — including the
on-time rate, the overdue count and a 督办 — with no personal data in it. The browser side (the
page following the live feed) is tests/e2e/test_wall.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEntry
from command.live import scopes_for_connection
from command.models import ScreenToken
from command.services import (
    SCREEN_TOKEN_SESSION_KEY,
    ScreenTokenError,
    screen_token_authenticate,
    screen_token_issue,
    screen_token_revoke,
    screen_token_scopes,
)
from dispatch.services import plan_activate
from incidents.models import Category, Incident
from incidents.services import (
    incident_accept,
    incident_call_out,
    incident_close,
    incident_confirm_arrival,
    incident_dispatch,
    incident_feed_back,
    incident_handle,
    incident_register,
    incident_reject,
    incident_verify,
)
from incidents.services.escalation import incident_escalate
from tests.incidents.cases import (
    DISTRICT,
    FIRE,
    GRID,
    OTHER_STREET,
    OTHER_STREET_GRID,
    STREET,
    Cast,
    make_cast,
    make_user,
    report,
)
from tests.incidents.clock import at
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

WALL = "/command/wall/"
SNAPSHOT = "/command/wall/snapshot.json"
# A Wednesday with no holiday around it: working hours 08:30–12:00 and 14:00–18:00.
DAY = (2026, 11, 25)


@pytest.fixture
def people() -> Cast:
    return make_cast()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the server's clock (django.utils.timezone.now, which the services, the models'
    auto_now fields and the wall's views read) to a moment on the Longhua wall clock."""
    moment = {"now": timezone.now()}
    monkeypatch.setattr(timezone, "now", lambda: moment["now"])

    def set_to(value: datetime) -> None:
        moment["now"] = value

    return set_to


def _issue(name: str = "指挥大厅主屏") -> str:
    _, raw = screen_token_issue(name=name, district_code=DISTRICT)
    return raw


def _kiosk(raw: str) -> Client:
    client = Client()
    response = client.get(f"{WALL}?token={raw}")
    assert response.status_code == 302
    return client


def _json_script(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"#{element_id} is embedded"
    return json.loads(match.group(1))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- screen tokens -------------------------------------------------------------------------------


def test_a_token_is_stored_as_its_digest_and_its_issue_is_audited():
    token, raw = screen_token_issue(name="指挥大厅主屏", district_code=DISTRICT)
    assert raw.startswith("cw_") and len(raw) > 40
    stored = ScreenToken.objects.filter(pk=token.pk).values().get()
    assert raw not in json.dumps(stored, default=str)
    assert stored["prefix"] == raw[:10]
    assert stored["active"] is True
    assert stored["district_code"] == DISTRICT
    entry = AuditEntry.objects.get(action="command.screen_token_issue")
    assert entry.object_id == str(token.pk)
    assert raw not in json.dumps(entry.after)
    assert screen_token_authenticate(raw) == token
    assert screen_token_authenticate(raw + "x") is None
    assert screen_token_authenticate("") is None


@pytest.mark.parametrize(
    ("name", "district", "field"),
    [
        ("", DISTRICT, "name"),
        ("x" * 101, DISTRICT, "name"),
        ("主屏", STREET, "district"),  # a street is not a district
        ("主屏", "440399", "district"),  # no such district
        ("主屏", "", "district"),
    ],
)
def test_issue_refuses_bad_input_naming_the_field(name, district, field):
    with pytest.raises(ScreenTokenError) as refused:
        screen_token_issue(name=name, district_code=district)
    assert refused.value.field == field
    assert not ScreenToken.objects.exists()


def test_the_command_prints_the_wall_address_once_and_it_opens_the_wall():
    out, err = StringIO(), StringIO()
    call_command(
        "command_issue_screen_token",
        "--name",
        "指挥大厅主屏",
        "--base-url",
        "https://cityops.example.cn/",
        stdout=out,
        stderr=err,
    )
    url = out.getvalue().strip()
    assert url.startswith("https://cityops.example.cn/command/wall/?token=cw_")
    raw = parse_qs(urlsplit(url).query)["token"][0]
    token = ScreenToken.objects.get()
    assert token.district_code == DISTRICT  # the active generation's only district
    assert raw not in err.getvalue()
    assert screen_token_authenticate(raw) == token


def test_opening_the_token_address_keeps_the_token_in_the_session_and_drops_it_from_the_url():
    raw = _issue()
    client = Client()
    response = client.get(f"{WALL}?token={raw}&lang=en")
    assert response.status_code == 302
    assert response["Location"] == WALL
    assert response["Referrer-Policy"] == "no-referrer"
    assert response.cookies["django_language"].value == "en"
    token = ScreenToken.objects.get()
    assert client.session[SCREEN_TOKEN_SESSION_KEY] == token.pk
    assert token.last_seen_at is not None

    page = client.get(WALL)
    assert page.status_code == 200
    html = page.content.decode()
    assert raw not in html
    config = _json_script(html, "wall-config")
    assert config["district"] == DISTRICT
    assert config["scope"] == f"district:{DISTRICT}"
    assert config["kiosk"] is True
    assert "Wall screen" in html  # the English catalogue, chosen by ?lang=en
    snapshot = client.get(SNAPSHOT)
    assert snapshot.status_code == 200
    assert snapshot.json()["district"] == DISTRICT


def test_an_unknown_token_is_refused_and_grants_nothing():
    _issue()
    client = Client()
    response = client.get(f"{WALL}?token=cw_not-a-real-token")
    assert response.status_code == 403
    assert "大屏令牌无效或已停用" in response.content.decode()
    assert SCREEN_TOKEN_SESSION_KEY not in client.session
    refused = client.get(SNAPSHOT)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "请以区指挥中心值班员身份登录，或用大屏令牌打开大屏。",
        "reason": "anonymous",
    }
    refused = client.get(SNAPSHOT, headers={"accept-language": "en"})
    assert refused.json() == {
        "detail": "Sign in as a district command centre operator, or open the wall with a "
        "screen token.",
        "reason": "anonymous",
    }
    assert client.get(WALL)["Location"].startswith("/accounts/login/")


def test_a_revoked_token_is_refused_at_the_next_request_and_socket_connect(people):
    raw = _issue()
    client = _kiosk(raw)
    assert client.get(SNAPSHOT).status_code == 200
    assert screen_token_scopes(client.session) == [f"district:{DISTRICT}"]

    token = ScreenToken.objects.get()
    screen_token_revoke(token=token, by=people.admin)
    token.refresh_from_db()
    assert token.active is False and token.revoked_at is not None
    assert AuditEntry.objects.filter(action="command.screen_token_revoke").count() == 1

    page = client.get(WALL)
    assert page.status_code == 403
    assert "令牌已停用" in page.content.decode()
    refused = client.get(SNAPSHOT)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "此大屏的令牌已停用，请联系系统管理员重新签发。",
        "reason": "revoked",
    }
    assert screen_token_scopes(client.session) == []
    # The address no longer works either.
    assert Client().get(f"{WALL}?token={raw}").status_code == 403
    # Revoking twice changes nothing and audits nothing more.
    screen_token_revoke(token=token)
    assert AuditEntry.objects.filter(action="command.screen_token_revoke").count() == 1


def test_the_admin_lists_tokens_and_revokes_them(people):
    kept, _ = screen_token_issue(name="值班室副屏", district_code=DISTRICT)
    raw = _issue("指挥大厅主屏")
    kiosk = _kiosk(raw)
    token = ScreenToken.objects.get(name="指挥大厅主屏")
    people.admin.is_staff = True
    people.admin.is_superuser = True
    people.admin.save()
    admin = Client()
    admin.force_login(people.admin)
    listing = admin.get("/admin/command/screentoken/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "指挥大厅主屏" in html and "值班室副屏" in html
    assert raw not in html and token.token_hash not in html
    assert admin.get(f"/admin/command/screentoken/{token.pk}/change/").status_code == 200
    assert admin.get("/admin/command/screentoken/add/").status_code == 403
    response = admin.post(
        "/admin/command/screentoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    assert response.status_code == 200
    token.refresh_from_db()
    kept.refresh_from_db()
    assert token.active is False and kept.active is True
    assert kiosk.get(SNAPSHOT).status_code == 403


def test_the_live_feed_gives_a_kiosk_its_district_scope_only(people):
    client = _kiosk(_issue())
    assert scopes_for_connection(AnonymousUser(), client.session) == [f"district:{DISTRICT}"]
    assert scopes_for_connection(AnonymousUser(), Client().session) == []
    assert scopes_for_connection(AnonymousUser(), None) == []
    # A kiosk's browser where a street operator signs in follows both.
    both = scopes_for_connection(people.street, client.session)
    assert both == [f"district:{DISTRICT}", f"street:{STREET}", f"user:{people.street.pk}"]
    screen_token_revoke(token=ScreenToken.objects.get())
    assert scopes_for_connection(AnonymousUser(), client.session) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents/",
        "/command/",
        f"/command/street/{STREET}/",
        "/m/tasks/",
        "/admin/",
    ],
)
def test_a_screen_token_grants_the_wall_and_nothing_else(people, path):
    report()
    client = _kiosk(_issue())
    response = client.get(path)
    assert response.status_code in (302, 403), (path, response.status_code)
    if response.status_code == 302:
        assert "login" in response["Location"]


def test_a_district_operator_may_open_the_wall_of_their_district(people):
    client = Client()
    client.force_login(people.district)
    page = client.get(WALL)
    assert page.status_code == 200
    config = _json_script(page.content.decode(), "wall-config")
    assert config["district"] == DISTRICT and config["kiosk"] is False
    assert client.get(SNAPSHOT).status_code == 200


@pytest.mark.parametrize(
    ("lang", "rubbish", "fire"),
    [("zh-hans", "暴露垃圾", "火灾"), ("en", "Exposed garbage", "Fire")],
)
def test_the_page_names_every_category_in_its_reader_language(lang, rubbish, fire):
    # The snapshot and the feed's events name a case's category in Chinese for every reader;
    # the page brings the names in its own language, by code — switched-off categories too (an
    # open case keeps its category).
    Category.objects.filter(code=FIRE).update(active=False)
    report()
    client = _kiosk(_issue())
    client.get(f"{WALL}?lang={lang}")
    html = client.get(WALL).content.decode()
    names = _json_script(html, "wall-category-names")
    assert names["06010"] == rubbish
    assert names[FIRE] == fire
    assert len(names) == Category.objects.count()
    snapshot = _json_script(html, "wall-snapshot")
    assert snapshot["cases"][0]["category"] == {"code": "06010", "name": "暴露垃圾"}


@pytest.mark.parametrize(
    "role", ["street", "community", "grid_worker", "handler", "auditor", "admin", "no_role"]
)
def test_other_signed_in_users_are_refused(people, role):
    client = Client()
    client.force_login(getattr(people, role))
    assert client.get(WALL).status_code == 403
    assert client.get(SNAPSHOT).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in():
    client = Client()
    response = client.get(WALL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/command/wall/")
    assert client.get(SNAPSHOT).status_code == 403


# --- the snapshot: a day of known cases ----------------------------------------------------------


@pytest.fixture
def day(people: Cast, clock: Callable[[datetime], None]) -> dict[str, Incident]:
    """Cases around DAY (all 06010 暴露垃圾 in 440309001 unless said otherwise: 立案 and 派遣 1
    working hour, 签收 2, 处置 4):

    X  reported the day before at 09:00, never registered: open, overdue since the day before;
    H  reported and closed the day before: no figure of today;
    A  reported 09:00, not registered: overdue at 15:00 (立案 due 10:00);
    B  reported 09:10, registered 09:20: overdue at 15:00 (派遣 due 10:20), escalated at 15:00;
    C  reported 09:30 … accepted 10:00: 处置 due 16:00, not overdue at 15:00;
    D  reported 08:40, closed 09:20, every step in time: closed on time;
    E  reported 08:31, registered 10:00 (due 09:31), closed 10:30: closed late;
    F  reported 11:00, rejected 11:05;
    G  a fire (90001, 突发 Ⅳ) in 440309002 reported 14:00 (立案 due 14:10): overdue at 15:00.
    """
    y, m, d = DAY
    cases: dict[str, Incident] = {}

    def steps_at(case: Incident, moments: list[tuple[int, int]]) -> Incident:
        actions: list[tuple[Callable[..., Incident], dict[str, Any]]] = [
            (incident_register, {"by": people.district}),
            (incident_dispatch, {"by": people.district, "department_code": "CGJ"}),
            (incident_accept, {"by": people.handler}),
            (incident_handle, {"by": people.handler}),
            (incident_feed_back, {"by": people.handler, "feedback": "已清运"}),
            (incident_verify, {"by": people.grid_worker_2, "passed": True}),
            (incident_close, {"by": people.district}),
        ]
        for (service, kwargs), (hour, minute) in zip(actions, moments, strict=False):
            clock(at(y, m, d, hour, minute))
            case = service(incident=case, **kwargs)
        return case

    clock(at(y, m, d - 1, 9, 0))
    cases["X"] = report(
        reporter_name="王秘密", reporter_phone="13800138000", description="楼下垃圾很多"
    )
    clock(at(y, m, d - 1, 9, 30))
    h = report()
    for service, kwargs, minute in (
        (incident_register, {"by": people.district}, 35),
        (incident_dispatch, {"by": people.district, "department_code": "CGJ"}, 40),
        (incident_accept, {"by": people.handler}, 45),
        (incident_feed_back, {"by": people.handler, "feedback": "已清运"}, 50),
        (incident_verify, {"by": people.grid_worker_2, "passed": True}, 55),
    ):
        clock(at(y, m, d - 1, 9, minute))
        h = service(incident=h, **kwargs)
    clock(at(y, m, d - 1, 10, 0))
    cases["H"] = incident_close(incident=h, by=people.district)

    clock(at(y, m, d, 8, 31))
    cases["E"] = report(address="民治大道某小区 3 栋", reporter_email="someone@example.cn")
    clock(at(y, m, d, 8, 40))
    cases["D"] = report(grid=GRID)
    cases["D"] = steps_at(cases["D"], [(8, 45), (8, 50), (8, 55), (9, 0), (9, 5), (9, 10), (9, 20)])
    clock(at(y, m, d, 9, 0))
    cases["A"] = report()
    clock(at(y, m, d, 9, 10))
    cases["B"] = report()
    clock(at(y, m, d, 9, 20))
    cases["B"] = incident_register(incident=cases["B"], by=people.district)
    clock(at(y, m, d, 9, 30))
    cases["C"] = report()
    cases["C"] = steps_at(cases["C"], [(9, 40), (9, 50), (10, 0)])
    cases["E"] = steps_at(
        cases["E"], [(10, 0), (10, 5), (10, 10), (10, 15), (10, 20), (10, 25), (10, 30)]
    )
    clock(at(y, m, d, 11, 0))
    cases["F"] = report()
    clock(at(y, m, d, 11, 5))
    cases["F"] = incident_reject(incident=cases["F"], by=people.district, reason="非城市管理问题")
    clock(at(y, m, d, 14, 0))
    cases["G"] = report(grid=OTHER_STREET_GRID, code=FIRE)
    clock(at(y, m, d, 15, 0))
    cases["B"] = incident_escalate(incident=cases["B"], now=at(y, m, d, 15, 0))
    return cases


def test_the_snapshot_counts_a_known_day(people, day):
    client = Client()
    client.force_login(people.district)
    data = client.get(SNAPSHOT).json()
    number = {key: case.number for key, case in day.items()}

    assert data["kpis"] == {
        "reported": 7,  # A B C D E F G
        "registered": 4,  # B C D E
        "dispatched": 3,  # C D E
        "closed": 2,  # D E
        "on_time": 1,  # D (E was registered late)
        "on_time_rate": 0.5,
        "overdue": 4,  # X A B G
        "escalated": 1,  # B
    }
    assert data["today"]["closed"] == sorted([number["D"], number["E"]])
    assert data["today"]["on_time"] == [number["D"]]
    assert data["today"]["escalated"] == [number["B"]]
    assert data["today"]["registered"] == sorted(number[k] for k in "BCDE")

    by_street = {row["code"]: row for row in data["by_street"]}
    assert [row["code"] for row in data["by_street"]] == [f"{DISTRICT}00{i}" for i in range(1, 7)]
    assert by_street[STREET] == {
        "code": STREET,
        "reported": 6,
        "open": 4,  # X A B C
        "overdue": 3,  # X A B
        "closed": 2,
    }
    assert by_street[OTHER_STREET] == {
        "code": OTHER_STREET,
        "reported": 1,
        "open": 1,
        "overdue": 1,
        "closed": 0,
    }
    assert by_street["440309003"]["open"] == 0

    assert data["by_category"] == [
        {"code": "06010", "name": "暴露垃圾", "count": 6},
        {"code": "90001", "name": "火灾", "count": 1},
    ]
    reported_by_hour = {h: n for h, n in enumerate(data["hourly"]["reported"]) if n}
    closed_by_hour = {h: n for h, n in enumerate(data["hourly"]["closed"]) if n}
    assert reported_by_hour == {8: 2, 9: 3, 11: 1, 14: 1}
    assert closed_by_hour == {9: 1, 10: 1}

    assert [(item["kind"], item["number"]) for item in data["ticker"]] == [
        ("escalated", number["B"]),
        ("reported", number["G"]),
        ("reported", number["F"]),
        ("reported", number["C"]),
        ("reported", number["B"]),
        ("reported", number["A"]),
        ("reported", number["D"]),
        ("reported", number["E"]),
    ]
    assert data["ticker"][0]["to"] == "street"

    # The map: open cases and those that changed today; H (closed the day before) is not drawn.
    drawn = {case["number"]: case for case in data["cases"]}
    assert set(drawn) == {number[k] for k in "XABCDEFG"}
    assert drawn[number["G"]]["severity"] == "IV"
    assert drawn[number["B"]]["escalations"] == 1
    assert drawn[number["B"]]["owner"] == {"level": "street", "code": STREET}
    assert drawn[number["C"]]["stage"] == "handle"
    assert _moment(drawn[number["C"]]["stage_deadline"]) == at(*DAY, 16, 0)
    assert _moment(drawn[number["D"]]["closed_at"]) == at(*DAY, 9, 20)

    assert _moment(data["day"]["start"]) == at(*DAY, 0, 0)
    assert _moment(data["day"]["end"]) == at(2026, 11, 26, 0, 0)
    assert _moment(data["generated_at"]) == at(*DAY, 15, 0)
    assert data["seqs"][f"district:{DISTRICT}"] > 0
    assert {street["code"] for street in data["streets"]} == set(by_street)
    assert data["communities"]["440309001001"]


def test_the_day_starts_again_at_midnight(people, day, clock):
    y, m, d = DAY
    clock(at(y, m, d + 1, 0, 5))
    client = Client()
    client.force_login(people.district)
    data = client.get(SNAPSHOT).json()
    assert data["kpis"]["reported"] == 0
    assert data["kpis"]["closed"] == 0
    assert data["kpis"]["on_time_rate"] is None
    assert data["kpis"]["overdue"] == 5  # X A B G, and C's 处置 limit (16:00) has passed
    assert {case["number"] for case in data["cases"]} == {
        day[k].number for k in "XABCG"
    }  # only the open ones remain


def test_the_snapshot_and_the_page_carry_no_personal_data(people, day):
    client = _kiosk(_issue())
    for response in (client.get(SNAPSHOT), client.get(WALL)):
        assert response.status_code == 200
        body = response.content.decode()
        for secret in (
            "王秘密",
            "13800138000",
            "138****8000",
            "楼下垃圾很多",
            "路边堆放垃圾",  # the factory's description
            "民治大道某小区",
            "someone@example.cn",
            "已清运",  # feedback text
            "非城市管理问题",  # a reason
        ):
            assert secret not in body, secret
    data = client.get(SNAPSHOT).json()
    assert set(data["cases"][0]) == {
        "number",
        "status",
        "category",
        "severity",
        "location",
        "street",
        "community",
        "grid",
        "triage",
        "owner",
        "stage",
        "stage_deadline",
        "stage_warned",
        "escalations",
        "created_at",
        "closed_at",
        "department",
        "supports",
        "supports_arrived",
        "plan",
        "response_at",
    }


def test_the_snapshot_carries_responses_and_the_page_names_plans_and_departments(people, clock):
    # A Ⅲ fire: FIRE-III dispatches it to 消防 and calls out five departments at 10:00; 交警
    # confirms its arrival; at 10:20 the centre calls 城管 out by hand as well. A rubbish case
    # has no response.
    clock(at(*DAY, 10, 0))
    fire = report(code=FIRE, severity="III")
    fire = plan_activate(incident=fire, plan_code="FIRE-III", by=people.district)
    clock(at(*DAY, 10, 5))
    fire = incident_confirm_arrival(
        incident=fire, by=make_user(Role.DEPARTMENT_HANDLER, department="JJ")
    )
    clock(at(*DAY, 10, 20))
    fire = incident_call_out(incident=fire, by=people.district, supports=["CGJ"])
    rubbish = report()

    client = _kiosk(_issue())
    cases = {case["number"]: case for case in client.get(SNAPSHOT).json()["cases"]}
    response = cases[fire.number]
    assert response["plan"] == "FIRE-III"
    assert response["department"] == "XF"
    assert response["supports"] == ["YJGLJ", "JD", "JJ", "WJJ", "GA", "CGJ"]
    assert response["supports_arrived"] == ["JJ"]
    assert _moment(response["response_at"]) == at(*DAY, 10, 0)  # the first call-out
    quiet = cases[rubbish.number]
    assert (quiet["plan"], quiet["supports"], quiet["response_at"]) == (None, [], None)

    client.get(f"{WALL}?lang=zh-hans")
    names = _json_script(client.get(WALL).content.decode(), "wall-response-names")
    assert names["plans"]["FIRE-III"] == {"name": "火灾较大及以上响应", "severity": "III"}
    assert names["departments"]["XF"] == "消防"
    client.get(f"{WALL}?lang=en")
    names = _json_script(client.get(WALL).content.decode(), "wall-response-names")
    assert names["plans"]["FIRE-III"]["name"] == "Fire: major response"
    assert names["departments"]["JJ"] == "Traffic Police"


def test_the_snapshot_reads_the_feed_position_before_the_data(people, clock):
    client = Client()
    client.force_login(people.district)
    first = client.get(SNAPSHOT).json()
    report()
    second = client.get(SNAPSHOT).json()
    scope = f"district:{DISTRICT}"
    assert second["seqs"][scope] == first["seqs"][scope] + 1
    assert second["kpis"]["reported"] == first["kpis"]["reported"] + 1


@pytest.fixture(autouse=True)
def _no_cached_geography() -> Iterator[None]:
    from command.views import wall

    wall._geography.cache_clear()
    yield
    wall._geography.cache_clear()


@pytest.mark.parametrize(
    "path",
    [
        "command/wall.js",
        "command/wall.css",
        "realtime/live.js",
        "vendor/leaflet/leaflet.js",
        "vendor/leaflet.markercluster/leaflet.markercluster.js",
        "vendor/leaflet.markercluster/MarkerCluster.css",
        "vendor/echarts/echarts.min.js",
    ],
)
def test_the_wall_assets_are_found_by_the_static_finders(path):
    assert finders.find(path), path
