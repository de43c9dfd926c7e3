"""POST /api/v1/incidents/bulk/: sensor gateways and video-AI platforms report in batches.

API keys and their channels, the size limit, per-item answers (bad items beside good ones),
cases identical to those of the single intake, sensor dedupe (within the window, after it, after
the case is finished, inside one batch, against a concurrent batch), one audit entry per batch
with a chain that verifies, one event per case with gapless per-scope numbers sent after
commit, idempotent retries.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import threading
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import pytest
import shapely
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.apps import apps as django_apps
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role, User
from accounts.services import api_key_issue, api_key_revoke
from audit.models import AuditEntry
from audit.selectors import chain_verify
from gridmap.crs import MetricProjector, wgs84_to_gcj02
from gridmap.models import Region
from incidents import calendar, events
from incidents.models import (
    AlarmSource,
    Category,
    Channel,
    Incident,
    IncidentStatus,
    IncidentTransition,
    OwnerLevel,
)
from incidents.services import (
    incident_accept,
    incident_close,
    incident_dispatch,
    incident_feed_back,
    incident_register,
    incident_reject,
    incident_report,
    incident_verify,
)
from incidents.services.bulk import (
    REPEATED,
    BulkItem,
    _index_scans_only,
    _lock_sources,
    dedupe_window,
    incidents_report_bulk,
)
from realtime.models import OutboxEvent, OutboxEventScope
from realtime.outbox import group_name
from tests.incidents.cases import (
    COMMUNITY,
    DISTRICT,
    GRID,
    OTHER_STREET_GRID,
    STREET,
    category,
    make_cast,
    make_user,
    point_in,
)
from tests.threads import require_concurrent_writers, run_in_threads

BULK = "/api/v1/incidents/bulk/"
MANHOLE = "01001"  # 供水井盖异常: a component matter a cover-tilt sensor reports
RUBBISH = "06010"  # 暴露垃圾: what a video-AI platform spots
FIRE = "90001"  # 火灾, an emergency (default severity Ⅳ)
OCCURRED = "2026-11-24T09:15:00+08:00"

_ref = itertools.count(1)


class Gateway(NamedTuple):
    user: User
    key: ApiKey
    raw: str


def make_gateway(channels: tuple[str, ...] = ("sensor", "video_ai")) -> Gateway:
    user = make_user(Role.INTEGRATION, first_name="龙华物联感知平台")
    key, raw = api_key_issue(user=user, name="物联网关", channels=channels)
    return Gateway(user, key, raw)


def key_client(raw: str | None) -> APIClient:
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def alarm(grid: str = GRID, **extra: Any) -> dict[str, Any]:
    lon, lat = _point(grid)
    return {
        "channel": "sensor",
        "category": MANHOLE,
        "lon": lon,
        "lat": lat,
        "source_ref": f"JG-{next(_ref):05d}",
        "description": "井盖倾斜报警",
        "occurred_at": OCCURRED,
        **extra,
    }


_points: dict[str, tuple[float, float]] = {}


def _point(grid: str) -> tuple[float, float]:
    # Cached per test run: the demo geography is the same in every test.
    if grid not in _points:
        _points[grid] = point_in(grid)
    return _points[grid]


def post(raw: str | None, body: Any, **headers: str):  # type: ignore[no-untyped-def]
    """POST a body as JSON text (NaN literals included, as a gateway may send them)."""
    return key_client(raw).post(BULK, json.dumps(body), content_type="application/json", **headers)


def results(response) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return response.json()["results"]


def batch_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="incidents.incident_report_bulk"))


def point_outside_every_cell(metres: float) -> tuple[float, float]:
    """A point `metres` east of the district's easternmost vertex."""
    district = shapely.from_wkb(
        bytes(Region.objects.get(generation__status="active", level="district").geom.wkb)
    )
    coords = shapely.get_coordinates(district)
    lon, lat = coords[np.argmax(coords[:, 0])]
    projector = MetricProjector.around(lon, lat)
    x, y = projector.point(lon, lat)
    outside = projector.to_wgs84(shapely.Point(x + metres, y))
    return outside.x, outside.y


# --- who may call -------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("reference_data")


def test_without_a_key_or_with_a_bad_key_the_answer_is_401_and_nothing_is_stored(db):
    gateway = make_gateway()
    api_key_revoke(key=gateway.key)
    before = Incident.objects.count()

    no_key = post(None, {"items": [alarm()]})
    wrong = post("co_not-a-key-anybody-issued", {"items": [alarm()]})
    revoked = post(gateway.raw, {"items": [alarm()]})

    for response in (no_key, wrong, revoked):
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"] == "Api-Key"
    assert Incident.objects.count() == before


