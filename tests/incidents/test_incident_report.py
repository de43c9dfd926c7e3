"""Intake through incidents.services.incident_report: located, numbered, owned, clocked, audited
and announced — or refused with the field and the reason, storing nothing."""

from __future__ import annotations

import math
import re
from datetime import datetime

import numpy as np
import pytest
import shapely

from accounts.models import Role
from gridmap.crs import MetricProjector, wgs84_to_gcj02
from gridmap.models import Region
from gridmap.selectors import active_generation
from incidents import calendar
from incidents.models import Channel, Incident, IncidentStatus, OwnerLevel, Stage, mask_phone
from incidents.services import (
    IncidentInputError,
    OutsideDistrict,
    incident_register,
    incident_report,
)
from incidents.workflow import ActionNotPermitted
from realtime.models import OutboxEvent
from tests.incidents.cases import (
    COMMUNITY,
    DISTRICT,
    FIRE,
    GRID,
    OTHER_STREET_GRID,
    STREET,
    category,
    event_scopes,
    last_audit,
    make_user,
    point_in,
    report,
    trail,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


def test_a_report_is_located_numbered_and_owned_by_its_community():
    incident = report(reporter_name="张三", reporter_phone="13812341234")

    assert re.fullmatch(r"LH-\d{8}-\d{6}", incident.number)
    day = calendar.working_calendar().tz  # the district's wall clock decides the day
    assert incident.number[3:11] == incident.created_at.astimezone(day).strftime("%Y%m%d")
    assert incident.status == IncidentStatus.REPORTED
    assert (incident.grid_code, incident.community_code, incident.street_code) == (
        GRID,
        COMMUNITY,
        STREET,
    )
    assert incident.district_code == "440309" and incident.street_name == "龙华街道"
    assert incident.generation_id == active_generation().pk
    assert incident.generation_number == active_generation().number
    assert incident.resolution == "inside" and not incident.on_border and not incident.triage
    assert (incident.owner_level, incident.owner_code) == (OwnerLevel.COMMUNITY, COMMUNITY)
    assert incident.reporter_phone == "13812341234"
    assert incident.masked_phone == "138****1234"
    assert incident.severity == ""


def test_an_integration_s_case_is_not_announced_to_a_scope_of_its_own():
    # An API key follows nothing live (command.live.user_scopes): a scope of the gateway's own
    # would be written and sent for nobody. A signed-in reporter's is there (the next test).
    gateway = make_user(Role.INTEGRATION)
    incident = report(reporter=gateway, channel=Channel.SENSOR)
    incident_register(incident=incident, by=make_user(Role.DISTRICT_OPERATOR, DISTRICT))

    announced = OutboxEvent.objects.filter(payload__incident__number=incident.number)
    assert [event.type for event in announced.order_by("id")] == [
        "incidents.incident_reported",
        "incidents.incident_status_changed",
    ]
    assert all(f"user:{gateway.pk}" not in event_scopes(event) for event in announced)


def test_the_register_clock_starts_from_the_category_limit():
    incident = report()

    limit = category().limit_for(Stage.REGISTER)
    assert incident.stage == Stage.REGISTER
    assert incident.stage_started_at == incident.created_at
    assert incident.stage_deadline == calendar.deadline(
        incident.created_at, limit.amount, limit.unit
    )
    assert incident.stage_warned is False


def test_numbers_of_one_day_are_sequential():
    first, second, third = report(), report(), report()
    numbers = [int(i.number.rsplit("-", 1)[1]) for i in (first, second, third)]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def test_a_report_writes_one_timeline_row_one_audit_entry_and_one_event():
    reporter = make_user(Role.GRID_WORKER, GRID)
    incident = report(reporter=reporter, channel=Channel.GRID_WORKER, reporter_phone="13812341234")

    assert trail(incident) == (1, 1, 1)
    (step,) = incident.transitions.all()
    assert (step.action, step.from_status, step.to_status) == ("report", "", "reported")
    assert step.actor_id == reporter.pk and step.actor_role == Role.GRID_WORKER
    entry = last_audit(incident)
    assert entry.action == "incidents.incident_report" and entry.actor_id == reporter.pk
    assert entry.before is None
    assert entry.after["number"] == incident.number and entry.after["grid"] == GRID
    assert entry.after["reporter_phone"] == "138****1234"  # never the full number in the chain
    event = OutboxEvent.objects.get(type="incidents.incident_reported")
    assert event.payload["incident"]["number"] == incident.number
    assert event.payload["incident"]["owner"] == {"level": "community", "code": COMMUNITY}
    assert "13812341234" not in str(event.payload) and "路边" not in str(event.payload)
    assert event_scopes(event) == {
        "district:440309",
        f"street:{STREET}",
        f"community:{COMMUNITY}",
        f"grid:{GRID}",
        f"user:{reporter.pk}",
    }


def test_the_raw_input_is_kept_beside_the_converted_point():
    lon, lat = point_in(GRID)
    glon, glat = wgs84_to_gcj02(lon, lat)

    incident = incident_report(
        channel=Channel.CITIZEN, category=category(), lon=glon, lat=glat, crs="gcj02"
    )

    assert (incident.raw_lon, incident.raw_lat, incident.raw_crs) == (glon, glat, "gcj02")
    assert incident.location.srid == 4326
    assert math.isclose(incident.location.x, lon, abs_tol=1e-5)
    assert math.isclose(incident.location.y, lat, abs_tol=1e-5)
    assert incident.grid_code == GRID


def test_a_point_just_outside_every_cell_goes_to_the_district_triage_queue():
    district = shapely.from_wkb(
        bytes(Region.objects.get(generation__status="active", level="district").geom.wkb)
    )
    coords = shapely.get_coordinates(district)
    lon, lat = coords[np.argmax(coords[:, 0])]
    projector = MetricProjector.around(lon, lat)
    x, y = projector.point(lon, lat)
    outside = projector.to_wgs84(shapely.Point(x + 60.0, y))

    incident = incident_report(
        channel=Channel.SENSOR, category=category(), lon=outside.x, lat=outside.y
    )

    assert incident.resolution == "nearest" and incident.triage is True
    assert (incident.owner_level, incident.owner_code) == (OwnerLevel.DISTRICT, "440309")
    assert incident.grid_code  # the nearest cell is kept for the map and the street's view
    assert incident.transitions.get().data["distance_m"] > 50


def test_a_point_far_outside_the_district_is_refused_with_its_distance():
    before = Incident.objects.count()
    with pytest.raises(OutsideDistrict) as refused:
        incident_report(channel=Channel.CITIZEN, category=category(), lon=114.0579, lat=22.5431)
    assert refused.value.field == "location"
    assert 2_000 < refused.value.distance_m < 10_000
    assert Incident.objects.count() == before


@pytest.mark.parametrize(
    ("lon", "lat", "crs", "field"),
    [
        (float("nan"), 22.65, "wgs84", "lon"),
        (114.03, None, "wgs84", "lat"),
        (114.03, 95.0, "wgs84", "lat"),
        ("east", 22.65, "wgs84", "lon"),
        (114.03, 22.65, "epsg:3857", "crs"),
    ],
)
def test_bad_coordinates_are_refused_naming_the_field(lon, lat, crs, field):
    with pytest.raises(IncidentInputError) as refused:
        incident_report(channel=Channel.CITIZEN, category=category(), lon=lon, lat=lat, crs=crs)
    assert refused.value.field == field
    assert Incident.objects.count() == 0


def test_emergencies_start_at_their_default_severity_unless_given():
    assert report(code=FIRE).severity == "IV"
    assert report(code=FIRE, severity="II").severity == "II"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"severity": "II"}, "severity"),  # not an emergency
        ({"code": FIRE, "severity": "V"}, "severity"),
        ({"channel": "fax"}, "channel"),
        ({"reporter_phone": "call me"}, "reporter_phone"),
        ({"description": "x" * 4001}, "description"),
        ({"client_reported_at": datetime(2026, 1, 1, 8, 0)}, "client_reported_at"),  # naive
    ],
)
def test_bad_fields_are_refused_and_nothing_is_stored(changes, field):
    with pytest.raises(IncidentInputError) as refused:
        report(**changes)
    assert refused.value.field == field
    assert Incident.objects.count() == 0


