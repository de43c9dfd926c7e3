"""Open311 GeoReport v2 over real HTTP: urllib against pytest-django's live server (a thread
serving the committed database), in JSON and in XML (parsed, not string-matched).

Covers service discovery, the services list and definitions, POST with and without a usable
key, every refusal (spec error format, nothing stored), the GET filters and the paging extension,
one request, and what the public may never read: names, phone numbers, e-mail addresses, and
other channels' descriptions (ADR 0009).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.throttling import AnonRateThrottle

from accounts.models import Role
from accounts.services import api_key_issue, api_key_revoke
from gridmap.crs import wgs84_to_gcj02
from incidents import services
from incidents.models import Category, Channel, Incident, IncidentStatus, Stage, StageLimit
from incidents.open311 import selectors
from incidents.open311.serializers import INTERFACE_CHANGED
from tests.incidents.cases import (
    DISTRICT,
    FIRE,
    GRID,
    OTHER_STREET_GRID,
    RUBBISH,
    make_user,
    point_in,
    report,
    trail,
)

pytestmark = pytest.mark.usefixtures("committed_demo_geography", "reference_data")

BASE = "/open311/v2/"
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
EN = {"Accept-Language": "en"}  # refusals in English (Chinese without it)
ROAD_DIRT = "06012"  # 道路不洁, CGJ
FAR_LON, FAR_LAT = 114.20, 22.62  # ~9 km east of the district

REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "lat",
    "long",
    "media_url",
]
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]


@dataclass
class Reply:
    status: int
    content_type: str
    headers: Any
    body: bytes

    def json(self) -> Any:
        assert self.content_type == JSON_TYPE, self.content_type
        return json.loads(self.body.decode("utf-8"))

    def xml(self) -> ElementTree.Element:
        assert self.content_type == XML_TYPE, self.content_type
        assert self.body.startswith(XML_DECLARATION), self.body[:60]
        return ElementTree.fromstring(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Http:
    """A real HTTP client (urllib) against the live server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | list[tuple[str, str]] | None = None,
        form: dict[str, Any] | list[tuple[str, str]] | None = None,
        json_body: Any = None,
        raw_body: bytes | None = None,
        content_type: str = "",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        url = self.base_url + BASE + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = raw_body
        all_headers = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode("utf-8")
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if content_type:
            all_headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(
                    response.status,
                    response.headers["Content-Type"],
                    response.headers,
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers["Content-Type"], error.headers, error.read())

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.call("POST", path, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_throttle_history() -> Any:
    # The anonymous throttle counts per client address in the cache; every request here comes
    # from 127.0.0.1, so start (and leave) each test with a clean history.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def http(live_server: Any) -> Http:
    return Http(live_server.url)


@pytest.fixture
def integration() -> Any:
    return make_user(Role.INTEGRATION, first_name="市民通", last_name="App")


@pytest.fixture
def key(integration: Any) -> str:
    return api_key_issue(user=integration, name="市民通 app", channels=["open311"])[1]


def _errors_json(reply: Reply, status: int) -> list[str]:
    """The descriptions of a spec-format error answer (checking its shape)."""
    assert reply.status == status, (reply.status, reply.body[:500])
    errors = reply.json()
    assert isinstance(errors, list) and errors
    for error in errors:
        assert set(error) == {"code", "description"}
        assert error["code"] == status
    return [error["description"] for error in errors]


def _errors_xml(reply: Reply, status: int) -> list[str]:
    assert reply.status == status, (reply.status, reply.body[:500])
    root = reply.xml()
    assert root.tag == "errors"
    errors = list(root)
    assert errors and all(error.tag == "error" for error in errors)
    for error in errors:
        assert [child.tag for child in error] == ["code", "description"]
        assert error.findtext("code") == str(status)
    return [error.findtext("description") or "" for error in errors]


def _form(key: str, **extra: Any) -> dict[str, Any]:
    lon, lat = point_in(GRID)
    return {"api_key": key, "service_code": RUBBISH, "lat": lat, "long": lon, **extra}


def _xml_records(root: ElementTree.Element, item: str) -> list[dict[str, str]]:
    return [{child.tag: child.text or "" for child in node} for node in root.iter(item)]


# --- services ------------------------------------------------------------------------------------


def test_services_list_the_active_categories_in_json_and_xml(http):
    Category.objects.filter(code="06001").update(active=False)  # 私搭乱建, retired here
    active = Category.objects.filter(active=True)

    listed = http.get("services.json")
    assert listed.status == 200
    services_json = listed.json()
    assert [s["service_code"] for s in services_json] == list(
        active.order_by("code").values_list("code", flat=True)
    )
    assert "06001" not in {s["service_code"] for s in services_json}
    rubbish = next(s for s in services_json if s["service_code"] == RUBBISH)
    category = Category.objects.get(code=RUBBISH)
    assert list(rubbish) == SERVICE_FIELDS
    assert rubbish["service_name"] == category.name == "暴露垃圾"
    assert rubbish["group"] == category.major_name
    assert rubbish["metadata"] is False
    assert rubbish["type"] == "realtime"
    assert category.major_name in rubbish["keywords"]
    assert "处置时限 4 工作时" in rubbish["description"]  # the sourced limit of 06010
    fire = next(s for s in services_json if s["service_code"] == FIRE)
    assert "119" in fire["description"]

    as_xml = http.get("services.xml")
    assert as_xml.status == 200
    root = as_xml.xml()
    assert root.tag == "services"
    assert all(node.tag == "service" for node in root)
    records = _xml_records(root, "service")
    assert [r["service_code"] for r in records] == [s["service_code"] for s in services_json]
    rubbish_xml = next(r for r in records if r["service_code"] == RUBBISH)
    assert list(rubbish_xml) == SERVICE_FIELDS
    assert rubbish_xml["metadata"] == "false"
    assert rubbish_xml["service_name"] == "暴露垃圾"
    assert rubbish_xml["description"] == rubbish["description"]


def test_services_and_requests_name_the_category_in_english_when_the_client_asks(http):
    """GeoReport has no language: names are Chinese, or English for Accept-Language: en."""
    services_en = {s["service_code"]: s for s in http.get("services.json", headers=EN).json()}
    rubbish = services_en[RUBBISH]
    assert (rubbish["service_name"], rubbish["group"]) == (
        "Exposed garbage",
        "City appearance and environment",
    )
    assert "06 City appearance and environment · Exposed garbage" in rubbish["description"]
    cover = services_en["01001"]
    assert cover["service_name"] == "Water supply manhole cover problem"
    assert cover["keywords"] == ("部件 component, Municipal utilities, Water supply manhole cover")
    records = _xml_records(http.get("services.xml", headers=EN).xml(), "service")
    assert next(r for r in records if r["service_code"] == RUBBISH)["service_name"] == (
        "Exposed garbage"
    )
    services_zh = {s["service_code"]: s for s in http.get("services.json").json()}
    assert (services_zh[RUBBISH]["service_name"], services_zh[RUBBISH]["group"]) == (
        "暴露垃圾",
        "市容环境类",
    )
    assert services_zh["01001"]["keywords"] == "部件 component, 市政公用设施, 供水井盖"

    case = report(channel=Channel.OPEN311)
    (english,) = http.get(f"requests/{case.number}.json", headers=EN).json()
    assert english["service_name"] == "Exposed garbage"
    (chinese,) = http.get(f"requests/{case.number}.json").json()
    assert chinese["service_name"] == "暴露垃圾"


def test_a_service_definition_has_no_attributes_and_an_unknown_code_is_404(http):
    definition = http.get(f"services/{RUBBISH}.json")
    assert definition.status == 200
    assert definition.json() == {"service_code": RUBBISH, "attributes": []}

    as_xml = http.get(f"services/{RUBBISH}.xml").xml()
    assert as_xml.tag == "service_definition"
    assert [child.tag for child in as_xml] == ["service_code", "attributes"]
    assert as_xml.findtext("service_code") == RUBBISH
    assert list(as_xml.find("attributes")) == []  # type: ignore[arg-type]

    (missing,) = _errors_json(http.get("services/99999.json"), 404)
    assert missing == "service_code：“99999”不是服务代码。"
    (missing_xml,) = _errors_xml(http.get("services/99999.xml", headers=EN), 404)
    assert missing_xml == "service_code: “99999” is not a service code."
    Category.objects.filter(code=ROAD_DIRT).update(active=False)
    _errors_json(http.get(f"services/{ROAD_DIRT}.json"), 404)


def test_an_unknown_format_is_not_served(http):
    assert http.get("services.html").status == 404
    assert http.get("services").status == 404


# --- service discovery ---------------------------------------------------------------------------

DISCOVERY_FIELDS = ["changeset", "contact", "key_service", "endpoints"]
ENDPOINT_FIELDS = ["specification", "url", "changeset", "type", "formats"]
EXTENSION = {"application/json": "json", "text/xml": "xml"}


def test_discovery_names_the_endpoint_in_json_and_xml(http):
    reply = http.get("discovery.json")
    assert reply.status == 200, reply.body
    document = reply.json()
    assert list(document) == DISCOVERY_FIELDS
    assert "accounts_issue_api_key" in document["key_service"]
    assert "open311" in document["key_service"]
    assert "CityOps" in document["contact"]
    (endpoint,) = document["endpoints"]
    assert list(endpoint) == ENDPOINT_FIELDS
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["type"] == "production"
    assert endpoint["formats"] == ["application/json", "text/xml"]
    assert endpoint["changeset"] == document["changeset"]
    # Absolute, built from the request (the live server's address), at the endpoint's base.
    assert endpoint["url"] == http.base_url + "/open311/v2"
    assert urllib.parse.urlsplit(endpoint["url"]).scheme == "http"
    # A client appends the method and the format: every format listed really answers.
    for media_type in endpoint["formats"]:
        for method in ("services", "requests", "discovery"):
            url = f"{endpoint['url']}/{method}.{EXTENSION[media_type]}"
            with urllib.request.urlopen(url, timeout=60) as response:
                assert response.status == 200, url
                assert response.headers["Content-Type"] == f"{media_type}; charset=utf-8"

    as_xml = http.get("discovery.xml")
    assert as_xml.status == 200, as_xml.body
    root = as_xml.xml()
    assert root.tag == "discovery"
    assert [child.tag for child in root] == DISCOVERY_FIELDS
    for field in ("changeset", "contact", "key_service"):
        assert root.findtext(field) == document[field]
    endpoints = root.find("endpoints")
    assert endpoints is not None
    (node,) = list(endpoints)
    assert node.tag == "endpoint"
    assert [child.tag for child in node] == ENDPOINT_FIELDS
    for field in ("specification", "url", "changeset", "type"):
        assert node.findtext(field) == endpoint[field]
    formats = node.find("formats")
    assert formats is not None
    assert [(child.tag, child.text) for child in formats] == [
        ("format", "application/json"),
        ("format", "text/xml"),
    ]


def test_discovery_changeset_is_the_last_change_to_the_services(http):
    def changeset() -> datetime:
        document = http.get("discovery.json").json()
        assert document["endpoints"][0]["changeset"] == document["changeset"]
        return datetime.fromisoformat(document["changeset"])

    # The catalogue was loaded for this test: its newest category row is the last change.
    newest = Category.objects.order_by("-updated_at").values_list("updated_at", flat=True)[0]
    assert changeset() == newest.replace(microsecond=0)

    # Services unchanged since before this interface was released: the release date.
    Category.objects.update(updated_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert changeset() == INTERFACE_CHANGED

    # An administrator edits a handling limit (in every service's description).
    limit = StageLimit.objects.get(category__code=RUBBISH, stage=Stage.HANDLE)
    limit.amount += 1
    limit = services.stage_limit_save(limit=limit, changed=["amount"])
    assert limit.edited_at is not None
    assert changeset() == limit.edited_at.replace(microsecond=0)

    # A category retired later than that.
    later = limit.edited_at + timedelta(minutes=5)
    Category.objects.filter(code=ROAD_DIRT).update(active=False, updated_at=later)
    assert changeset() == later.replace(microsecond=0)


# --- POST requests -------------------------------------------------------------------------------


def test_post_form_encoded_creates_an_open311_case(http, key, integration):
    lon, lat = point_in(GRID)
    reply = http.post(
        "requests.json",
        form={
            "api_key": key,
            "jurisdiction_id": "longhua",
            "service_code": RUBBISH,
            "lat": str(lat),
            "long": str(lon),
            "address_string": "龙华大道 1 号东侧",
            "email": "zhang.san@example.com",
            "device_id": "device-42",
            "account_id": "acct-7",
            "first_name": "三",
            "last_name": "张",
            "phone": "13812341234",
            "description": "人行道上堆了三袋垃圾 <b> & 'quotes'",
            "media_url": "https://img.example.com/photos/42.jpg",
            "attribute[WHEN]": "today",  # attributes are not defined: ignored
        },
    )
    assert reply.status == 201, reply.body
    (created,) = reply.json()
    assert list(created) == ["service_request_id", "service_notice", "account_id"]
    assert created["account_id"] is None
    case = Incident.objects.get(number=created["service_request_id"])
    assert "处置时限 4 工作时" in created["service_notice"]
    assert case.number in created["service_notice"]

    assert case.channel == Channel.OPEN311
    assert case.reporter_id == integration.pk
    assert case.category.code == RUBBISH
    assert case.grid_code == GRID
    assert case.status == IncidentStatus.REPORTED
    assert case.reporter_name == "张三"
    assert case.reporter_phone == "13812341234"
    assert case.reporter_email == "zhang.san@example.com"
    assert case.address == "龙华大道 1 号东侧"
    assert case.source_ref == "device-42"
    # The media URL is recorded (on the description's last line), never fetched.
    assert case.description == (
        "人行道上堆了三袋垃圾 <b> & 'quotes'\n\n媒体链接 media_url: https://img.example.com/photos/42.jpg"
    )
    assert trail(case) == (1, 1, 1)  # timeline row, audit entry, outbox event


def test_post_json_and_xml_answers(http, key):
    as_json = http.post("requests.json", json_body=_form(key, description="路口有垃圾"))
    assert as_json.status == 201, as_json.body
    number = as_json.json()[0]["service_request_id"]
    assert Incident.objects.get(number=number).description == "路口有垃圾"

    as_xml = http.post("requests.xml", form=_form(key))
    assert as_xml.status == 201, as_xml.body
    root = as_xml.xml()
    assert root.tag == "service_requests"
    (request,) = list(root)
    assert request.tag == "request"
    assert [child.tag for child in request] == [
        "service_request_id",
        "service_notice",
        "account_id",
    ]
    assert request.findtext("account_id") == ""
    assert Incident.objects.filter(number=request.findtext("service_request_id")).exists()
    assert Incident.objects.filter(channel=Channel.OPEN311).count() == 2


def test_post_takes_gcj02_points_from_chinese_map_sdks(http, key):
    lon, lat = point_in(GRID)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    reply = http.post("requests.json", form=_form(key, lat=gcj_lat, long=gcj_lon, crs="gcj02"))
    assert reply.status == 201, reply.body
    case = Incident.objects.get(number=reply.json()[0]["service_request_id"])
    assert case.raw_crs == "gcj02"
    assert case.grid_code == GRID
    assert case.location.x == pytest.approx(lon, abs=1e-5)
    (bad,) = _errors_json(http.post("requests.json", form=_form(key, crs="utm")), 400)
    assert bad.startswith("crs：")


def test_post_refuses_missing_wrong_revoked_and_foreign_keys(http, integration):
    good, raw = api_key_issue(user=integration, name="revoked later", channels=["open311"])
    sensor_only = api_key_issue(user=integration, name="sensors", channels=["sensor"])[1]
    body = _form("")
    del body["api_key"]

    (missing,) = _errors_json(http.post("requests.json", form=body), 403)
    assert missing == "api_key：创建服务请求需要接口密钥。"
    (wrong,) = _errors_json(http.post("requests.json", form=_form("co_not-a-key")), 403)
    assert wrong == "api_key：密钥不存在或已停用。"
    (foreign,) = _errors_xml(http.post("requests.xml", form=_form(sensor_only), headers=EN), 403)
    assert foreign == "api_key: This key may not report on the open311 channel."

    assert http.post("requests.json", form=_form(raw)).status == 201
    api_key_revoke(key=good)
    (revoked,) = _errors_json(http.post("requests.json", form=_form(raw), headers=EN), 403)
    assert revoked == "api_key: Unknown or revoked key."

    other_user = make_user(Role.INTEGRATION)
    other_raw = api_key_issue(user=other_user, name="x", channels=["open311", "sensor"])[1]
    other_user.is_active = False
    other_user.save(update_fields=["is_active"])
    _errors_json(http.post("requests.json", form=_form(other_raw)), 403)

    assert Incident.objects.count() == 1  # only the one made while the key was good


def test_post_is_never_session_authenticated_and_needs_no_csrf_token(http, key):
    operator = make_user(Role.DISTRICT_OPERATOR, DISTRICT)
    browser = Client()
    browser.force_login(operator)
    cookie = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}

    body = _form("")
    del body["api_key"]
    (refused,) = _errors_json(http.post("requests.json", form=body, headers=cookie), 403)
    assert refused.startswith("api_key：")  # the session counts for nothing (not a CSRF page)
    assert Incident.objects.count() == 0

    created = http.post("requests.json", form=_form(key), headers=cookie)
    assert created.status == 201  # no CSRF token, no Referer: a key-authenticated machine
    case = Incident.objects.get()
    assert case.reporter.role == Role.INTEGRATION  # the key's account, not the session's user


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service_code": ""}, "service_code"),
        ({"service_code": "12345"}, "service_code"),
        ({"service_code": "垃圾"}, "service_code"),
        ({"lat": "abc"}, "lat"),
        ({"lat": "NaN"}, "lat"),
        ({"long": "Infinity"}, "long"),
        ({"lat": "95"}, "lat"),
        ({"email": "not-an-address"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"media_url": "ftp://files.example.com/a.jpg"}, "media_url"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"description": "长" * 4001}, "description"),
        ({"address_string": "路" * 201}, "address_string"),
        ({"device_id": "d" * 101}, "device_id"),
        ({"first_name": "名" * 30, "last_name": "姓" * 30}, "last_name"),
        ({"lat": str(FAR_LAT), "long": str(FAR_LON)}, "lat/long"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(http, key, change, field):
    body = {k: str(v) for k, v in _form(key, **change).items()}
    descriptions = _errors_json(http.post("requests.json", form=body), 400)
    assert any(d.startswith(f"{field}：") for d in descriptions), descriptions
    assert Incident.objects.count() == 0


def test_an_address_alone_cannot_be_located(http, key):
    body = _form(key, address_string="龙华区龙华街道三联社区 龙华大道 1 号")
    del body["lat"], body["long"]
    descriptions = _errors_xml(http.post("requests.xml", form=body), 400)
    assert [d.split("：")[0] for d in descriptions] == ["lat", "long"]
    assert "仅凭地址无法定位" in descriptions[0]
    in_english = _errors_xml(http.post("requests.xml", form=body, headers=EN), 400)
    assert [d.split(": ")[0] for d in in_english] == ["lat", "long"]
    assert "an address alone cannot be located" in in_english[0]
    assert Incident.objects.count() == 0


def test_refusals_of_the_body_itself(http, key):
    (array,) = _errors_json(http.post("requests.json", json_body=[{"api_key": key}]), 403)
    assert array.startswith("api_key：")
    (method,) = _errors_xml(http.call("PUT", "requests.xml", form=_form(key), headers=EN), 405)
    assert method == "method: PUT is not allowed here; use GET, POST."
    _errors_json(http.post("services.json", form=_form(key)), 405)
    huge = _form(key, description="长" * 1_000_000)  # 9 MB once percent-encoded
    (too_big,) = _errors_json(http.post("requests.json", form=huge), 413)
    assert too_big.startswith("body：请求体过大")
    lon, lat = point_in(GRID)
    nan_json = (
        f'{{"api_key": "{key}", "service_code": "{RUBBISH}", "lat": NaN, "long": {lon}}}'
    ).encode()
    (nan,) = _errors_json(
        http.post("requests.json", raw_body=nan_json, content_type="application/json"), 400
    )
    assert nan.startswith("lat") and "必须是有限的数字" in nan
    (malformed,) = _errors_json(
        http.post("requests.json", raw_body=b'{"api_key": ', content_type="application/json"),
        400,
    )
    assert malformed.startswith("body：")
    (plain,) = _errors_json(
        http.post("requests.json", raw_body=b"api_key=x", content_type="text/plain"), 415
    )
    assert plain == (
        "Content-Type：不接受“text/plain”；请发送 application/x-www-form-urlencoded"
        "（或 application/json）。"
    )
    twice = [("api_key", key), ("service_code", RUBBISH), ("service_code", ROAD_DIRT)]
    twice += [("lat", str(lat)), ("long", str(lon))]
    (repeated,) = _errors_json(http.post("requests.json", form=twice), 400)
    assert repeated == "service_code：出现了 2 次，只能发送一次。"
    Category.objects.filter(code=ROAD_DIRT).update(active=False)
    (inactive,) = _errors_json(
        http.post("requests.json", form=_form(key, service_code=ROAD_DIRT)), 400
    )
    assert inactive.startswith("service_code：")
    assert Incident.objects.count() == 0


# --- GET requests --------------------------------------------------------------------------------


@dataclass
class World:
    mine: Incident  # open311, with a description and a media URL
    citizen: Incident  # another channel: description and reporter are private
    dispatched: Incident  # registered and dispatched to CGJ
    rejected: Incident  # open311, another category, rejected: closed
    merged: Incident  # merged into `mine`: closed
    old: Incident  # received 100 days ago
    private: tuple[str, ...]  # strings that must never appear in a public answer


def _world(http: Http, key: str) -> World:
    operator = make_user(Role.DISTRICT_OPERATOR, DISTRICT)
    created = http.post(
        "requests.json",
        form=_form(
            key,
            description="井边垃圾 <满溢> & 异味",
            media_url="https://img.example.com/a.jpg",
            first_name="Jane",
            last_name="Roe",
            phone="13900001111",
            email="jane.roe@example.com",
            device_id="dev-secret-1",
            account_id="acct-secret-2",
            address_string="龙华大道 8 号",
        ),
    )
    assert created.status == 201, created.body
    mine = Incident.objects.get(number=created.json()[0]["service_request_id"])
    citizen = report(
        channel=Channel.CITIZEN,
        reporter_name="李四",
        reporter_phone="13712345678",
        reporter_email="lisi@example.com",
        description="李四说王五家门口堆放垃圾",
        address="王五家楼下",
    )
    dispatched = report(grid=OTHER_STREET_GRID, channel=Channel.HOTLINE_12345)
    dispatched = services.incident_register(incident=dispatched, by=operator)
    dispatched = services.incident_dispatch(incident=dispatched, by=operator, department_code="CGJ")
    rejected = report(code=ROAD_DIRT, channel=Channel.OPEN311, description="路面脏")
    rejected = services.incident_reject(incident=rejected, by=operator, reason="已处理，非案件")
    merged = report(channel=Channel.OPEN311, description="同一处垃圾")
    merged = services.incident_merge(incident=merged, into=mine, by=operator, reason="重复")
    old = report(channel=Channel.CITIZEN, description="旧案")
    Incident.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=100))
    old.refresh_from_db()
    return World(
        mine=mine,
        citizen=citizen,
        dispatched=dispatched,
        rejected=rejected,
        merged=merged,
        old=old,
        private=(
            "Jane",
            "Roe",
            "13900001111",
            "jane.roe@example.com",
            "dev-secret-1",
            "acct-secret-2",
            "李四",
            "13712345678",
            "lisi@example.com",
            "王五",
            "已处理，非案件",  # a reject reason is the operator's note
            "市民通",  # the integration account's name
        ),
    )