def test_a_signed_in_person_cannot_use_bulk_intake(cast):
    client = APIClient()
    client.force_login(cast.district)

    response = client.post(BULK, {"items": [alarm()]}, format="json")

    assert response.status_code == 401  # API keys only: a console session is not a gateway


def test_a_key_whose_account_is_no_longer_an_integration_is_refused(db):
    gateway = make_gateway()
    User.objects.filter(pk=gateway.user.pk).update(role=Role.DISTRICT_OPERATOR, place_code=DISTRICT)

    response = post(gateway.raw, {"items": [alarm()]})

    assert response.status_code == 403
    assert "系统接入" in response.json()["detail"]


def test_a_key_without_the_channel_is_refused_naming_it_and_nothing_is_stored(db):
    gateway = make_gateway(channels=("sensor",))
    before = Incident.objects.count()

    response = post(gateway.raw, {"items": [alarm(), alarm(channel="video_ai", category=RUBBISH)]})

    assert response.status_code == 403
    assert response.json()["channel"] == ["video_ai"]
    assert "video_ai" in response.json()["detail"]
    assert Incident.objects.count() == before
    assert not batch_entries()


def test_the_single_report_endpoint_holds_a_key_to_its_channels(db):
    sensors = make_gateway(channels=("sensor",))
    hotline = make_gateway(channels=("hotline_12345",))
    lon, lat = _point(GRID)
    body = {"category": RUBBISH, "lon": lon, "lat": lat}
    before = Incident.objects.count()

    refused = key_client(sensors.raw).post("/api/v1/incidents/", body, format="json")
    wrong = key_client(hotline.raw).post(
        "/api/v1/incidents/", {**body, "channel": "citizen"}, format="json"
    )
    assert refused.status_code == 403 and "sensor" in refused.json()["detail"]
    assert wrong.status_code == 400 and "hotline_12345" in wrong.json()["channel"][0]
    assert Incident.objects.count() == before

    taken = key_client(hotline.raw).post("/api/v1/incidents/", body, format="json")
    assert taken.status_code == 201, taken.json()
    assert taken.json()["channel"] == "hotline_12345"


# --- the batch as a whole -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"items": [{}] * 1001}, "items", "收到 1001 条告警，每次请求须为 1 到 1000 条。"),
        ({"items": []}, "items", "收到 0 条告警，每次请求须为 1 到 1000 条。"),
        ({}, "items", "不能为空：须为 1 到 1000 条告警的列表。"),
        ({"items": {"channel": "sensor"}}, "items", "不能为空：须为 1 到 1000 条告警的列表。"),
        ({"items": [{}], "status": "closed"}, "status", "未知字段。"),
    ],
)
def test_a_malformed_batch_is_400_naming_the_field(db, body, field, reason):
    gateway = make_gateway()

    response = post(gateway.raw, body)

    assert response.status_code == 400
    assert response.json() == {field: [reason]}
    assert not batch_entries()


