"""The received-date range (受理日期 since/until) of a console's queue, its export and the API list:
local days of the server's time zone, both ends inclusive; a bad day is named, never ignored
silently; the range only narrows what the reader may see anyway."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from audit.models import AuditEntry
from incidents.models import Incident
from incidents.selectors import BAD_DAY, DAY_OUT_OF_RANGE, DAYS_REVERSED, received_days
from tests.incidents.api import LIST, client_for
from tests.incidents.cases import OTHER_STREET_GRID, STREET, Cast, make_cast, report
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

SHANGHAI = ZoneInfo("Asia/Shanghai")
STREET_URL = f"/command/street/{STREET}/"


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _received(at: datetime, **extra: Any) -> Incident:
    case = report(**extra)
    Incident.objects.filter(pk=case.pk).update(created_at=at)
    return case


@pytest.fixture
def days() -> dict[str, Incident]:
    """Cases received just before, at the start of, at the end of and just after 2026-11-24 in
    Shenzhen, and one of another street on that day."""
    return {
        "before": _received(datetime(2026, 11, 23, 23, 59, 59, tzinfo=SHANGHAI)),
        "first": _received(datetime(2026, 11, 24, 0, 0, 0, tzinfo=SHANGHAI)),
        "last": _received(datetime(2026, 11, 24, 23, 59, 59, tzinfo=SHANGHAI)),
        "after": _received(datetime(2026, 11, 25, 0, 0, 0, tzinfo=SHANGHAI)),
        "other_street": _received(
            datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI), grid=OTHER_STREET_GRID
        ),
    }


def _numbers_on(page: str) -> set[str]:
    return set(re.findall(r'<tr[^>]*data-number="([^"]+)"', page))


def _page(user: Any, query: str) -> Any:
    client = Client()
    client.force_login(user)
    return client.get(f"{STREET_URL}?{query}")


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("2026-11-24", "2026-11-24", (date(2026, 11, 24), date(2026, 11, 24), {})),
        ("", " 2026-02-29 ", (None, None, {"until": BAD_DAY})),  # 2026 is no leap year
        ("2026/11/24", "", (None, None, {"since": BAD_DAY})),
        ("2026-W48-2", "20261124", (None, None, {"since": BAD_DAY, "until": BAD_DAY})),
        (
            "2026-11-25",
            "2026-11-24",
            (date(2026, 11, 25), date(2026, 11, 24), {"until": DAYS_REVERSED}),
        ),
        ("", "", (None, None, {})),
    ],
)
def test_received_days_reads_local_days_and_names_each_bad_one(since, until, expected) -> None:
    assert received_days(since, until) == expected


def test_the_street_queue_keeps_the_cases_received_on_those_days(people, days) -> None:
    response = _page(people.street, "status=all&since=2026-11-24&until=2026-11-24")
    assert response.status_code == 200
    page = response.content.decode()
    assert _numbers_on(page) == {days["first"].number, days["last"].number}
    # The fields show what is filtered, and the export link carries it.
    assert 'name="since" value="2026-11-24"' in page
    assert "since=2026-11-24&amp;until=2026-11-24&amp;export=csv" in page

    open_ended = _page(people.street, "since=2026-11-24").content.decode()
    assert _numbers_on(open_ended) == {days[k].number for k in ("first", "last", "after")}
    up_to = _page(people.street, "until=2026-11-23").content.decode()
    assert _numbers_on(up_to) == {days["before"].number}


def test_a_bad_day_is_named_beside_its_field_and_not_used(people, days) -> None:
    response = _page(people.street, "since=2026-11-25&until=2026-11-24")
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-error-for="until"' in page and "结束日期早于开始日期" in page
    # Also above the queue (what the script swaps in when a filter changes), naming the field.
    summary = re.search(r'data-testid="queue-filter-errors">([^<]*)<', page)
    assert summary and "受理日期至：结束日期早于开始日期" in summary.group(1)
    # Only the bad end is left out, never the whole queue emptied.
    assert _numbers_on(page) == {days["after"].number}

    fragment = _page(people.street, "since=24.11.2026&fragment=queue")
    assert fragment.status_code == 400
    assert "日期格式为 年-月-日" in fragment.content.decode()
    everything = {days[k].number for k in ("before", "first", "last", "after")}
    assert _numbers_on(fragment.content.decode()) == everything


def test_the_export_holds_the_days_and_records_them(people, days) -> None:
    response = _page(people.street, "status=all&since=2026-11-24&until=2026-11-24&export=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8")[1:])))
    assert {row["案件编号"] for row in rows} == {days["first"].number, days["last"].number}
    entry = AuditEntry.objects.get(action="command.queue_export")
    assert entry.after["filters"]["since"] == "2026-11-24"
    assert entry.after["filters"]["until"] == "2026-11-24"
    assert entry.after["rows"] == 2


def test_the_api_list_takes_the_same_days_within_the_readers_place(people, days) -> None:
    street = client_for(people.street)
    body = street.get(LIST, {"since": "2026-11-24", "until": "2026-11-24"}).json()
    assert {case["number"] for case in body["results"]} == {
        days["first"].number,
        days["last"].number,
    }
    assert body["count"] == 2  # not the other street's case of that day

    district = client_for(people.district).get(LIST, {"since": "2026-11-24", "until": "2026-11-24"})
    assert district.json()["count"] == 3

    bad = street.get(LIST, {"since": "yesterday", "until": "2026-02-30"})
    assert bad.status_code == 400
    day_format = ["日期的格式是 YYYY-MM-DD。"]
    assert bad.json() == {"since": day_format, "until": day_format}
    reversed_ = street.get(LIST, {"since": "2026-11-25", "until": "2026-11-24"})
    assert reversed_.status_code == 400
    assert reversed_.json() == {"until": ["不能早于 since。"]}


def test_a_day_outside_the_years_a_list_covers_is_named_not_a_server_error(people, days) -> None:
    """Year 1 or 9999 would overflow the day's bounds (a 500 before): a 400 naming the field."""
    assert received_days("0001-01-01", "9999-12-31") == (
        None,
        None,
        {"since": DAY_OUT_OF_RANGE, "until": DAY_OUT_OF_RANGE},
    )
    api = client_for(people.street).get(LIST, {"until": "9999-12-31"})
    assert api.status_code == 400
    assert api.json() == {"until": ["必须在 1970-01-01 到 2999-12-31 之间。"]}
    english = client_for(people.street).get(
        LIST, {"until": "9999-12-31"}, headers={"accept-language": "en"}
    )
    assert english.json() == {"until": ["Must be between 1970-01-01 and 2999-12-31."]}

    page = _page(people.street, "since=0001-01-01&export=csv")
    assert page.status_code == 400
    assert "日期须在 1970-01-01 至 2999-12-31 之间" in page.content.decode()
    assert not AuditEntry.objects.filter(action="command.queue_export").exists()
