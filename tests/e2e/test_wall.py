"""The district wall screen in a real browser (Debian's Chromium, 1920×1080, zh-CN) against a real
Daphne (tests/asgi_server.py: WebSockets, Redis, the test database).

* opened through a screen token's address, as a kiosk: the token leaves the address bar, the
  page fills the screen without scrolling, its figures equal the server's snapshot, and it
  follows the district's live feed;
* a case reported by a grid worker through the API appears on the wall without a reload — a
  marker on the map, the top line of the ticker, one more in 今日上报 and its street's row — and
  its registration by the district centre (through the API too) moves 今日立案;
* when the server goes away the "实时连接中断" banner is shown.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from accounts.models import Role, User
from command.services import screen_token_issue
from incidents.services import calendar_load, categories_load
from tests.asgi_server import asgi_server, daphne_server, private_redis  # noqa: F401
from tests.incidents.cases import (
    DISTRICT,
    GRID,
    OTHER_STREET_GRID,
    STREET,
    make_user,
    point_in,
    report,
)

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-Passw0rd-not-secret"
WALL = {"width": 1920, "height": 1080}


@pytest.fixture
def reference(committed_demo_geography: None) -> None:
    """Categories, stage limits and the calendar, committed for the server."""
    categories_load()
    calendar_load()


@pytest.fixture
def wall_context(browser: Any) -> Any:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=WALL)
    context.set_default_timeout(30_000)
    yield context
    context.close()


def _open_wall(context: Any, base_url: str) -> tuple[Any, list[str]]:
    """The wall opened as a kiosk opens it: through a fresh screen token's address."""
    _, raw = screen_token_issue(name="e2e 大屏", district_code=DISTRICT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base_url}/command/wall/?token={raw}")
    assert urlsplit(page.url).path == "/command/wall/"
    assert "token" not in page.url
    page.wait_for_function(
        "window.cityopsWall && window.cityopsWall.ready && window.cityopsWall.boundaries"
    )
    page.wait_for_function("window.cityopsWall.status === 'live'")
    return page, errors


def _user(username: str, role: str, place: str) -> User:
    user = make_user(role, place)
    user.username = username
    user.set_password(PASSWORD)
    user.save()
    return user


def _api_post(browser: Any, base_url: str, user: User, path: str, body: dict[str, Any]) -> Any:
    """POST to the API as `user` — signed in through the sign-in page of a browser context of
    its own, with the session and the CSRF token, as the consoles and the phone do."""
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{base_url}/accounts/login/?next=/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click(".login-form button[type=submit]")
        page.wait_for_url(f"{base_url}/")
        token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
        response = context.request.post(
            f"{base_url}{path}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "X-CSRFToken": token},
        )
        return {"status": response.status, "body": response.json()}
    finally:
        context.close()


def _kpi(page: Any, key: str) -> Any:
    return page.locator(f"#kpi-{key}")


def _street_cell(page: Any, street: str, figure: str) -> Any:
    return page.locator(f'#street-rows tr[data-street="{street}"] td[data-figure="{figure}"]')


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_reported_case_appears_on_the_wall_without_a_reload(
    wall_context: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    report(grid=GRID)
    report(grid=OTHER_STREET_GRID)
    worker = _user("e2e-wall-worker", Role.GRID_WORKER, GRID)
    district = _user("e2e-wall-district", Role.DISTRICT_OPERATOR, DISTRICT)

    page, errors = _open_wall(wall_context, asgi_server)
    expect(_kpi(page, "reported")).to_have_text("2")
    expect(_street_cell(page, STREET, "reported")).to_have_text("1")
    assert page.evaluate("window.cityopsWall.mismatches") == []
    # The wall fills the screen and never scrolls.
    assert page.evaluate(
        "document.documentElement.scrollHeight <= innerHeight"
        " && document.documentElement.scrollWidth <= innerWidth"
    )
    page.evaluate("window.__notReloaded = true")

    # A grid worker reports through the API (their session + CSRF), from another browser.
    lon, lat = point_in(GRID)
    answer = _api_post(
        wall_context.browser,
        asgi_server,
        worker,
        "/api/v1/incidents/",
        {"category": "06010", "lon": lon, "lat": lat},
    )
    assert answer["status"] == 201, answer
    number = answer["body"]["number"]

    # On the wall, without a reload: the ticker's first line, the KPI, the street, the marker.
    first = page.locator("#ticker-list li").first
    expect(first).to_have_attribute("data-number", number)
    expect(first).to_contain_text("暴露垃圾")
    expect(first).to_contain_text("新上报")
    expect(_kpi(page, "reported")).to_have_text("3")
    expect(_street_cell(page, STREET, "reported")).to_have_text("2")
    page.wait_for_function("n => window.cityopsWall.hasMarker(n)", arg=number)
    assert page.evaluate("window.__notReloaded") is True

    # The district centre registers it: 今日立案 follows.
    expect(_kpi(page, "registered")).to_have_text("0")
    answer = _api_post(
        wall_context.browser, asgi_server, district, f"/api/v1/incidents/{number}/register/", {}
    )
    assert answer["status"] == 200, answer
    expect(_kpi(page, "registered")).to_have_text("1")
    page.wait_for_function(
        "n => window.cityopsWall.cases.get(n).status === 'registered'", arg=number
    )
    assert page.evaluate("window.__notReloaded") is True
    assert errors == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_an_interrupted_feed_shows_the_banner(wall_context: Any) -> None:
    with private_redis() as redis, daphne_server(redis_url=redis.url) as server:
        page, _ = _open_wall(wall_context, server.url)
        expect(page.locator("#wall-banner")).to_be_hidden()
        server.stop()
        banner = page.locator("#wall-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("实时连接中断")
        expect(page.locator("#wall-live")).to_have_attribute("data-state", "interrupted")