def test_a_gateway_asking_in_english_is_answered_in_english(db):
    gateway = make_gateway()

    response = post(gateway.raw, {"items": [{}] * 1001}, HTTP_ACCEPT_LANGUAGE="en")
    item = post(gateway.raw, {"items": [alarm(category="99999")]}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.json() == {"items": ["1001 alarms sent; send 1 to 1000 per request."]}
    (row,) = results(item)
    assert row["errors"] == {"category": ["“99999” is not a category code."]}


def test_a_body_that_is_not_an_object_is_400(db):
    response = post(make_gateway().raw, [alarm()])

    assert response.status_code == 400
    assert "items" in response.json()["detail"]


# --- per-item answers ----------------------------------------------------------------------------


def test_bad_items_are_answered_one_by_one_beside_the_created_ones(db):
    gateway = make_gateway()
    good_first, good_last = alarm(), alarm(channel="video_ai", category=RUBBISH)
    naive_time = alarm(occurred_at="2026-11-24T09:15:00")
    items = [
        good_first,
        alarm(category="99999"),
        alarm(lon=float("nan")),
        alarm(lon=116.3975, lat=39.9087),  # Beijing: far outside the district
        alarm(source_ref=""),
        alarm(severity="II"),  # severity is for emergencies only
        alarm(channel="grid_worker"),  # not a bulk channel
        alarm(status="closed"),
        alarm(occurred_at="yesterday"),
        naive_time,
        alarm(lat=None),
        "not an object",
        good_last,
    ]

    response = post(gateway.raw, {"items": items})

    answer = response.json()
    assert response.status_code == 200
    assert (answer["created"], answer["repeated"], answer["failed"]) == (2, 0, 11)
    rows = answer["results"]
    assert [row["index"] for row in rows] == list(range(len(items)))
    assert [row["result"] for row in rows] == ["created", *["error"] * 11, "created"]
    errors = [row["errors"] for row in rows]
    assert errors[0] == {} and errors[-1] == {}
    assert errors[1] == {"category": ["“99999”不是事项分类代码。"]}
    assert list(errors[2]) == ["lon"] and "必须是有限的数字" in errors[2]["lon"][0]
    assert set(errors[3]) == {"lon", "lat"} and "超出属地兜底范围" in errors[3]["lon"][0]
    assert errors[4] == {"source_ref": ["不能为空：须填传感器或摄像头的编号。"]}
    assert errors[5] == {"severity": ["只有突发事件（第 90 大类）分严重程度。"]}
    assert list(errors[6]) == ["channel"] and "sensor, video_ai" in errors[6]["channel"][0]
    assert errors[7] == {"status": ["未知字段。"]}
    assert errors[8] == {"occurred_at": ["必须是带时区的 ISO 8601 日期和时间。"]}
    assert errors[9] == {"occurred_at": ["必须带时区。"]}
    assert errors[10] == {"lat": ["不能为空。"]}
    assert errors[11] == {"item": ["必须是 JSON 对象。"]}
    assert [row["number"] for row in rows if row["result"] == "error"] == [None] * 11

    stored = Incident.objects.filter(number__in=[rows[0]["number"], rows[-1]["number"]])
    assert {case.source_ref for case in stored} == {
        good_first["source_ref"],
        good_last["source_ref"],
    }
    assert Incident.objects.filter(reporter=gateway.user).count() == 2


def test_an_item_names_every_bad_field_at_once(db):
    response = post(
        make_gateway().raw,
        {"items": [alarm(category="00000", source_ref="", lon="east", description="x" * 4001)]},
    )

    (row,) = results(response)
    assert set(row["errors"]) == {"category", "source_ref", "lon", "description"}


def test_a_batch_of_only_bad_items_writes_nothing(db):
    gateway = make_gateway()
    before = (Incident.objects.count(), AuditEntry.objects.count(), OutboxEvent.objects.count())

    response = post(gateway.raw, {"items": [alarm(category="99999"), alarm(lon=500)]})

    answer = response.json()
    assert response.status_code == 200 and answer["failed"] == 2 and answer["batch"] is None
    after = (Incident.objects.count(), AuditEntry.objects.count(), OutboxEvent.objects.count())
    assert after == before


def test_a_thousand_alarms_are_taken_in_with_consecutive_numbers(db):
    gateway = make_gateway()

    response = post(gateway.raw, {"items": [alarm() for _ in range(1000)]})

    rows = results(response)
    assert {row["result"] for row in rows} == {"created"}
    numbers = [row["number"] for row in rows]
    serials = [int(number.rsplit("-", 1)[1]) for number in numbers]
    assert serials == list(range(serials[0], serials[0] + 1000))
    assert Incident.objects.filter(number__in=numbers).count() == 1000
    assert IncidentTransition.objects.filter(incident__number__in=numbers).count() == 1000


# Every character COPY's text format escapes (backslash, tab, newline, carriage return), its NULL
# marker spelled out, quotes, a lone surrogate-free emoji and Chinese.
AWKWARD = "a\\b\tc\nd\re \\N \"q\" 's' 井盖😀"


def test_text_with_the_characters_a_bulk_write_escapes_is_stored_exactly(db):
    gateway = make_gateway()

    response = post(gateway.raw, {"items": [alarm(description=AWKWARD, source_ref="REF\t1\\N")]})

    (row,) = results(response)
    case = Incident.objects.get(number=row["number"])
    assert case.description == AWKWARD
    assert case.source_ref == "REF\t1\\N"
    event = OutboxEvent.objects.get(payload__incident__number=case.number)
    assert event.payload["incident"]["number"] == case.number
    assert event.scopes.count() == len(events.incident_scopes(case))  # none of the gateway's


# --- the cases are those of the single intake ----------------------------------------------------


def test_a_bulk_case_is_the_case_incident_report_makes(db):
    gateway = make_gateway()
    lon, lat = _point(GRID)
    single = incident_report(
        channel=Channel.SENSOR,
        category=category(FIRE),
        lon=lon,
        lat=lat,
        description="烟感报警",
        reporter=gateway.user,
        source_ref="YG-single",
        client_reported_at=timezone.datetime.fromisoformat(OCCURRED),
    )
    item = alarm(category=FIRE, description="烟感报警", source_ref="YG-bulk")

    (row,) = results(post(gateway.raw, {"items": [item]}))

    bulk = Incident.objects.get(number=row["number"])
    skip = {
        "id",
        "number",
        "source_ref",
        "created_at",
        "updated_at",
        "stage_started_at",
        "stage_deadline",
        "stage_warn_at",
    }
    for model_field in Incident._meta.concrete_fields:
        if model_field.name in skip:
            continue
        name = model_field.attname
        assert getattr(bulk, name) == getattr(single, name), name
    assert (bulk.owner_level, bulk.owner_code) == (OwnerLevel.COMMUNITY, COMMUNITY)
    assert bulk.severity == "IV" and bulk.status == IncidentStatus.REPORTED
    assert bulk.reporter_name == "龙华物联感知平台"
    # The register clock, from the category's limit on the working calendar.
    limit = bulk.category.limits.get(stage="register")
    assert bulk.stage == "register" and bulk.stage_started_at == bulk.created_at
    assert bulk.stage_deadline == calendar.deadline(bulk.created_at, limit.amount, limit.unit)
    assert (bulk.stage_warn_at is None) == (single.stage_warn_at is None)

    single_step, bulk_step = single.transitions.get(), bulk.transitions.get()
    for name in ("action", "from_status", "to_status", "actor_id", "actor_role", "data"):
        assert getattr(bulk_step, name) == getattr(single_step, name), name

    def reported(case: Incident) -> OutboxEvent:
        return OutboxEvent.objects.get(
            type="incidents.incident_reported", payload__incident__number=case.number
        )

    single_event, bulk_event = reported(single), reported(bulk)
    timing = {"number", "created_at", "stage_deadline", "stage_warn_at"}
    assert {k: v for k, v in bulk_event.payload["incident"].items() if k not in timing} == {
        k: v for k, v in single_event.payload["incident"].items() if k not in timing
    }
    assert bulk_event.payload["resolution"] == single_event.payload["resolution"]
    assert (
        set(bulk_event.scopes.values_list("scope", flat=True))
        == set(single_event.scopes.values_list("scope", flat=True))
        == {
            f"district:{DISTRICT}",
            f"street:{STREET}",
            f"community:{COMMUNITY}",
            f"grid:{GRID}",
        }  # no scope of the gateway's own: an integration account follows nothing live
    )


def test_a_point_just_outside_every_cell_goes_to_the_district_triage_queue(db):
    lon, lat = point_outside_every_cell(60.0)

    (row,) = results(post(make_gateway().raw, {"items": [alarm(lon=lon, lat=lat)]}))

    case = Incident.objects.get(number=row["number"])
    assert case.resolution == "nearest" and case.triage is True
    assert (case.owner_level, case.owner_code) == (OwnerLevel.DISTRICT, DISTRICT)
    assert case.transitions.get().data["distance_m"] > 50


def test_gcj02_coordinates_are_converted_and_the_input_kept(db):
    lon, lat = _point(GRID)
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))

    (row,) = results(post(make_gateway().raw, {"items": [alarm(lon=glon, lat=glat, crs="gcj02")]}))

    case = Incident.objects.get(number=row["number"])
    assert (case.raw_lon, case.raw_lat, case.raw_crs) == (glon, glat, "gcj02")
    assert math.isclose(case.location.x, lon, abs_tol=1e-5)
    assert math.isclose(case.location.y, lat, abs_tol=1e-5)
    assert case.grid_code == GRID


