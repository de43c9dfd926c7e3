"""Responders' positions: the service (locating, replacing, audit on start/stop, events to the
places that see it), the API's answers to bad input, and who sees whose position."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from dispatch.models import ResponderPosition
from dispatch.selectors import responders_for_district, responders_visible_to
from dispatch.services import (
    NotAResponder,
    ResponderInputError,
    responder_position_clear,
    responder_position_report,
)
from realtime.models import OutboxEvent
from tests.incidents.cases import (
    COMMUNITY,
    DISTRICT,
    GRID,
    OTHER_STREET,
    OTHER_STREET_GRID,
    STREET,
    point_in,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/responders/me/position/"
LIST = "/api/v1/responders/positions/"


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def put(user: Any, body: Any, **headers: str) -> Any:
    return client_of(user).put(
        URL, json.dumps(body), content_type="application/json", headers=headers
    )


def events(type: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(type=type).order_by("id").prefetch_related("scopes"))


def scopes_of(event: OutboxEvent) -> set[str]:
    return {row.scope for row in event.scopes.all()}


def test_a_report_is_located_stored_audited_once_and_announced_where_it_is(cast):
    lon, lat = point_in(GRID)
    position = responder_position_report(user=cast.grid_worker, lon=lon, lat=lat, accuracy_m=12)
    assert (position.grid_code, position.community_code, position.street_code) == (
        GRID,
        COMMUNITY,
        STREET,
    )
    assert position.point.x == pytest.approx(lon) and position.accuracy_m == 12
    # A second report replaces the first: one row, one "started" audit entry, two events.
    responder_position_report(user=cast.grid_worker, lon=lon + 0.00001, lat=lat)
    assert ResponderPosition.objects.count() == 1
    audits = AuditEntry.objects.filter(object_type="responder").order_by("sequence")
    assert [a.action for a in audits] == ["responder.sharing_started"]
    moved = events("dispatch.responder_moved")
    assert len(moved) == 2
    assert scopes_of(moved[-1]) == {
        f"district:{DISTRICT}",
        f"street:{STREET}",
        f"community:{COMMUNITY}",
    }
    responder = moved[-1].payload["responder"]
    assert responder["id"] == cast.grid_worker.pk
    assert responder["grid"]["code"] == GRID and responder["accuracy_m"] is None
    assert responder["lon"] == pytest.approx(lon + 0.00001, abs=1e-6)


def test_moving_to_another_street_clears_it_from_the_street_it_left(cast):
    responder_position_report(user=cast.grid_worker, lon=point_in(GRID)[0], lat=point_in(GRID)[1])
    lon, lat = point_in(OTHER_STREET_GRID)
    responder_position_report(user=cast.grid_worker, lon=lon, lat=lat)
    cleared = events("dispatch.responder_cleared")
    assert len(cleared) == 1
    assert scopes_of(cleared[0]) == {f"street:{STREET}", f"community:{COMMUNITY}"}
    assert scopes_of(events("dispatch.responder_moved")[-1]) >= {f"street:{OTHER_STREET}"}


def test_stopping_removes_the_position_audits_and_announces_it(cast):
    lon, lat = point_in(GRID)
    responder_position_report(user=cast.handler, lon=lon, lat=lat)
    assert responder_position_clear(user=cast.handler) is True
    assert not ResponderPosition.objects.exists()
    assert [
        a.action for a in AuditEntry.objects.filter(object_type="responder").order_by("sequence")
    ] == [
        "responder.sharing_started",
        "responder.sharing_stopped",
    ]
    assert events("dispatch.responder_cleared")[0].payload == {"responder": {"id": cast.handler.pk}}
    # Nothing shared: nothing written.
    assert responder_position_clear(user=cast.handler) is False
    assert AuditEntry.objects.filter(object_type="responder").count() == 2


def test_only_field_roles_share_a_position(cast):
    lon, lat = point_in(GRID)
    for user in (cast.street, cast.district, cast.auditor, cast.no_role):
        with pytest.raises(NotAResponder):
            responder_position_report(user=user, lon=lon, lat=lat)
        assert put(user, {"lon": lon, "lat": lat}).status_code == 403
        assert client_of(user).delete(URL).status_code == 403
    assert not ResponderPosition.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 22.6}, "lon"),
        ({"lon": "NaN", "lat": 22.6}, "lon"),
        ({"lon": 114.03, "lat": 222.6}, "lat"),
        ({"lon": 114.03, "lat": True}, "lat"),
        ({"lon": 113.5, "lat": 22.2}, "lon"),  # Zhuhai: outside the district
        ({"lon": None, "lat": None, "accuracy_m": -1}, "lon"),
        ({"accuracy_m": "far"}, "accuracy_m"),
        ({"accuracy_m": 1e9}, "accuracy_m"),
        ({"accuracy_m": float("inf")}, "accuracy_m"),
        ({"grid_code": "440309002001001"}, "grid_code"),  # mass assignment
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_stored(cast, body, field):
    lon, lat = point_in(GRID)
    if ("accuracy_m" in body and "lon" not in body) or "grid_code" in body:
        body = {"lon": lon, "lat": lat, **body}
    # json.dumps writes NaN/Infinity, which the API's parser takes as numbers.
    response = put(cast.grid_worker, body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not ResponderPosition.objects.exists()
    assert not OutboxEvent.objects.filter(type__startswith="dispatch.").exists()


def test_the_api_shares_and_stops_sharing(cast):
    lon, lat = point_in(GRID)
    response = put(cast.grid_worker, {"lon": lon, "lat": lat, "accuracy_m": 8.5})
    assert response.status_code == 200
    assert response.json()["responder"]["grid"] == {
        "code": GRID,
        "name": ResponderPosition.objects.get().grid_name,
    }
    assert client_of(cast.grid_worker).delete(URL).status_code == 204
    assert client_of(cast.grid_worker).delete(URL).status_code == 204  # again: nothing to do
    assert not ResponderPosition.objects.exists()


def test_each_place_sees_only_its_own_responders(cast):
    here = point_in(GRID)
    there = point_in(OTHER_STREET_GRID)
    responder_position_report(user=cast.grid_worker, lon=here[0], lat=here[1])
    responder_position_report(user=cast.handler, lon=there[0], lat=there[1])

    def ids(user: Any) -> set[int]:
        response = client_of(user).get(LIST)
        assert response.status_code == 200
        return {r["id"] for r in response.json()["results"]}

    assert ids(cast.district) == {cast.grid_worker.pk, cast.handler.pk}
    assert ids(cast.street) == {cast.grid_worker.pk}
    assert ids(cast.community) == {cast.grid_worker.pk}
    assert ids(cast.other_street) == {cast.handler.pk}
    assert ids(cast.other_community) == set()
    for user in (cast.grid_worker, cast.handler, cast.no_role):
        assert client_of(user).get(LIST).status_code == 403


def test_stale_positions_and_inactive_or_changed_accounts_are_not_shown(cast):
    lon, lat = point_in(GRID)
    responder_position_report(user=cast.grid_worker, lon=lon, lat=lat)
    responder_position_report(user=cast.grid_worker_2, lon=lon, lat=lat)
    responder_position_report(user=cast.handler, lon=lon, lat=lat)
    ResponderPosition.objects.filter(user=cast.grid_worker).update(
        received_at=timezone.now() - timedelta(minutes=31)
    )
    cast.grid_worker_2.is_active = False
    cast.grid_worker_2.save()
    shown = responders_for_district(district_code=DISTRICT)
    assert [r["id"] for r in shown] == [cast.handler.pk]
    cast.handler.role = "community_staff"
    cast.handler.place_code = COMMUNITY
    cast.handler.save()
    assert responders_visible_to(cast.district) == []


def test_the_service_names_the_field_of_bad_coordinates(cast):
    with pytest.raises(ResponderInputError) as caught:
        responder_position_report(user=cast.grid_worker, lon="east", lat=22.6)
    assert caught.value.field == "lon"
    assert caught.value.reason == "“east”不是数字。"


@pytest.mark.parametrize(
    ("body", "chinese", "english"),
    [
        (
            {"lon": 113.5, "lat": 22.2},  # Zhuhai
            "该点在区界外 %s 米，不在辖区内。",
            "The point is %s m outside the district.",
        ),
        ({"accuracy_m": "far"}, "“far”不是数字。", "“far” is not a number."),
        (
            {"accuracy_m": 1e9},
            "1000000000 米过于粗略，无法显示（最多 5000 米）。",
            "1000000000 m is too coarse to show (at most 5000 m).",
        ),
        (
            {"accuracy_m": -1},
            "必须是不小于 0 的有限米数。",
            "Must be a finite number of metres, 0 or more.",
        ),
        ({"accuracy_m": True}, "必须是以米为单位的数字。", "Must be a number of metres."),
        ({"speed": 3}, "未知字段。", "Unknown field."),
    ],
)
def test_a_refusal_reads_in_chinese_by_default_and_in_english_on_request(
    cast, body, chinese, english
):
    lon, lat = point_in(GRID)
    body = {"lon": lon, "lat": lat, **body}
    zh = put(cast.grid_worker, body)
    en = put(cast.grid_worker, body, accept_language="en")
    assert zh.status_code == en.status_code == 400
    if "distance_m" in zh.json():  # outside the district: both coordinates, and how far out
        distance = f"{zh.json()['distance_m']:.0f}"
        assert zh.json()["distance_m"] > 1000 and en.json()["distance_m"] == zh.json()["distance_m"]
        assert zh.json()["lon"] == zh.json()["lat"] == [chinese % distance]
        assert en.json()["lon"] == en.json()["lat"] == [english % distance]
    else:
        ((field, zh_reasons),) = zh.json().items()
        assert zh_reasons == [chinese]
        assert en.json() == {field: [english]}
    assert not ResponderPosition.objects.exists()


def test_the_refusals_of_who_may_share_and_see_follow_the_language(cast):
    lon, lat = point_in(GRID)
    refused = put(cast.street, {"lon": lon, "lat": lat})
    assert refused.status_code == 403
    assert refused.json() == {"detail": "只有网格员和职能部门处置人员可以共享位置。"}
    refused = put(cast.street, {"lon": lon, "lat": lat}, accept_language="en")
    assert refused.json() == {
        "detail": "Only grid workers and department handlers share a position."
    }
    refused = client_of(cast.grid_worker).get(LIST, headers={"accept-language": "en"})
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "Responders' positions are shown to district, street and community staff."
    }
    not_an_object = put(cast.grid_worker, [lon, lat], accept_language="en")
    assert not_an_object.status_code == 400
    assert not_an_object.json() == {
        "detail": "Send a JSON object with lon, lat and optionally accuracy_m."
    }
