"""POST /api/v1/incidents/: reporting through HTTP, refusals that name the field and store
nothing, mass assignment refused, the body size cap."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Role
from incidents.models import Channel, Incident, IncidentStatus
from tests.incidents.api import LIST, client_for, report_body
from tests.incidents.cases import FIRE, GRID, OTHER_STREET_GRID, make_user

pytestmark = pytest.mark.usefixtures("reference_data")


def test_grid_worker_reports_and_gets_the_case_back(cast):
    response = client_for(cast.grid_worker).post(
        LIST, report_body(reporter_phone="13812341234"), format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    incident = Incident.objects.get(number=body["number"])
    assert body["status"] == IncidentStatus.REPORTED
    assert body["channel"] == Channel.GRID_WORKER
    assert body["category_code"] == "06010"
    assert body["grid_code"] == GRID
    assert body["reporter"] == cast.grid_worker.username
    assert body["reporter_phone"] == "13812341234"  # the reporter sees their own number
    assert [step["action"] for step in body["timeline"]] == ["report"]
    assert body["allowed_actions"] == []  # a grid worker does not register
    assert incident.reporter == cast.grid_worker


@pytest.mark.parametrize("role", ["grid_worker", "street", "district"])
def test_the_201_is_the_case_as_its_detail_shows_it(cast, role):
    """The 201 shows the case as written, without reading it back: the same answer, field for
    field, as GET of the case by the same user (with a phone and an address; a second case of
    the same category close by, so a possible duplicate is listed)."""
    user = getattr(cast, role)
    client = client_for(user)
    first = client.post(LIST, report_body(description="第一次"), format="json")
    assert first.status_code == 201, first.json()
    created = client.post(
        LIST,
        report_body(reporter_phone="13812341234", address="民治大道 1 号", description="又见"),
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    detail = client.get(f"{LIST}{body['number']}/")

    assert detail.status_code == 200
    assert body == detail.json()
    assert [dup["number"] for dup in body["possible_duplicates"]] == [first.json()["number"]]


def test_operators_report_on_the_console_by_default_and_may_name_the_hotline(cast):
    console = client_for(cast.street).post(LIST, report_body(), format="json")
    hotline = client_for(cast.street).post(
        LIST, report_body(channel=Channel.HOTLINE_12345), format="json"
    )

    assert console.status_code == 201 and console.json()["channel"] == Channel.CONSOLE
    assert hotline.status_code == 201 and hotline.json()["channel"] == Channel.HOTLINE_12345


def test_an_emergency_gets_its_default_severity_and_may_be_raised(cast):
    client = client_for(cast.street)
    default = client.post(LIST, report_body(category=FIRE), format="json")
    raised = client.post(LIST, report_body(category=FIRE, severity="II"), format="json")

    assert default.json()["severity"] == "IV"
    assert raised.json()["severity"] == "II"


def _refused(client, body, *, field: str, status: int = 400) -> dict:
    before = Incident.objects.count()
    if isinstance(body, str | bytes):
        response = client.post(LIST, body, content_type="application/json")
    else:
        response = client.post(LIST, body, format="json")
    assert response.status_code == status, response.content[:300]
    assert Incident.objects.count() == before, "nothing is stored on a refusal"
    answer = response.json()
    assert field in answer, answer
    return answer


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lon": "NaN"}, "lon"),
        ({"lat": "Infinity"}, "lat"),
        ({"lon": 200.0}, "lon"),
        ({"lon": None}, "lon"),
        ({"lon": {"x": 1}}, "lon"),
        ({"lon": True}, "lon"),
        ({"crs": "epsg:3857"}, "crs"),
        ({"category": "99999"}, "category"),
        ({"category": ""}, "category"),
        ({"description": ["a", "list"]}, "description"),
        ({"description": "长" * 4001}, "description"),
        ({"severity": "II"}, "severity"),  # not an emergency
        ({"severity": "V"}, "severity"),
        ({"channel": "sensor"}, "channel"),
        ({"channel": "console"}, "channel"),  # a grid worker reports as a grid worker
        ({"reporter_phone": "call me"}, "reporter_phone"),
        ({"client_reported_at": "yesterday"}, "client_reported_at"),
        ({"status": "closed"}, "status"),
        ({"street_code": "440309002"}, "street_code"),
        ({"owner_code": "440309"}, "owner_code"),
        ({"number": "LH-20260101-000001"}, "number"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(cast, change, field):
    _refused(client_for(cast.grid_worker), {**report_body(), **change}, field=field)


def test_mass_assignment_names_every_unknown_field(cast):
    answer = _refused(
        client_for(cast.district),
        {**report_body(), "status": "closed", "street_code": "440309002"},
        field="status",
    )
    assert answer == {"status": ["未知字段。"], "street_code": ["未知字段。"]}


def test_a_nan_literal_in_the_json_names_the_coordinate(cast):
    body = report_body()
    raw = json.dumps(body).replace(json.dumps(body["lon"]), "NaN", 1)
    assert "NaN" in raw
    answer = _refused(client_for(cast.grid_worker), raw, field="lon")
    assert "必须是有限的数字" in answer["lon"][0]


def test_text_is_text_and_a_time_carries_its_zone(cast):
    """A JSON number where text belongs would be stored as its digits ("nan"); a time without
    its zone would be read on the server's clock: both refused, naming the field."""
    raw = json.dumps(report_body() | {"description": 12.5}).replace("12.5", "NaN")
    answer = _refused(client_for(cast.grid_worker), raw, field="description")
    assert answer == {"description": ["不是有效的字符串。"]}
    naive = report_body() | {"client_reported_at": "2026-11-24T09:30:00"}
    answer = _refused(client_for(cast.grid_worker), naive, field="client_reported_at")
    assert answer == {"client_reported_at": ["必须带时区。"]}
    aware = report_body() | {"client_reported_at": "2026-11-24T09:30:00+08:00"}
    assert client_for(cast.grid_worker).post(LIST, aware, format="json").status_code == 201