def test_the_gateway_sees_its_cases_through_the_api_and_nobody_elses(db):
    gateway, other = make_gateway(), make_gateway()
    (mine,) = results(post(gateway.raw, {"items": [alarm()]}))
    results(post(other.raw, {"items": [alarm()]}))

    listed = key_client(gateway.raw).get("/api/v1/incidents/").json()

    assert [row["number"] for row in listed["results"]] == [mine["number"]]


# --- sensor dedupe ------------------------------------------------------------------------------


def test_an_alarm_of_a_sensor_with_an_open_case_is_a_repeat(db):
    gateway = make_gateway()
    first = alarm()
    (created,) = results(post(gateway.raw, {"items": [first]}))
    before = Incident.objects.count()

    (again,) = results(post(gateway.raw, {"items": [dict(first, description="仍然倾斜")]}))

    assert again == {
        "index": 0,
        "result": "repeat",
        "number": created["number"],
        "errors": {},
    }
    assert Incident.objects.count() == before
    case = Incident.objects.get(number=created["number"])
    assert case.repeat_count == 1 and case.last_repeated_at is not None
    assert case.transitions.count() == 1  # a repeat is no step of the loop
    event = OutboxEvent.objects.filter(type=REPEATED).get()
    assert event.payload["incident"]["number"] == case.number
    assert (event.payload["repeats"], event.payload["repeat_count"]) == (1, 1)
    entry = batch_entries()[0]  # the newest
    assert entry.before == {
        "repeated": {case.number: {"repeat_count": 0, "last_repeated_at": None}}
    }
    assert entry.after["repeated"][case.number]["repeat_count"] == 1
    assert entry.after["created"]["rows"] == []