def _numbers(reply: Reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [r["service_request_id"] for r in reply.json()]


def test_get_requests_and_its_filters(http, key):
    world = _world(http, key)
    recent = [world.merged, world.rejected, world.dispatched, world.citizen, world.mine]

    assert _numbers(http.get("requests.json")) == [case.number for case in recent]
    assert set(_numbers(http.get("requests.json", query={"status": "closed"}))) == {
        world.rejected.number,
        world.merged.number,
    }
    assert set(_numbers(http.get("requests.json", query={"status": "open"}))) == {
        world.mine.number,
        world.citizen.number,
        world.dispatched.number,
    }
    assert len(_numbers(http.get("requests.json", query={"status": "open,closed"}))) == 5
    assert _numbers(http.get("requests.json", query={"service_code": ROAD_DIRT})) == [
        world.rejected.number
    ]
    assert (
        len(_numbers(http.get("requests.json", query={"service_code": f"{ROAD_DIRT},{RUBBISH}"})))
        == 5
    )
    # service_request_id overrides every other argument (the spec).
    ids = f"{world.mine.number},{world.old.number},LH-19990101-000001"
    assert set(
        _numbers(http.get("requests.json", query={"service_request_id": ids, "status": "closed"}))
    ) == {world.mine.number, world.old.number}

    # A window around the old case, in UTC and with an offset (a raw "+" arrives as a space).
    start = timezone.localtime(world.old.created_at) - timedelta(hours=1)
    end = start + timedelta(hours=2)
    utc = {
        "start_date": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": end.isoformat(timespec="seconds"),
    }
    assert _numbers(http.get("requests.json", query=utc)) == [world.old.number]
    raw_plus = (
        http.base_url
        + BASE
        + (
            f"requests.json?start_date={start.isoformat(timespec='seconds')}"
            f"&end_date={end.isoformat(timespec='seconds')}"
        )
    )
    with urllib.request.urlopen(raw_plus, timeout=60) as response:
        assert [r["service_request_id"] for r in json.loads(response.read())] == [world.old.number]
    # Only a start: 90 days from it; only an end: the 90 days before it.
    only_start = {"start_date": start.isoformat(timespec="seconds")}
    assert set(_numbers(http.get("requests.json", query=only_start))) == {world.old.number}
    only_end = {"end_date": end.isoformat(timespec="seconds")}
    assert _numbers(http.get("requests.json", query=only_end)) == [world.old.number]

    # The second a request was received, as shown, finds it (answers show whole seconds).
    (shown,) = http.get(f"requests/{world.mine.number}.json").json()
    same_second = {
        "start_date": shown["requested_datetime"],
        "end_date": shown["requested_datetime"],
    }
    assert world.mine.number in _numbers(http.get("requests.json", query=same_second))

    # XML carries the same list.
    root = http.get("requests.xml").xml()
    assert root.tag == "service_requests"
    assert [r["service_request_id"] for r in _xml_records(root, "request")] == [
        case.number for case in recent
    ]


def test_get_requests_refuses_bad_filters(http):
    for query, field in [
        ({"status": "pending"}, "status"),
        ({"service_code": "12345"}, "service_code"),
        ({"service_code": "abc"}, "service_code"),
        ({"start_date": "2026-03-01"}, "start_date"),
        ({"start_date": "2026-03-01T00:00:00"}, "start_date"),  # no time zone
        ({"end_date": "2026-13-01T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-03-02T00:00:00Z", "end_date": "2026-03-01T00:00:00Z"}, "end_date"),
    ]:
        (description,) = _errors_json(http.get("requests.json", query=query), 400)
        assert description.startswith(f"{field}："), (query, description)
    (as_xml,) = _errors_xml(http.get("requests.xml", query={"status": "x"}), 400)
    assert as_xml == "status：“x”不是 open 或 closed。"


def test_get_requests_returns_at_most_the_limit_newest_first(http, monkeypatch):
    cases = [report(description=f"第{n}处") for n in range(3)]
    monkeypatch.setattr(selectors, "MAX_REQUESTS", 2)
    assert _numbers(http.get("requests.json")) == [cases[2].number, cases[1].number]


# --- the paging extension: page, page_size -------------------------------------------------------


def _cases_with_ties() -> list[Incident]:
    """Seven cases, newest first as the list orders them: four received in the same instant
    (ties, broken by the later row first), then three an hour apart."""
    cases = [report(description=f"第{n}处") for n in range(7)]
    moment = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    tied = [case.pk for case in cases[3:]]
    Incident.objects.filter(pk__in=tied).update(created_at=moment)
    for hours, case in enumerate(cases[:3], start=1):
        Incident.objects.filter(pk=case.pk).update(created_at=moment - timedelta(hours=hours))
    # The tied four, the one stored last first; then the others, newest first.
    return [cases[6], cases[5], cases[4], cases[3], cases[0], cases[1], cases[2]]


def _link_next(reply: Reply) -> str | None:
    link = reply.headers["Link"]
    if link is None:
        return None
    assert link.startswith("<") and link.endswith('>; rel="next"'), link
    return link[1 : -len('>; rel="next"')]


def test_pages_are_disjoint_and_together_the_whole_list_with_ties_broken_stably(http):
    expected = [case.number for case in _cases_with_ties()]
    assert len(set(expected)) == 7
    assert _numbers(http.get("requests.json")) == expected

    for size in (1, 2, 3, 7):
        walked: list[str] = []
        for page in range(1, 10):
            numbers = _numbers(
                http.get("requests.json", query={"page": str(page), "page_size": str(size)})
            )
            if not numbers:
                break
            assert len(numbers) <= size
            assert not set(numbers) & set(walked), (size, page)  # no overlap
            walked += numbers
        assert walked == expected, size  # nothing skipped, the same order

    # Asked again, a page is the same page (the four tied cases span pages 1 and 2).
    second = {"page": "2", "page_size": "3"}
    assert _numbers(http.get("requests.json", query=second)) == expected[3:6]
    assert _numbers(http.get("requests.json", query=second)) == expected[3:6]
    root = http.get("requests.xml", query=second).xml()
    assert [r["service_request_id"] for r in _xml_records(root, "request")] == expected[3:6]
    # Past the end: an empty list, not an error.
    assert http.get("requests.json", query={"page": "4", "page_size": "3"}).json() == []
    assert list(http.get("requests.xml", query={"page": "9"}).xml()) == []
    # Paging combines with the filters.
    filtered = {"status": "open", "service_code": RUBBISH, "page": "2", "page_size": "2"}
    assert _numbers(http.get("requests.json", query=filtered)) == expected[2:4]


def test_a_link_header_leads_to_the_next_page_and_holds_the_window(http):
    expected = [case.number for case in _cases_with_ties()]
    first = http.get("requests.json", query={"page_size": "3", "service_code": RUBBISH})
    assert _numbers(first) == expected[:3]
    link = _link_next(first)
    assert link is not None
    assert link.startswith(http.base_url + BASE + "requests.json?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["page"] == ["2"]
    assert query["page_size"] == ["3"]
    assert query["service_code"] == [RUBBISH]
    # The open window (no dates given) is fixed to what page 1 read: the last 90 days until then.
    start, end = (datetime.fromisoformat(query[name][0]) for name in ("start_date", "end_date"))
    assert end - start == timedelta(days=90)
    assert end <= timezone.now()

    # A case received between two pages does not push this page's last case onto the next.
    newcomer = report(description="翻页之间新收到的")
    unpinned = _numbers(http.get("requests.json", query={"page": "2", "page_size": "3"}))
    assert unpinned[0] == expected[2]  # a page 2 built by hand now repeats page 1's last case
    with urllib.request.urlopen(link, timeout=60) as response:
        assert response.status == 200
        second = [r["service_request_id"] for r in json.loads(response.read())]
        link = response.headers["Link"][1 : -len('>; rel="next"')]
    assert second == expected[3:6]
    assert newcomer.number not in second
    with urllib.request.urlopen(link, timeout=60) as response:
        assert [r["service_request_id"] for r in json.loads(response.read())] == expected[6:]
        assert response.headers["Link"] is None  # the last page

    # A window that ended in the past is kept as the client sent it.
    past = {
        "page_size": "2",
        "end_date": timezone.localtime(timezone.now() - timedelta(minutes=10)).isoformat(),
        "service_code": RUBBISH,
    }
    first_past = http.get("requests.xml", query=past)
    assert first_past.status == 200
    past_link = _link_next(first_past)
    assert past_link is not None
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(past_link).query) == {
        "page_size": ["2"],
        "end_date": [past["end_date"]],
        "service_code": [RUBBISH],
        "page": ["2"],
    }
    assert urllib.parse.urlsplit(past_link).path == BASE + "requests.xml"


def test_bad_paging_parameters_are_400_naming_the_parameter(http):
    for query, description in [
        ({"page": "0"}, "page: 0 is less than 1: pages count from 1."),
        ({"page": "-1"}, "page: -1 is less than 1: pages count from 1."),
        ({"page": "abc"}, "page: “abc” is not a whole number."),
        ({"page": "1.5"}, "page: “1.5” is not a whole number."),
        ({"page": "٢"}, "page: “٢” is not a whole number."),  # an Arabic-Indic 2
        ({"page": "1000001"}, "page: 1000001 is more than 1000000, the largest page number."),
        ({"page_size": "5000"}, "page_size: 5000 is more than 1000, the largest page size."),
        ({"page_size": "1001"}, "page_size: 1001 is more than 1000, the largest page size."),
        ({"page_size": "0"}, "page_size: 0 is less than 1."),
        ({"page_size": "-20"}, "page_size: -20 is less than 1."),
        ([("page", "1"), ("page", "2")], "page: Given 2 times; send it once."),
    ]:
        assert _errors_json(http.get("requests.json", query=query, headers=EN), 400) == [
            description
        ]
    (huge,) = _errors_xml(http.get("requests.xml", query={"page": "9" * 5000}, headers=EN), 400)
    assert huge == "page: " + "9" * 20 + "… is more than 1000000, the largest page number."
    # The same refusals in Chinese, the default.
    (as_xml,) = _errors_xml(http.get("requests.xml", query={"page_size": "x"}), 400)
    assert as_xml == "page_size：“x”不是整数。"
    (zero,) = _errors_json(http.get("requests.json", query={"page": "0"}), 400)
    assert zero == "page：0 小于 1：页码从 1 开始。"
    # Empty values are no values, as for the other parameters.
    assert http.get("requests.json", query={"page": "", "page_size": " "}).status == 200


def test_service_request_id_overrides_paging(http):
    cases = [report(description=f"第{n}处") for n in range(3)]
    ids = ",".join(case.number for case in cases)
    reply = http.get(
        "requests.json", query={"service_request_id": ids, "page": "2", "page_size": "1"}
    )
    assert set(_numbers(reply)) == {case.number for case in cases}
    assert reply.headers["Link"] is None
    ignored = {"service_request_id": ids, "page": "abc", "page_size": "5000"}
    assert set(_numbers(http.get("requests.json", query=ignored))) == {
        case.number for case in cases
    }


def test_clients_that_do_not_page_get_what_they_got_before(http, monkeypatch):
    cases = [report(description=f"第{n}处") for n in range(5)]
    monkeypatch.setattr(selectors, "MAX_REQUESTS", 2)  # the 1,000 of the spec, scaled down
    newest = [cases[4].number, cases[3].number]
    unpaged = http.get("requests.json")
    assert _numbers(unpaged) == newest
    # The default page is page 1 of the largest size, byte for byte.
    for query in ({"page": "1"}, {"page_size": "2"}, {"page": "1", "page_size": "2"}):
        assert http.get("requests.json", query=query).body == unpaged.body
    assert http.get("requests.xml").body == http.get("requests.xml", query={"page": "1"}).body
    # What the cap used to hide is now reachable; a larger page is refused.
    assert _numbers(http.get("requests.json", query={"page": "3"})) == [cases[0].number]
    assert _errors_json(http.get("requests.json", query={"page_size": "3"}), 400) == [
        "page_size：3 超过每页条数的上限 2。"
    ]
    # One more header than before, for clients that follow it: there is a next page.
    assert _link_next(unpaged) is not None


def test_one_request_in_json_and_xml(http, key):
    world = _world(http, key)

    (mine,) = http.get(f"requests/{world.mine.number}.json").json()
    assert list(mine) == REQUEST_FIELDS
    assert mine["status"] == "open"
    assert mine["status_notes"].startswith("已上报（待立案）")
    assert mine["service_code"] == RUBBISH
    assert mine["service_name"] == "暴露垃圾"
    assert mine["description"] == "井边垃圾 <满溢> & 异味"
    assert mine["media_url"] == "https://img.example.com/a.jpg"
    assert mine["address"] == "龙华大道 8 号"
    assert mine["agency_responsible"] is None
    assert "处置时限 4 工作时" in mine["service_notice"]
    requested = datetime.fromisoformat(mine["requested_datetime"])
    assert requested == world.mine.created_at.replace(microsecond=0)
    assert mine["requested_datetime"].endswith("+08:00")
    world.mine.refresh_from_db()
    assert datetime.fromisoformat(mine["expected_datetime"]) == (
        world.mine.stage_deadline.replace(microsecond=0)
    )
    assert mine["lat"] == pytest.approx(world.mine.location.y, abs=1e-6)
    assert mine["long"] == pytest.approx(world.mine.location.x, abs=1e-6)

    (dispatched,) = http.get(f"requests/{world.dispatched.number}.json").json()
    assert dispatched["status"] == "open"
    assert dispatched["status_notes"] == "已派遣 dispatched to CGJ"
    assert dispatched["agency_responsible"] == "CGJ"
    assert datetime.fromisoformat(dispatched["expected_datetime"]) == (
        world.dispatched.stage_deadline.replace(microsecond=0)
    )
    assert dispatched["description"] is None  # came in through the hotline

    (merged,) = http.get(f"requests/{world.merged.number}.json").json()
    assert merged["status"] == "closed"
    assert world.mine.number in merged["status_notes"]
    assert merged["expected_datetime"] is None
    (rejected,) = http.get(f"requests/{world.rejected.number}.json").json()
    assert rejected["status"] == "closed"
    assert rejected["status_notes"].startswith("不予立案")

    root = http.get(f"requests/{world.mine.number}.xml").xml()
    assert root.tag == "service_requests"
    (record,) = _xml_records(root, "request")
    assert list(record) == REQUEST_FIELDS
    assert record["description"] == "井边垃圾 <满溢> & 异味"
    assert record["status"] == "open"
    assert float(record["lat"]) == mine["lat"]

    (unknown,) = _errors_json(http.get("requests/LH-19990101-000001.json"), 404)
    assert unknown == "service_request_id：没有编号为 LH-19990101-000001 的服务请求。"
    _errors_xml(http.get("requests/LH-19990101-000001.xml"), 404)


def test_no_personal_data_and_no_foreign_description_in_any_public_answer(http, key):
    world = _world(http, key)
    cases = [world.mine, world.citizen, world.dispatched, world.rejected, world.merged, world.old]
    start = (world.old.created_at - timedelta(days=1)).isoformat()
    end = (world.old.created_at + timedelta(days=89)).isoformat()
    answers = []
    for fmt in ("json", "xml"):
        answers.append(http.get(f"requests.{fmt}"))
        answers.append(http.get(f"requests.{fmt}", query={"start_date": start, "end_date": end}))
        ids = ",".join(case.number for case in cases)
        answers.append(http.get(f"requests.{fmt}", query={"service_request_id": ids}))
        answers.extend(http.get(f"requests/{case.number}.{fmt}") for case in cases)
    assert all(reply.status == 200 for reply in answers)
    listed = {r["service_request_id"]: r for r in answers[2].json()}
    assert set(listed) == {case.number for case in cases}  # every case was in the answers
    for reply in answers:
        text = reply.text
        for secret in world.private:
            assert secret not in text, (secret, reply.body[:300])
        assert "李四说王五家门口堆放垃圾" not in text
        assert "旧案" not in text
    # Other channels' cases: no description, and the located place instead of a typed address.
    assert listed[world.citizen.number]["description"] is None
    assert listed[world.citizen.number]["address"] == "龙华区龙华街道三联社区"
    assert listed[world.old.number]["description"] is None
    # Open311's own cases show what their reporters submitted for the public.
    assert listed[world.mine.number]["description"] == "井边垃圾 <满溢> & 异味"
    assert listed[world.rejected.number]["description"] == "路面脏"


def test_xml_answers_drop_characters_xml_cannot_carry(http, key):
    created = http.post("requests.xml", form=_form(key, description="a\x01b\x0bc 垃圾"))
    assert created.status == 201, created.body
    number = created.xml().findtext("request/service_request_id")
    root = http.get(f"requests/{number}.xml").xml()
    assert root.findtext("request/description") == "abc 垃圾"
    (as_json,) = http.get(f"requests/{number}.json").json()
    assert as_json["description"] == "a\x01b\x0bc 垃圾"


def test_anonymous_reads_are_throttled_in_the_spec_format(http, key, monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "rate", "3/minute", raising=False)
    for _ in range(3):
        assert http.get("services.json").status == 200
    throttled = http.get("requests.json")
    (description,) = _errors_json(throttled, 429)
    assert description.startswith("请求过于频繁，请 ")
    assert int(throttled.headers["Retry-After"]) > 0
    _errors_xml(http.get("requests.xml"), 429)
    _errors_json(http.get("discovery.json"), 429)
    # Reports carry a key and are not counted against the anonymous rate.
    assert http.post("requests.json", form=_form(key)).status == 201
