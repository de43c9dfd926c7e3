"""Duplicate suggestions (疑似重复): open cases of the same category within the category's radius
and time window before a case, visible to the reader, nearest first — the same on SpatiaLite
and PostGIS; shown in the 201 of a report and in the detail. Merging a suggested duplicate keeps
its reporter informed, and unmerging restores it."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from incidents.models import Category, Channel, Incident, IncidentStatus
from incidents.selectors import haversine_m, incident_duplicate_candidates
from incidents.services import (
    incident_dispatch,
    incident_merge,
    incident_register,
    incident_reject,
    incident_report,
)
from realtime.models import OutboxEvent
from tests.incidents.api import LIST, action_url, client_for, detail_url
from tests.incidents.cases import (
    FIRE,
    GRID,
    OTHER_GRID_SAME_COMMUNITY,
    RUBBISH,
    category,
    event_scopes,
    last_event,
    point_in,
)

pytestmark = pytest.mark.usefixtures("reference_data")

# Metres per degree of a great circle on the sphere the distances are measured on.
M_PER_DEG_LAT = 2 * math.pi * 6_371_008.8 / 360


def offset(origin: tuple[float, float], north_m: float = 0.0, east_m: float = 0.0):
    lon, lat = origin
    dlat = north_m / M_PER_DEG_LAT
    dlon = east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


@pytest.fixture
def origin(db) -> tuple[float, float]:
    return point_in(GRID)


def at(point, *, code: str = RUBBISH, reporter=None, hours_ago: float | None = None) -> Incident:
    """A case reported at `point` (through the real intake), optionally backdated."""
    incident = incident_report(
        channel=Channel.CITIZEN,
        category=category(code),
        lon=point[0],
        lat=point[1],
        description="路边堆放垃圾",
        reporter=reporter,
    )
    if hours_ago is not None:
        Incident.objects.filter(pk=incident.pk).update(
            created_at=incident.created_at - timedelta(hours=hours_ago)
        )
        incident.refresh_from_db()
    return incident


def suggested(incident: Incident, user) -> list[tuple[str, int]]:
    return [
        (candidate.incident.number, round(candidate.distance_m))
        for candidate in incident_duplicate_candidates(incident, user)
    ]


def test_the_haversine_distance_matches_a_known_one():
    # One minute of arc along a meridian is one nautical mile on the IUGG mean sphere (≈1853 m).
    assert haversine_m(114.0, 22.0, 114.0, 22.0 + 1 / 60) == pytest.approx(1853.3, abs=0.5)
    assert haversine_m(114.03, 22.65, 114.03, 22.65) == 0.0


def test_open_cases_of_the_same_category_nearby_are_suggested_nearest_first(cast, origin):
    far = at(offset(origin, north_m=80), hours_ago=2)
    near = at(offset(origin, east_m=30), hours_ago=1)
    at(offset(origin, north_m=-150), hours_ago=1)  # beyond the default 100 m
    new = at(origin)

    assert Category.objects.get(code=RUBBISH).duplicate_radius_m == 100
    assert suggested(new, cast.district) == [(near.number, 30), (far.number, 80)]


def test_the_radius_edge_is_exact_in_every_direction(cast, origin):
    inside = [
        at(offset(origin, north_m=99)),
        at(offset(origin, east_m=-99)),
        at(offset(origin, north_m=69, east_m=69)),  # 97.6 m, towards a corner of the box
    ]
    for point in (
        offset(origin, north_m=-101),
        offset(origin, east_m=101),
        offset(origin, north_m=-72, east_m=-72),
    ):
        at(point)  # 101–102 m: outside
    new = at(origin)

    assert sorted(number for number, _ in suggested(new, cast.district)) == sorted(
        case.number for case in inside
    )


def test_only_cases_reported_within_the_window_before_it_count(cast, origin):
    recent = at(offset(origin, north_m=10), hours_ago=71)
    at(offset(origin, north_m=20), hours_ago=73)  # the window is 72 h
    new = at(origin)
    later = at(offset(origin, north_m=3))  # reported after it: not a candidate for `new`

    assert suggested(new, cast.district) == [(recent.number, 10)]
    assert [number for number, _ in suggested(later, cast.district)] == [new.number, recent.number]


def test_another_category_finished_and_merged_cases_are_not_suggested(cast, origin):
    at(offset(origin, north_m=10), code=FIRE)
    rejected = at(offset(origin, north_m=20))
    incident_reject(incident=rejected, by=cast.community, reason="不属实")
    primary = at(offset(origin, north_m=40))
    merged = at(offset(origin, north_m=30))
    incident_merge(incident=merged, into=primary, by=cast.community)
    registered = at(offset(origin, north_m=50))
    incident_register(incident=registered, by=cast.community)
    new = at(origin)

    assert suggested(new, cast.district) == [(primary.number, 40), (registered.number, 50)]


def test_the_category_settings_widen_narrow_or_switch_off_suggestions(cast, origin):
    other = at(offset(origin, north_m=150), hours_ago=1)
    new = at(origin)
    rubbish = Category.objects.get(code=RUBBISH)
    assert suggested(new, cast.district) == []

    rubbish.duplicate_radius_m = 200
    rubbish.save()
    new.refresh_from_db()
    assert suggested(new, cast.district) == [(other.number, 150)]

    rubbish.duplicate_window_hours = 0
    rubbish.save()
    new.refresh_from_db()
    assert suggested(new, cast.district) == []


def test_only_cases_the_reader_may_see_are_suggested(cast, origin):
    other = at(offset(origin, north_m=25))
    new = at(origin)
    incident_register(incident=new, by=cast.community)
    incident_dispatch(incident=new, by=cast.street, department_code="CGJ")
    new.refresh_from_db()

    # 城管 sees `new` (dispatched to it), not `other` (nobody's yet).
    assert suggested(new, cast.handler) == []
    assert suggested(new, cast.other_street) == []
    assert suggested(new, cast.street) == [(other.number, 25)]
    incident_register(incident=other, by=cast.community)
    incident_dispatch(incident=other, by=cast.street, department_code="CGJ")
    assert suggested(new, cast.handler) == [(other.number, 25)]


def test_a_report_and_the_detail_carry_the_possible_duplicates(cast, origin):
    first = at(offset(origin, north_m=40), reporter=cast.grid_worker_2, hours_ago=1)
    lon, lat = origin

    created = client_for(cast.grid_worker).post(
        LIST, {"category": RUBBISH, "lon": lon, "lat": lat}, format="json"
    )

    assert created.status_code == 201
    (duplicate,) = created.json()["possible_duplicates"]
    assert duplicate["number"] == first.number
    assert duplicate["distance_m"] == pytest.approx(40, abs=0.5)
    assert duplicate["status"] == IncidentStatus.REPORTED
    assert duplicate["created_at"]
    number = created.json()["number"]
    detail = client_for(cast.community).get(detail_url(number)).json()
    assert [case["number"] for case in detail["possible_duplicates"]] == [first.number]
    # The other street's operator cannot even see the case.
    assert client_for(cast.other_street).get(detail_url(number)).status_code == 404


def test_merging_a_suggested_duplicate_keeps_its_reporter_informed_and_unmerge_restores(
    cast, origin
):
    primary = at(offset(origin, north_m=30), reporter=cast.grid_worker_2, hours_ago=1)
    duplicate = at(origin, reporter=cast.grid_worker)
    community = client_for(cast.community)
    assert [
        c["number"]
        for c in community.get(detail_url(duplicate.number)).json()["possible_duplicates"]
    ] == [primary.number]

    merged = community.post(
        action_url(duplicate.number, "merge"),
        {"into": primary.number, "reason": "同一堆垃圾"},
        format="json",
    )

    assert merged.status_code == 200, merged.json()
    assert merged.json()["status"] == IncidentStatus.MERGED
    assert merged.json()["merged_into"] == primary.number
    event = last_event(duplicate)
    assert event.payload["transition"]["action"] == "merge"
    scopes = event_scopes(event)
    # The duplicate's reporter is told on their own channel …
    assert f"user:{cast.grid_worker.pk}" in scopes
    # … and the primary's centres and grid cell (followed by its grid-worker reporter) hear of
    # the primary: one more case merged into it.
    primary.refresh_from_db()
    told = last_event(primary)
    assert told.type == "incidents.incident_merges_changed"
    assert told.payload["merges"] == {"action": "merge", "merged": 1, "actor": cast.community.pk}
    assert told.payload["incident"]["status"] == primary.status
    assert {
        f"street:{primary.street_code}",
        f"community:{primary.community_code}",
        f"grid:{primary.grid_code}",
    } <= event_scopes(told)
    # The reporter still sees their case, now pointing at the one being worked on.
    mine = client_for(cast.grid_worker).get(detail_url(duplicate.number)).json()
    assert mine["status"] == IncidentStatus.MERGED and mine["merged_into"] == primary.number
    assert mine["reporter"] == cast.grid_worker.username
    # A merged case is no longer suggested to anyone.
    later = at(offset(origin, north_m=10))
    assert duplicate.number not in [number for number, _ in suggested(later, cast.district)]

    restored = community.post(action_url(duplicate.number, "unmerge"), {}, format="json")

    assert restored.status_code == 200
    body = restored.json()
    assert body["status"] == IncidentStatus.REPORTED and body["merged_into"] is None
    assert [c["number"] for c in body["possible_duplicates"]] == [primary.number]
    event = last_event(duplicate)
    assert event.payload["transition"]["action"] == "unmerge"
    assert f"user:{cast.grid_worker.pk}" in event_scopes(event)
    assert last_event(primary).payload["merges"]["merged"] == 0
    assert duplicate.number in [number for number, _ in suggested(later, cast.district)]


def test_the_primary_lists_the_cases_merged_into_it_as_far_as_the_reader_may_see(cast, origin):
    primary = at(origin, hours_ago=1)
    near = at(offset(origin, north_m=20))
    # In the community's other grid cell: the primary's grid worker does not see it.
    far = at(point_in(OTHER_GRID_SAME_COMMUNITY))
    district = client_for(cast.district)
    assert district.get(detail_url(primary.number)).json()["merged"] == {"total": 0, "cases": []}
    for case in (near, far):
        merged = district.post(
            action_url(case.number, "merge"), {"into": primary.number}, format="json"
        )
        assert merged.status_code == 200, merged.json()

    seen = client_for(cast.community).get(detail_url(primary.number)).json()["merged"]
    assert seen["total"] == 2
    assert [(c["number"], c["channel"]) for c in seen["cases"]] == [
        (near.number, Channel.CITIZEN),
        (far.number, Channel.CITIZEN),
    ]
    assert all(c["created_at"] for c in seen["cases"])
    # The grid worker is told there are two, and named only the one in their grid cell.
    mine = client_for(cast.grid_worker).get(detail_url(primary.number)).json()["merged"]
    assert (mine["total"], [c["number"] for c in mine["cases"]]) == (2, [near.number])
    assert client_for(cast.grid_worker).get(detail_url(far.number)).status_code == 404

    # The grid worker hears that a second case was merged into the primary, not which: the
    # far case's own event stays in its own grid cell.
    merged_far = OutboxEvent.objects.filter(payload__incident__number=far.number).last()
    assert merged_far is not None and merged_far.payload["transition"]["action"] == "merge"
    assert f"grid:{GRID}" not in event_scopes(merged_far)
    told = last_event(primary)
    assert f"grid:{GRID}" in event_scopes(told)
    assert told.payload["merges"]["merged"] == 2
    assert far.number not in json.dumps(told.payload, cls=DjangoJSONEncoder)

    restored = district.post(action_url(far.number, "unmerge"), {}, format="json")

    assert restored.status_code == 200
    # The primary's scopes hear of the unmerge as they heard of the merge: its page reloads.
    # The far case's unmerge itself does not reach the primary's grid cell.
    assert f"grid:{GRID}" not in event_scopes(last_event(far))
    told = last_event(primary)
    assert told.payload["merges"] == {"action": "unmerge", "merged": 1, "actor": cast.district.pk}
    assert {f"grid:{GRID}", f"community:{primary.community_code}"} <= event_scopes(told)
    seen = client_for(cast.community).get(detail_url(primary.number)).json()["merged"]
    assert (seen["total"], [c["number"] for c in seen["cases"]]) == (1, [near.number])


def test_the_admin_edits_a_categorys_duplicate_radius_and_window(admin_client):
    from tests.incidents.test_admin import CATEGORIES, _post_data

    rubbish = Category.objects.get(code=RUBBISH)
    url = f"{CATEGORIES}{rubbish.pk}/change/"
    page = admin_client.get(url)
    assert "疑似重复提示" in page.content.decode()
    data = _post_data(page)
    data["duplicate_radius_m"] = "250"
    data["duplicate_window_hours"] = "24"

    assert admin_client.post(url, data).status_code == 302

    rubbish.refresh_from_db()
    assert (rubbish.duplicate_radius_m, rubbish.duplicate_window_hours) == (250, 24)
    assert rubbish.edited_at is not None