def test_the_case_shows_its_sensor_and_how_often_it_alarmed(db):
    gateway = make_gateway()
    first = alarm()
    (created,) = results(post(gateway.raw, {"items": [first]}))
    reader = key_client(gateway.raw)
    detail = reader.get(f"/api/v1/incidents/{created['number']}/").json()
    assert (detail["source_ref"], detail["repeat_count"], detail["last_repeated_at"]) == (
        first["source_ref"],
        0,
        None,
    )

    results(post(gateway.raw, {"items": [first, first]}))

    case = Incident.objects.get(number=created["number"])
    detail = reader.get(f"/api/v1/incidents/{created['number']}/").json()
    assert detail["repeat_count"] == 2
    assert parse_datetime(detail["last_repeated_at"]) == case.last_repeated_at
    (row,) = reader.get("/api/v1/incidents/").json()["results"]
    assert (row["number"], row["repeat_count"]) == (created["number"], 2)


def test_a_different_category_channel_or_gateway_is_not_a_repeat(db):
    gateway, other = make_gateway(), make_gateway()
    first = alarm()
    results(post(gateway.raw, {"items": [first]}))

    answers = [
        *results(post(gateway.raw, {"items": [dict(first, category="01002")]})),
        *results(post(gateway.raw, {"items": [dict(first, channel="video_ai")]})),
        *results(post(other.raw, {"items": [first]})),
    ]

    assert [row["result"] for row in answers] == ["created"] * 3


def test_an_alarm_after_the_window_makes_a_new_case(db, settings):
    settings.CITYOPS_SENSOR_DEDUPE_WINDOW_MINUTES = 30
    gateway = make_gateway()
    first = alarm()
    (created,) = results(post(gateway.raw, {"items": [first]}))
    (repeat,) = results(post(gateway.raw, {"items": [first]}))
    assert repeat["result"] == "repeat"
    # The latest alarm (the repeat) is now 31 minutes old: the window has closed.
    Incident.objects.filter(number=created["number"]).update(
        last_repeated_at=timezone.now() - timedelta(minutes=31)
    )

    (later,) = results(post(gateway.raw, {"items": [first]}))

    assert later["result"] == "created" and later["number"] != created["number"]


def test_the_window_runs_from_the_latest_alarm(db, settings):
    settings.CITYOPS_SENSOR_DEDUPE_WINDOW_MINUTES = 30
    gateway = make_gateway()
    first = alarm()
    (created,) = results(post(gateway.raw, {"items": [first]}))
    # Reported 2 hours ago, but alarming again 10 minutes ago: still the same problem.
    Incident.objects.filter(number=created["number"]).update(
        created_at=timezone.now() - timedelta(hours=2),
        last_repeated_at=timezone.now() - timedelta(minutes=10),
        repeat_count=5,
    )

    (again,) = results(post(gateway.raw, {"items": [first]}))

    assert again == {"index": 0, "result": "repeat", "number": created["number"], "errors": {}}
    assert Incident.objects.get(number=created["number"]).repeat_count == 6


def test_an_alarm_after_the_case_was_closed_or_rejected_makes_a_new_case(db):
    cast = make_cast()
    gateway = make_gateway()
    closed_alarm, rejected_alarm = alarm(), alarm()
    first = results(post(gateway.raw, {"items": [closed_alarm, rejected_alarm]}))
    to_close, to_reject = (Incident.objects.get(number=row["number"]) for row in first)
    case = incident_register(incident=to_close, by=cast.community)
    case = incident_dispatch(incident=case, by=cast.street, department_code="CGJ")
    case = incident_accept(incident=case, by=cast.handler)
    case = incident_feed_back(incident=case, by=cast.handler, feedback="井盖已复位")
    case = incident_verify(incident=case, by=cast.grid_worker, passed=True)
    case = incident_close(incident=case, by=cast.community)
    assert case.status == IncidentStatus.CLOSED
    incident_reject(incident=to_reject, by=cast.community, reason="设备误报")

    again = results(post(gateway.raw, {"items": [closed_alarm, rejected_alarm]}))

    assert [row["result"] for row in again] == ["created", "created"]
    assert {row["number"] for row in again}.isdisjoint({to_close.number, to_reject.number})


