"""附近的响应人员 on a case page, live, in a real browser (Debian's Chromium) against a real Daphne
(tests/asgi_server.py: WebSockets, Redis, the test database).

The district's operator has a case of 三联社区 open. Responders report positions through
dispatch.services (committed in this process) and the list beside the map follows without a
reload: a report within 3 km of the case adds a row with its distance (the haversine of
incidents.selectors, worded as the server words it) and a mark on the map; a move beyond 3 km
removes both; a move closer than another responder puts it first; stopping removes it, and the
empty note shows when nobody is left. A reload of the list (what a resync does) keeps to the
radius; the "ago" text ticks, and a position past the max age leaves.

The map opens on the case's community and widens to show a responder listed outside it, until
the user zooms it with the wheel; a row clicked (or Enter on it) shows its responder and the
case together, with that responder's name on its mark.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import expect

from accounts.models import Role, User
from dispatch.services import responder_position_clear
from incidents.models import Incident
from incidents.selectors import haversine_m
from incidents.services import calendar_load, categories_load
from tests.asgi_server import asgi_server  # noqa: F401  (fixture)
from tests.e2e.responders import LIVE, live_page, report_in, signing_user
from tests.incidents.cases import DISTRICT, GRID, point_in, report
from tests.threads import in_thread

pytestmark = pytest.mark.e2e

# Cells of 龙华街道 at known distances from a point of GRID (the case's): about 0.6 km, 1 km,
# 2.1 km and 4 km (checked below, so a change of the demo geography shows here first).
NEAR = "440309001001015"
MID = "440309001001009"
FARTHER = "440309001003012"
BEYOND = "440309001004008"
RADIUS_M = 3000


def _distance(case: Incident, grid: str) -> float:
    lon, lat = point_in(grid)
    return haversine_m(case.location.x, case.location.y, lon, lat)


def _text(metres: float) -> str:
    """The distance as the server words it (consoles._distance_text, in Chinese)."""
    whole = round(metres)
    return f"{whole} 米" if whole < 1000 else f"{whole / 1000:.1f} 公里"


def _case_page(browser: Any, base_url: str, user: User, case: Incident) -> Any:
    page = live_page(browser, base_url, user, f"/command/cases/{case.number}/", 1440, 900)
    page.wait_for_function("window.cityopsConsole.mapReady === true")
    return page


def _row(page: Any, user: User) -> Any:
    return page.locator(f'#case-responders li[data-responder="{user.pk}"]')


def _order(page: Any, ids: list[int]) -> None:
    page.wait_for_function(
        "ids => JSON.stringify(window.cityopsConsole.nearby) === JSON.stringify(ids)",
        arg=ids,
        timeout=LIVE,
    )
    rows = page.locator("#case-responders li")
    expect(rows).to_have_count(len(ids))
    for index, pk in enumerate(ids):
        expect(rows.nth(index)).to_have_attribute("data-responder", str(pk))
    expect(page.locator("#case-map path.responder-mark")).to_have_count(len(ids))


def _case_and_people() -> tuple[Incident, User, User, User]:
    """A case of GRID; the district's operator who opens it; 王网格 (a grid worker of GRID) and
    钱处置 (a department handler), who will share positions."""
    categories_load()
    calendar_load()
    case = in_thread(lambda: report(grid=GRID, description="井盖松动"))
    district = signing_user("e2e-nearby-district", Role.DISTRICT_OPERATOR, DISTRICT)
    wang = signing_user("e2e-nearby-wang", Role.GRID_WORKER, GRID, name="王网格")
    qian = signing_user("e2e-nearby-qian", Role.DEPARTMENT_HANDLER, name="钱处置", department="CGJ")
    return case, district, wang, qian


@pytest.mark.django_db(transaction=True)
def test_the_case_page_follows_the_responders_nearby(
    browser: Any,
    asgi_server: str,  # noqa: F811
    committed_demo_geography: None,
) -> None:
    case, district, wang, qian = _case_and_people()
    near, mid, farther, beyond = (_distance(case, grid) for grid in (NEAR, MID, FARTHER, BEYOND))
    assert near < mid < farther < RADIUS_M < beyond

    page = _case_page(browser, asgi_server, district, case)
    try:
        panel = page.get_by_test_id("nearby-responders")
        expect(panel.locator("li")).to_have_count(0)
        expect(page.get_by_test_id("nearby-empty")).to_be_visible()

        # Within 3 km: a row with the distance (as the server words it), a mark on the map.
        report_in(wang, NEAR)
        row = _row(page, wang)
        expect(row).to_be_visible(timeout=LIVE)
        expect(row.locator(".nearby-name")).to_have_text("王网格")
        expect(row.locator(".nearby-distance")).to_have_text(_text(near))
        expect(row.locator(".nearby-where")).to_contain_text("网格员")
        expect(row.locator(".nearby-ago")).to_have_text("刚刚")
        expect(page.get_by_test_id("nearby-empty")).to_be_hidden()
        _order(page, [wang.pk])

        # Beyond 3 km (still in the district the operator sees): row and mark gone.
        report_in(wang, BEYOND)
        expect(row).to_have_count(0, timeout=LIVE)
        _order(page, [])
        expect(page.get_by_test_id("nearby-empty")).to_be_visible()

        # Two within the radius, nearest first; one moving closer than the other goes first.
        report_in(qian, MID)
        report_in(wang, FARTHER)
        _order(page, [qian.pk, wang.pk])
        expect(_row(page, wang).locator(".nearby-distance")).to_have_text(_text(farther))
        expect(_row(page, qian).locator(".nearby-distance")).to_have_text(_text(mid))
        report_in(wang, NEAR)
        _order(page, [wang.pk, qian.pk])
        expect(_row(page, wang).locator(".nearby-distance")).to_have_text(_text(near))

        # An older position (a replay after a resync) never replaces a newer one: a move
        # beyond the radius a minute before the last report leaves the row where it is.
        at = _row(page, wang).locator(".nearby-ago").get_attribute("datetime")
        lon, lat = point_in(BEYOND)
        page.evaluate(
            """([id, lon, lat, at]) => window.cityopsConsole.nearbyApply([{
                event_type: "dispatch.responder_moved",
                payload: {responder: {id, name: "王网格", role: "grid_worker", lon, lat,
                  at: new Date(Date.parse(at) - 60000).toISOString()}}
            }])""",
            [wang.pk, lon, lat, at],
        )
        _order(page, [wang.pk, qian.pk])

        # After a resync the list is read again from the API (the district's positions, kept to
        # the radius here: the same two).
        assert page.evaluate("window.cityopsConsole.nearbyReload()") is True
        _order(page, [wang.pk, qian.pk])

        # The "ago" text ticks (every 30 s; run at once here, the clock set 7½ minutes after
        # the report), and past the max age a position leaves without any event.
        at = _row(page, qian).locator(".nearby-ago").get_attribute("datetime")
        clock = (
            "([at, minutes]) => window.cityopsConsole.nearbyClock(Date.parse(at) + minutes * 60000)"
        )
        page.evaluate(clock, [at, 7.5])
        expect(_row(page, qian).locator(".nearby-ago")).to_have_text("7 分钟前")
        page.evaluate(clock, [at, 0])

        # Sharing stops: gone, one after the other; then the empty note.
        in_thread(lambda: responder_position_clear(user=wang))
        _order(page, [qian.pk])
        in_thread(lambda: responder_position_clear(user=qian))
        _order(page, [])
        expect(page.get_by_test_id("nearby-empty")).to_be_visible()
        expect(page.get_by_test_id("nearby-empty")).to_have_text(
            "3 公里内暂无共享位置的网格员或部门人员。"
        )

        # A position that aged out leaves at the next tick.
        report_in(qian, MID)
        _order(page, [qian.pk])
        at = _row(page, qian).locator(".nearby-ago").get_attribute("datetime")
        minutes = settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES
        page.evaluate(clock, [at, minutes + 0.5])
        _order(page, [])
        expect(page.get_by_test_id("nearby-empty")).to_be_visible()

        assert page.evaluate("window.__notReloaded") is True
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        page.context.close()


# Whether the case map's view holds a point ([lat, lon]).
IN_VIEW = "([lat, lon]) => window.cityopsConsole.map.getBounds().contains([lat, lon])"


def _in_view(page: Any, grid: str) -> bool:
    lon, lat = point_in(grid)
    return bool(page.evaluate(IN_VIEW, [lat, lon]))


def _wait_in_view(page: Any, grid: str) -> None:
    lon, lat = point_in(grid)
    page.wait_for_function(IN_VIEW, arg=[lat, lon], timeout=LIVE)


@pytest.mark.django_db(transaction=True)
def test_the_case_map_shows_the_listed_responders_until_the_user_moves_it(
    browser: Any,
    asgi_server: str,  # noqa: F811
    committed_demo_geography: None,
) -> None:
    case, district, wang, qian = _case_and_people()

    page = _case_page(browser, asgi_server, district, case)
    try:
        # The map opens on the case's community; a responder 2 km off is outside it.
        assert not _in_view(page, FARTHER)
        # Listed live: the view widens to show it.
        report_in(qian, FARTHER)
        _order(page, [qian.pk])
        _wait_in_view(page, FARTHER)
        assert _in_view(page, GRID)  # the case too

        # The user zooms in on the case (the mouse wheel over it): the view is theirs now, and
        # a responder listed after that does not move it.
        box = page.locator("#case-map").bounding_box()
        point = page.evaluate(
            "([lat, lon]) => window.cityopsConsole.map.latLngToContainerPoint([lat, lon])",
            [case.location.y, case.location.x],
        )
        page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
        for _ in range(4):
            page.mouse.wheel(0, -300)
            page.wait_for_timeout(300)
        page.wait_for_function("window.cityopsConsole.map.getZoom() >= 16")
        assert not _in_view(page, NEAR)
        view = page.evaluate("window.cityopsConsole.map.getBounds().toBBoxString()")
        report_in(wang, NEAR)
        _order(page, [wang.pk, qian.pk])
        page.wait_for_timeout(500)
        assert page.evaluate("window.cityopsConsole.map.getBounds().toBBoxString()") == view
        assert not _in_view(page, NEAR)

        # A row, clicked, shows its responder beside the case (and its name on the mark).
        _row(page, wang).click()
        _wait_in_view(page, NEAR)
        expect(page.locator(".leaflet-tooltip")).to_have_count(1)
        expect(page.locator(".leaflet-tooltip")).to_contain_text("王网格")
        # Or focused and Enter.
        _row(page, qian).focus()
        page.keyboard.press("Enter")
        _wait_in_view(page, FARTHER)
        expect(page.locator(".leaflet-tooltip")).to_have_count(1)
        expect(page.locator(".leaflet-tooltip")).to_contain_text("钱处置")

        # Opened with both already listed, the map shows them from the start.
        fresh = _case_page(browser, asgi_server, district, case)
        try:
            _order(fresh, [wang.pk, qian.pk])
            assert _in_view(fresh, FARTHER) and _in_view(fresh, NEAR)
            assert fresh.errors == []  # type: ignore[attr-defined]
        finally:
            fresh.context.close()
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        page.context.close()