def test_a_nul_in_text_is_named_in_words_a_reader_understands(cast):
    # Django's own Chinese for its NUL validator reads 不允许是用空字符串 ("empty strings are not
    # allowed", with a typo): locale/zh_Hans says what is wrong.
    body = report_body() | {"description": "路边\x00堆放垃圾"}
    answer = _refused(client_for(cast.grid_worker), body, field="description")
    assert answer == {"description": ["不能包含空字符（NUL）。"]}


def test_swapped_coordinates_are_named(cast):
    body = report_body()
    body["lon"], body["lat"] = body["lat"], body["lon"]
    answer = _refused(client_for(cast.district), body, field="lat")
    assert "经度和纬度似乎填反了" in answer["lat"][0]


def test_a_point_outside_the_district_is_refused_with_its_distance(cast):
    answer = _refused(
        client_for(cast.district), report_body() | {"lon": 113.5, "lat": 22.2}, field="lon"
    )
    assert "lat" in answer and answer["distance_m"] > 1000


def test_a_grid_worker_cannot_report_outside_their_place(cast):
    _refused(
        client_for(cast.grid_worker),
        report_body(grid=OTHER_STREET_GRID),
        field="detail",
        status=403,
    )


def test_an_auditor_does_not_report(cast):
    _refused(client_for(cast.auditor), report_body(), field="detail", status=403)


def test_broken_json_and_a_non_object_body_are_400(cast):
    client = client_for(cast.district)
    _refused(client, '{"category": ', field="detail")
    _refused(client, "[1, 2]", field="non_field_errors")


def test_a_ten_megabyte_body_is_refused_413_and_nothing_is_stored(cast):
    body = json.dumps(report_body(description="x" * 10_000_000))
    answer = _refused(client_for(cast.district), body, field="detail", status=413)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert answer["detail"] == f"请求体过大，最多 {limit} 字节。"


def _browser(user):
    """A client that checks CSRF as a browser's session is checked (APIClient skips it), with
    the token cookie a page of the site sets."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/login/")
    return client, client.cookies["csrftoken"].value


def test_a_pages_oversized_body_is_the_apis_413_not_a_bare_400(cast, settings):
    """The session's CSRF check must not read the body before the view's limits. It did: with
    DEBUG on (the demo) a 3 MB JSON body from a console was answered with Django's HTML 400
    page (without DEBUG the 400 handler turned it into a 413), and a multipart report's photos
    were read before the view set its upload limits."""
    settings.DEBUG = True
    client, token = _browser(cast.district)
    body = json.dumps(report_body(description="x" * 3_000_000))
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    for headers in ({"X-CSRFToken": token}, {}):  # the token in the header, or nowhere
        response = client.post(LIST, body, content_type="application/json", headers=headers)
        assert response.status_code == 413, response.content[:200]
        assert response.json() == {"detail": f"请求体过大，最多 {limit} 字节。"}
    assert not Incident.objects.exists()


def test_a_pages_csrf_token_is_still_checked_from_the_header(cast):
    client, token = _browser(cast.district)
    body = json.dumps(report_body())
    refused = client.post(
        LIST, body, content_type="application/json", headers={"X-CSRFToken": "x" * 32}
    )
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.post(LIST, body, content_type="application/json").status_code == 403
    assert not Incident.objects.exists()
    made = client.post(LIST, body, content_type="application/json", headers={"X-CSRFToken": token})
    assert made.status_code == 201


def test_anonymous_callers_are_refused_and_nothing_is_stored(db):
    # Session authentication without a challenge: DRF answers 403, not 401.
    _refused(client_for(None), report_body(), field="detail", status=403)


def test_a_user_without_a_role_cannot_report(db):
    _refused(client_for(make_user()), report_body(), field="detail", status=403)


def test_a_department_handler_reports_on_the_console(cast):
    handler = make_user(Role.DEPARTMENT_HANDLER, department="CGJ")
    response = client_for(handler).post(LIST, report_body(), format="json")
    assert response.status_code == 201
    assert response.json()["reporter_phone"] == ""