def test_alarms_repeating_each_other_in_one_batch_make_one_case(db):
    gateway = make_gateway()
    sensor, other = alarm(), alarm()

    rows = results(post(gateway.raw, {"items": [sensor, sensor, other, sensor, other]}))

    assert [row["result"] for row in rows] == ["created", "repeat", "created", "repeat", "repeat"]
    assert rows[1]["number"] == rows[3]["number"] == rows[0]["number"]
    assert rows[4]["number"] == rows[2]["number"]
    first, second = (Incident.objects.get(number=rows[i]["number"]) for i in (0, 2))
    assert (first.repeat_count, second.repeat_count) == (2, 1)
    assert first.last_repeated_at == first.created_at
    # The new cases are announced once each, as reported; no repeat event for them.
    assert OutboxEvent.objects.filter(type="incidents.incident_reported").count() == 2
    assert not OutboxEvent.objects.filter(type=REPEATED).exists()


def test_a_bad_first_alarm_does_not_stop_its_sensor_s_next_one(db):
    gateway = make_gateway()
    sensor = alarm()

    rows = results(post(gateway.raw, {"items": [dict(sensor, lon="x"), sensor, sensor]}))

    assert [row["result"] for row in rows] == ["error", "created", "repeat"]


def test_each_alarm_source_counts_its_alarms_from_the_first(db):
    gateway, other = make_gateway(), make_gateway()
    sensor = alarm()
    results(post(gateway.raw, {"items": [sensor, dict(sensor, lon="x"), sensor]}))
    first_seen = AlarmSource.objects.get().first_alarm_at

    results(post(gateway.raw, {"items": [sensor, dict(sensor, category="01002")]}))
    results(post(other.raw, {"items": [sensor]}))

    def row(source: AlarmSource) -> tuple[int, str, str, str, int]:
        return (
            source.account_id,
            source.source_ref,
            source.category.code,
            source.channel,
            source.alarms,
        )

    ref = sensor["source_ref"]
    assert sorted(row(source) for source in AlarmSource.objects.all()) == sorted(
        [
            (gateway.user.pk, ref, MANHOLE, "sensor", 3),  # the bad item is no alarm
            (gateway.user.pk, ref, "01002", "sensor", 1),
            (other.user.pk, ref, MANHOLE, "sensor", 1),
        ]
    )
    counted = AlarmSource.objects.get(account=gateway.user, category__code=MANHOLE)
    assert counted.first_alarm_at == first_seen
    case = Incident.objects.get(reporter=gateway.user, category__code=MANHOLE)
    assert case.created_at == first_seen and case.repeat_count == 2


def test_the_migration_counts_the_alarms_taken_in_before_it(db):
    """Migration 0006 made the table of alarm sources and counted into it the cases and repeats
    bulk intake had taken in: the same rows as counting them as they come."""
    gateway = make_gateway()
    sensor, camera = alarm(), alarm(channel="video_ai", category=RUBBISH)
    results(post(gateway.raw, {"items": [sensor, sensor, camera]}))
    # A later case of the sensor: the window of its first case has closed.
    Incident.objects.filter(source_ref=sensor["source_ref"]).update(
        last_repeated_at=timezone.now() - dedupe_window() - timedelta(minutes=1)
    )
    results(post(gateway.raw, {"items": [sensor, sensor, sensor]}))
    incident_report(  # a single report with a device id is no bulk alarm
        reporter=gateway.user,
        channel=Channel.HOTLINE_12345,
        category=Category.objects.get(code=MANHOLE),
        lon=sensor["lon"],
        lat=sensor["lat"],
        source_ref="SINGLE-1",
    )
    counted = sorted(
        AlarmSource.objects.values_list(
            "account_id", "source_ref", "category_id", "channel", "alarms", "first_alarm_at"
        )
    )
    assert sorted(row[4] for row in counted) == [1, 5]
    AlarmSource.objects.all().delete()

    migration = importlib.import_module("incidents.migrations.0006_alarm_sources")
    migration.count_earlier_alarms(django_apps, SimpleNamespace(connection=connection))

    assert (
        sorted(
            AlarmSource.objects.values_list(
                "account_id", "source_ref", "category_id", "channel", "alarms", "first_alarm_at"
            )
        )
        == counted
    )