def test_an_inactive_category_is_refused():
    rubbish = category()
    rubbish.active = False
    rubbish.save()
    with pytest.raises(IncidentInputError) as refused:
        report()
    assert refused.value.field == "category"


def test_a_grid_worker_reports_in_their_own_grid_only():
    worker = make_user(Role.GRID_WORKER, GRID)
    assert report(reporter=worker).reporter == worker
    with pytest.raises(ActionNotPermitted):
        report(reporter=worker, grid=OTHER_STREET_GRID)
    assert Incident.objects.count() == 1


@pytest.mark.parametrize("role", [Role.AUDITOR, ""])
def test_auditors_and_users_without_a_role_do_not_report(role):
    with pytest.raises(ActionNotPermitted):
        report(reporter=make_user(role))


def test_a_reporting_user_lends_their_name_and_phone():
    worker = make_user(Role.GRID_WORKER, GRID, first_name="小明", phone="13900001111")
    incident = report(reporter=worker)
    assert incident.reporter_name == "小明"
    assert incident.masked_phone == "139****1111"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812341234", "138****1234"),
        ("", ""),
        ("12345", "*****"),
        ("0755-2345678", "075*****5678"),
    ],
)
def test_phone_numbers_are_masked(phone, masked):
    assert mask_phone(phone) == masked
