"""Responders on the map, in a real browser (Debian's Chromium) against a real Daphne
(tests/asgi_server.py: WebSockets, Redis, the test database).

* the district wall shows the responders of its snapshot (a person marker with name and grid),
  one who starts sharing while the wall is open appears without a reload, a move moves the
  marker and stopping removes it — all from the live feed (dispatch.responder_moved / _cleared) —
  and a position older than the max age leaves the map;
* a grid worker's phone (360×740, the browser's own geolocation): switching on 共享我的位置 PUTs
  the position, a move of more than 50 m is sent again, offline nothing goes and back online the
  newest fix does, the choice survives a reload, and switching off DELETEs it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import expect

from accounts.models import Role, User
from command.services import screen_token_issue
from dispatch.models import ResponderPosition
from dispatch.services import responder_position_clear, responder_position_report
from gridmap.models import Region
from tests.asgi_server import asgi_server  # noqa: F401  (fixture)
from tests.incidents.cases import (
    COMMUNITY,
    DISTRICT,
    GRID,
    OTHER_STREET_GRID,
    make_user,
    point_in,
)
from tests.threads import in_thread

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-Passw0rd-not-secret"


def _worker(username: str, name: str, grid: str = GRID) -> User:
    user = make_user(Role.GRID_WORKER, grid)
    user.username = username
    user.first_name = name
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.mark.django_db(transaction=True)
def test_the_wall_shows_responders_and_follows_them_live(
    browser: Any,
    asgi_server: str,  # noqa: F811
    committed_demo_geography: None,
) -> None:
    early = _worker("e2e-rs-early", "王早班")
    late = _worker("e2e-rs-late", "李晚到", OTHER_STREET_GRID)
    lon, lat = point_in(GRID)
    in_thread(lambda: responder_position_report(user=early, lon=lon, lat=lat, accuracy_m=8))

    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1920, "height": 1080}
    )
    context.set_default_timeout(30_000)
    try:
        _, raw = screen_token_issue(name="e2e 大屏", district_code=DISTRICT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{asgi_server}/command/wall/?token={raw}")
        assert urlsplit(page.url).path == "/command/wall/"
        page.wait_for_function("window.cityopsWall && window.cityopsWall.ready")
        page.wait_for_function("window.cityopsWall.status === 'live'")
        page.evaluate("window.__notReloaded = true")

        # From the snapshot: the marker, its label (name and grid cell), the count, the legend.
        early_marker = page.locator(f'.rs-icon[data-responder="{early.pk}"]')
        expect(early_marker).to_be_visible()
        expect(early_marker).to_have_attribute(
            "title", re.compile(rf"^王早班 · 网格员 · {_grid_name(GRID)} · \d\d:\d\d:\d\d$")
        )
        # The label names the cell without its community (三联社区第01网格 → 第01网格).
        label = page.locator(".wall-responder-label", has_text="王早班")
        expect(label).to_have_text("王早班" + _grid_name(GRID).removeprefix(_grid_name(COMMUNITY)))
        expect(page.locator("#map-responders")).to_have_text("在岗网格员 1")
        expect(page.locator("#map-legend")).to_contain_text("响应人员")

        # Another grid worker starts sharing while the wall is open: it appears, live.
        lon2, lat2 = point_in(OTHER_STREET_GRID)
        in_thread(lambda: responder_position_report(user=late, lon=lon2, lat=lat2, accuracy_m=15))
        page.wait_for_function("id => window.cityopsWall.hasResponder(id)", arg=late.pk)
        expect(page.locator(f'.rs-icon[data-responder="{late.pk}"]')).to_be_visible()
        expect(page.locator("#map-responders")).to_have_text("在岗网格员 2")

        # The early one walks to the other street's cell: the marker moves there.
        in_thread(lambda: responder_position_report(user=early, lon=lon2, lat=lat2))
        page.wait_for_function(
            "([id, lat]) => Math.abs(window.cityopsWall.responders.get(id).lat - lat) < 1e-6",
            arg=[early.pk, lat2],
        )
        moved = page.evaluate(
            """id => {
                const wall = window.cityopsWall;
                const r = wall.responders.get(id);
                const at = wall.map.latLngToContainerPoint([r.lat, r.lon]);
                const icon = document.querySelector(`.rs-icon[data-responder='${id}']`)
                    .getBoundingClientRect();
                const map = document.getElementById('wall-map').getBoundingClientRect();
                return Math.hypot(icon.left + icon.width / 2 - map.left - at.x,
                                  icon.top + icon.height / 2 - map.top - at.y);
            }""",
            early.pk,
        )
        assert moved < 2  # the marker is drawn where the new position is

        # The late one stops sharing: gone from the map and from the count.
        in_thread(lambda: responder_position_clear(user=late))
        page.wait_for_function("id => !window.cityopsWall.hasResponder(id)", arg=late.pk)
        expect(page.locator(f'.rs-icon[data-responder="{late.pk}"]')).to_have_count(0)
        expect(page.locator("#map-responders")).to_have_text("在岗网格员 1")

        # A phone that stops reporting sends no event: past the max age its position leaves the
        # map at the next check (every minute; run at once here, the position made that old).
        page.evaluate(
            "([id, minutes]) => { const w = window.cityopsWall;"
            " w.responders.get(id).at -= (minutes + 1) * 60000; w.respondersRecheck(); }",
            [early.pk, settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES],
        )
        expect(page.locator(f'.rs-icon[data-responder="{early.pk}"]')).to_have_count(0)
        expect(page.locator("#map-responders")).to_have_text("在岗网格员 0")
        assert page.evaluate("window.__notReloaded") is True
        assert errors == []
    finally:
        context.close()


def _grid_name(code: str) -> str:
    """The name of a region (grid cell, community) of the active generation."""
    return Region.objects.get(generation__status="active", code=code).name


@pytest.mark.django_db(transaction=True)
def test_a_grid_worker_shares_and_stops_sharing_from_the_phone(
    browser: Any,
    asgi_server: str,  # noqa: F811
    committed_demo_geography: None,
) -> None:
    worker = _worker("e2e-rs-phone", "赵巡查")
    lon, lat = point_in(GRID)
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 9},
        permissions=["geolocation"],
    )
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{asgi_server}/accounts/login/?next=/m/tasks/")
        page.fill("input[name=username]", worker.username)
        page.fill("input[name=password]", PASSWORD)
        page.click(".login-form button[type=submit]")
        page.wait_for_url(f"{asgi_server}/m/tasks/")

        share = page.locator("#m-share")
        expect(share).to_have_attribute("data-state", "off")
        expect(page.locator("#m-share-switch")).not_to_be_checked()
        assert not ResponderPosition.objects.filter(user=worker).exists()

        # On: the browser's position goes to the server, and the phone says so.
        page.locator(".m-switch").click()
        expect(share).to_have_attribute("data-state", "on")
        expect(page.locator("#m-share-status")).to_contain_text("位置已共享")
        expect(page.locator("#m-share-status")).to_contain_text("精度约 9 米")
        position = ResponderPosition.objects.get(user=worker)
        assert (round(position.point.x, 6), round(position.point.y, 6)) == (
            round(lon, 6),
            round(lat, 6),
        )
        assert position.grid_code == GRID and position.accuracy_m == 9

        # Walking more than 50 m (into another street's cell) is sent at once.
        lon2, lat2 = point_in(OTHER_STREET_GRID)
        context.set_geolocation({"longitude": lon2, "latitude": lat2, "accuracy": 20})
        page.wait_for_function(
            "lat => { const s = window.cityopsShare.state();"
            " return s.sent && Math.abs(s.sent.lat - lat) < 1e-6; }",
            arg=round(lat2, 6),
        )
        position.refresh_from_db()
        assert position.grid_code == OTHER_STREET_GRID and position.accuracy_m == 20

        # Offline: nothing is sent (nor kept to send later); back online, the newest fix goes.
        context.set_offline(True)
        expect(share).to_have_attribute("data-state", "offline")
        context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": 30})
        page.wait_for_function(
            "lat => window.cityopsShare.state().latest.lat === lat", arg=round(lat, 6)
        )
        position.refresh_from_db()
        assert position.grid_code == OTHER_STREET_GRID
        context.set_offline(False)
        expect(share).to_have_attribute("data-state", "on")
        page.wait_for_function(
            "lat => window.cityopsShare.state().sent.lat === lat", arg=round(lat, 6)
        )
        position.refresh_from_db()
        assert position.grid_code == GRID and position.accuracy_m == 30

        # Beyond the district: refused, the server's position kept, and the phone says why.
        context.set_geolocation({"longitude": 114.03, "latitude": 23.5, "accuracy": 10})
        expect(share).to_have_attribute("data-state", "error")
        expect(page.locator("#m-share-status")).to_have_text("当前位置不在本区辖区内，未共享。")
        position.refresh_from_db()
        assert position.grid_code == GRID
        context.set_geolocation({"longitude": lon2, "latitude": lat2, "accuracy": 20})
        expect(share).to_have_attribute("data-state", "on")

        # The choice is remembered: after a reload the switch is on and sharing resumes.
        page.reload()
        expect(page.locator("#m-share-switch")).to_be_checked()
        expect(share).to_have_attribute("data-state", "on")

        # Off: the position is removed from the server.
        page.locator(".m-switch").click()
        expect(share).to_have_attribute("data-state", "off")
        expect(page.locator("#m-share-status")).to_contain_text("未共享")
        assert not ResponderPosition.objects.filter(user=worker).exists()
        page.reload()
        expect(page.locator("#m-share-switch")).not_to_be_checked()
        assert errors == []
    finally:
        context.close()