def test_the_dedupe_lookup_reads_the_sensor_index_whatever_the_statistics(db):
    """The test database is never analysed. The only index the lookup can be read through is
    `incidents_source_ref`: with the account in the statement, the planner took the account's
    index, which filters every case the gateway ever reported (on PostgreSQL, stale statistics
    do the same). And on PostgreSQL the lookup runs without sequential scans: a planner that
    thinks every sensor named has a case reads a table of up to some 50,000 cases whole (the
    intake bench saw 8-31 ms a batch)."""
    gateway = make_gateway()
    results(post(gateway.raw, {"items": [alarm() for _ in range(3)]}))
    with CaptureQueriesContext(connection) as queries:
        results(post(gateway.raw, {"items": [alarm(), alarm()]}))
    (lookup,) = [q["sql"] for q in queries if 'incident"."source_ref" IN' in q["sql"]]

    def plan() -> str:
        with connection.cursor() as cursor:
            explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
            cursor.execute(f"{explain} {lookup}")
            return "\n".join(str(row) for row in cursor.fetchall())

    def seq_scans() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_seqscan")
            return cursor.fetchone()[0]

    with transaction.atomic():
        if connection.vendor == "postgresql":
            assert seq_scans() == "on"
            with _index_scans_only(connection):
                assert seq_scans() == "off"
                planned = plan()
            assert seq_scans() == "on"  # only for the lookup
        else:
            with _index_scans_only(connection):
                planned = plan()

    assert "incidents_source_ref" in planned, planned
    assert "reporter" not in planned, planned


# --- records: audit, events ---------------------------------------------------------------------


def test_a_batch_writes_one_audit_entry_listing_its_cases_and_the_chain_verifies(db):
    gateway = make_gateway()
    (earlier,) = results(post(gateway.raw, {"items": [alarm(source_ref="SW-1")]}))
    entries_before = AuditEntry.objects.count()
    items = [alarm(source_ref="SW-1"), alarm(), alarm(), alarm(category="99999")]

    response = post(gateway.raw, {"items": items}, REMOTE_ADDR="10.20.30.40")

    answer = response.json()
    assert AuditEntry.objects.count() == entries_before + 1
    entry = AuditEntry.objects.order_by("-sequence").first()
    assert entry is not None
    assert (entry.action, entry.object_type, entry.object_id) == (
        "incidents.incident_report_bulk",
        "incidents.incident_batch",
        answer["batch"],
    )
    assert (entry.actor_id, entry.actor_role, entry.ip) == (
        gateway.user.pk,
        Role.INTEGRATION,
        "10.20.30.40",
    )
    created = [row["number"] for row in answer["results"] if row["result"] == "created"]
    listed = [
        dict(zip(entry.after["created"]["columns"], row, strict=True))
        for row in entry.after["created"]["rows"]
    ]
    assert [case["number"] for case in listed] == created
    first = Incident.objects.get(number=created[0])
    assert listed[0] == {
        "number": first.number,
        "id": first.pk,
        "channel": "sensor",
        "category": MANHOLE,
        "source_ref": items[1]["source_ref"],
        "lon": first.location.x,
        "lat": first.location.y,
        "grid": GRID,
        "resolution": "inside",
        "owner": COMMUNITY,
        "repeat_count": 0,
    }
    assert list(entry.after["repeated"]) == [earlier["number"]]
    assert entry.after["failed"] == 1
    assert "reporter_phone" not in json.dumps(entry.after)
    report = chain_verify()
    assert report.ok, report.broken


def test_one_event_per_created_case_with_gapless_numbers_in_every_scope(db):
    gateway = make_gateway()
    results(post(gateway.raw, {"items": [alarm(OTHER_STREET_GRID)]}))  # numbers already in use
    last = {
        scope: OutboxEventScope.objects.filter(scope=scope).order_by("-seq").first()
        for scope in (f"district:{DISTRICT}", f"street:{STREET}")
    }
    items = [alarm(GRID) for _ in range(30)] + [alarm(OTHER_STREET_GRID) for _ in range(20)]

    rows = results(post(gateway.raw, {"items": items}))

    numbers = [row["number"] for row in rows]
    events = list(
        OutboxEvent.objects.filter(
            type="incidents.incident_reported", payload__incident__number__in=numbers
        ).order_by("id")
    )
    assert [event.payload["incident"]["number"] for event in events] == numbers
    district = list(
        OutboxEventScope.objects.filter(scope=f"district:{DISTRICT}", event__in=events)
        .order_by("seq")
        .values_list("seq", "event_id")
    )
    start = last[f"district:{DISTRICT}"].seq  # type: ignore[union-attr]
    assert [seq for seq, _ in district] == list(range(start + 1, start + 51))
    assert [event_id for _, event_id in district] == [event.pk for event in events]
    street = OutboxEventScope.objects.filter(scope=f"street:{STREET}", event__in=events)
    street_start = last[f"street:{STREET}"].seq if last[f"street:{STREET}"] else 0  # type: ignore[union-attr]
    assert sorted(street.values_list("seq", flat=True)) == list(
        range(street_start + 1, street_start + 31)
    )
    for scope in {f"grid:{GRID}", f"grid:{OTHER_STREET_GRID}"}:
        seqs = sorted(OutboxEventScope.objects.filter(scope=scope).values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1)), scope
    assert not OutboxEventScope.objects.filter(scope=f"user:{gateway.user.pk}").exists()


