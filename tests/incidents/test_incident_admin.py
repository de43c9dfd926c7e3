"""The read-only admin of cases: it shows the case and its timeline, never changes them."""

from __future__ import annotations

import pytest

from incidents.services import incident_register
from incidents.services.bulk import BulkItem, incidents_report_bulk
from tests.incidents.cases import GRID, Cast, point_in, report
from tests.incidents.test_api_bulk import make_gateway

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

CASES = "/admin/incidents/incident/"
SOURCES = "/admin/incidents/alarmsource/"


def test_the_list_and_the_detail_show_the_case_with_a_masked_phone(admin_client, cast: Cast):
    case = incident_register(
        incident=report(reporter_name="李四", reporter_phone="13812341234"), by=cast.community
    )

    listing = admin_client.get(CASES).content.decode()
    assert case.number in listing and "三联社区" in listing

    detail = admin_client.get(f"{CASES}{case.pk}/change/").content.decode()
    assert case.number in detail and "138****1234" in detail
    assert "13812341234" not in detail
    assert "440309001001001" in detail and "立案" in detail  # the path and the timeline
    assert 'name="_save"' not in detail  # nothing to save


def test_cases_are_neither_added_changed_nor_deleted_in_the_admin(admin_client, cast: Cast):
    case = report()
    assert admin_client.get(f"{CASES}add/").status_code == 403
    assert admin_client.post(f"{CASES}{case.pk}/change/", {"status": "closed"}).status_code == 403
    assert admin_client.get(f"{CASES}{case.pk}/delete/").status_code == 403
    case.refresh_from_db()
    assert case.status == "reported"


def test_the_alarm_sources_are_listed_busiest_first_and_never_changed(admin_client, cast: Cast):
    lon, lat = point_in(GRID)
    gateway = make_gateway()
    items = [
        BulkItem(channel="sensor", category="01001", lon=lon, lat=lat, source_ref=ref)
        for ref in ("SW-QUIET", "SW-BUSY", "SW-BUSY", "SW-BUSY")
    ]
    incidents_report_bulk(items=items, by=gateway.user)

    listing = admin_client.get(SOURCES).content.decode()
    assert listing.index("SW-BUSY") < listing.index("SW-QUIET")
    assert "12345热线" not in listing  # the channel filter offers the bulk channels only
    assert "SW-BUSY" not in admin_client.get(f"{SOURCES}?channel=video_ai").content.decode()
    assert admin_client.get(f"{SOURCES}add/").status_code == 403