# --- idempotency -------------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(db):
    gateway = make_gateway()
    body = {"items": [alarm(), alarm(), alarm(category="99999")]}
    key = {"HTTP_IDEMPOTENCY_KEY": "5b0c6f1e-8a43-4d0b-9d9f-6f2a2d6d1c11"}

    first = post(gateway.raw, body, **key)
    counts = (Incident.objects.count(), AuditEntry.objects.count(), OutboxEvent.objects.count())
    retry = post(gateway.raw, body, **key)
    other = post(gateway.raw, {"items": [alarm()]}, **key)

    assert retry.status_code == 200 and retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert (Incident.objects.count(), AuditEntry.objects.count(), OutboxEvent.objects.count()) == (
        counts
    )
    assert other.status_code == 422


# --- the service, directly ----------------------------------------------------------------------


def test_the_service_refuses_accounts_that_are_not_integrations(cast):
    from incidents.workflow import ActionNotPermitted

    lon, lat = _point(GRID)
    item = BulkItem(channel="sensor", category=MANHOLE, lon=lon, lat=lat, source_ref="S")
    with pytest.raises(ActionNotPermitted):
        incidents_report_bulk(items=[item], by=cast.district)


# --- real commits: concurrency and sending ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_batches_of_one_sensor_make_one_case(request):
    require_concurrent_writers()
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")
    gateway = make_gateway()
    lon, lat = _point(GRID)
    item = BulkItem(channel="sensor", category=MANHOLE, lon=lon, lat=lat, source_ref="RACE-1")
    answers: list[str] = []

    def work(worker: int) -> None:
        report = incidents_report_bulk(items=[item, item], by=gateway.user)
        answers.extend(result.result for result in report.results)

    run_in_threads(work, 4)

    assert sorted(answers) == ["created"] + ["repeat"] * 7
    case = Incident.objects.get(source_ref="RACE-1")
    assert case.repeat_count == 7
    assert chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_only_for_batches_naming_its_sensors(request):
    """While one batch holds its sensor's alarm source (from its dedupe lookup to its commit), a
    batch of another sensor of the same account goes through; one naming the held sensor waits
    for it (here: gives up at the lock timeout, storing nothing), then goes through."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: every batch waits for every other")
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")
    gateway = make_gateway()
    manhole = Category.objects.get(code=MANHOLE)
    lon, lat = _point(GRID)

    def batch(ref: str) -> list[str]:
        item = BulkItem(channel="sensor", category=MANHOLE, lon=lon, lat=lat, source_ref=ref)
        report = incidents_report_bulk(items=[item], by=gateway.user)
        return [result.result for result in report.results]

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                key = ("HELD-1", manhole.pk, "sensor")
                _lock_sources(Counter([key]), by=gateway.user, now=timezone.now())
                held.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(60)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        assert batch("OTHER-1") == ["created"]
        with pytest.raises(OperationalError) as waited:
            batch("HELD-1")
        assert type(waited.value.__cause__).__name__ == "LockNotAvailable"
        assert not Incident.objects.filter(source_ref="HELD-1").exists()
    finally:
        release.set()
        holder.join(60)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert batch("HELD-1") == ["created"]
    # The holder's alarm and the last batch's; the batch that gave up counted nothing.
    assert AlarmSource.objects.get(source_ref="HELD-1").alarms == 2


@pytest.mark.django_db(transaction=True)
def test_the_events_are_sent_after_commit_in_order_and_marked_published(request):
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")
    gateway = make_gateway()
    layer = get_channel_layer()
    scope = f"grid:{GRID}"
    items = [alarm() for _ in range(5)]

    async def scenario() -> tuple[list[str], list[dict[str, Any]]]:
        channel = await layer.new_channel()
        await layer.group_add(group_name(scope), channel)
        try:
            response = await sync_to_async(post)(gateway.raw, {"items": items})
            numbers = [row["number"] for row in response.json()["results"]]
            # The grid's five events come in one batch message (outbox.events), in order.
            batch = await layer.receive(channel)
            assert batch["type"] == "outbox.events"
            return numbers, batch["events"]
        finally:
            await layer.group_discard(group_name(scope), channel)

    numbers, messages = async_to_sync(scenario)()

    assert [message["payload"]["incident"]["number"] for message in messages] == numbers
    assert all(message["occurred_at"] for message in messages)
    seqs = [message["seqs"][scope] for message in messages]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert not OutboxEvent.objects.filter(
        payload__incident__number__in=numbers, published_at__isnull=True
    ).exists()
