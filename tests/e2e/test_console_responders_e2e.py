"""在岗响应人员 on a street's console, live, in a real browser (Debian's Chromium) against a real
Daphne (tests/asgi_server.py: WebSockets, Redis, the test database).

A street operator and the district's operator both have 龙华街道's console open. A grid worker
starts sharing a position in the street (dispatch.services.responder_position_report, committed
in this process): the row appears on both without a reload; a move to another cell of the
street updates it; a move to another street removes it (the street's socket gets
dispatch.responder_cleared, the district's a responder_moved elsewhere); back in the street and
then stopping removes it again. Another street's responder is never listed. A reload of the list
(what a resync does) keeps to the street; the "ago" text ticks, and a position past the max age
leaves.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role, User
from dispatch.models import ResponderPosition
from dispatch.services import responder_position_clear
from gridmap.models import Region
from tests.asgi_server import asgi_server  # noqa: F401  (fixture)
from tests.e2e.responders import LIVE, live_page, report_in, signing_user
from tests.incidents.cases import (
    DISTRICT,
    GRID,
    OTHER_GRID_SAME_COMMUNITY,
    OTHER_STREET_GRID,
    STREET,
)
from tests.threads import in_thread

pytestmark = pytest.mark.e2e

CONSOLE = f"/command/street/{STREET}/"
# A cell of 华联社区 (440309001002): the same street, another community.
OTHER_COMMUNITY_GRID = "440309001002001"


def _grid_name(code: str) -> str:
    return Region.objects.get(generation__status="active", code=code).name


def _console(browser: Any, base_url: str, user: User, width: int, height: int) -> Any:
    return live_page(browser, base_url, user, CONSOLE, width, height)


def _row(page: Any, user: User) -> Any:
    return page.locator(f'#duty-responders li[data-responder="{user.pk}"]')


@pytest.mark.django_db(transaction=True)
def test_the_street_console_follows_its_responders_live(
    browser: Any,
    asgi_server: str,  # noqa: F811
    committed_demo_geography: None,
) -> None:
    handler = signing_user(
        "e2e-duty-handler", Role.DEPARTMENT_HANDLER, name="钱处置", department="CGJ"
    )
    worker = signing_user("e2e-duty-worker", Role.GRID_WORKER, GRID, name="王网格")
    street = signing_user("e2e-duty-street", Role.STREET_OPERATOR, STREET)
    district = signing_user("e2e-duty-district", Role.DISTRICT_OPERATOR, DISTRICT)
    far = signing_user("e2e-duty-far", Role.GRID_WORKER, OTHER_STREET_GRID, name="陈远方")
    # Already out when the consoles open: listed from the page's snapshot (the other street's
    # never: the district's operator may see him, but not on this street's console).
    report_in(handler, OTHER_GRID_SAME_COMMUNITY)
    report_in(far, OTHER_STREET_GRID)

    pages: list[Any] = []
    try:
        pages.append(_console(browser, asgi_server, street, 1366, 768))
        pages.append(_console(browser, asgi_server, district, 1920, 1080))
        for page in pages:
            expect(_row(page, handler)).to_be_visible()
            expect(_row(page, handler).locator(".duty-role")).to_have_text("职能部门处置人员")
            expect(page.get_by_test_id("duty-count")).to_have_text("1")
            expect(page.get_by_test_id("duty-empty")).to_be_hidden()

        # The grid worker starts sharing inside the street: a row, on both, without a reload,
        # before the handler's (grid code order).
        report_in(worker, GRID)
        for page in pages:
            row = _row(page, worker)
            expect(row).to_be_visible(timeout=LIVE)
            expect(row.locator(".duty-name")).to_have_text("王网格")
            expect(row.locator(".duty-role")).to_have_text("网格员")
            expect(row.locator(".duty-grid")).to_have_text(_grid_name(GRID))
            expect(row.locator(".duty-ago")).to_have_text("刚刚")
            expect(page.locator("#duty-responders li")).to_have_count(2)
            assert page.evaluate("window.cityopsConsole.duty") == [worker.pk, handler.pk]
            expect(page.get_by_test_id("duty-count")).to_have_text("2")

        # A move to another community of the same street: the row follows (and the order).
        report_in(worker, OTHER_COMMUNITY_GRID)
        for page in pages:
            expect(_row(page, worker).locator(".duty-grid")).to_have_text(
                _grid_name(OTHER_COMMUNITY_GRID), timeout=LIVE
            )
            page.wait_for_function(
                "ids => JSON.stringify(window.cityopsConsole.duty) === JSON.stringify(ids)",
                arg=[handler.pk, worker.pk],
            )

        # Into another street: gone from this street's consoles.
        report_in(worker, OTHER_STREET_GRID)
        for page in pages:
            expect(_row(page, worker)).to_have_count(0, timeout=LIVE)
            expect(page.get_by_test_id("duty-count")).to_have_text("1")

        # Back, then sharing stops: listed again, then gone.
        report_in(worker, GRID)
        for page in pages:
            expect(_row(page, worker)).to_be_visible(timeout=LIVE)
        in_thread(lambda: responder_position_clear(user=worker))
        for page in pages:
            expect(_row(page, worker)).to_have_count(0, timeout=LIVE)
            expect(_row(page, handler)).to_be_visible()
            expect(_row(page, far)).to_have_count(0)

        # After a resync the list is read again from the API (the district's whole list there,
        # kept to this street here); a position that aged out in between is gone.
        district_page = pages[1]
        assert district_page.evaluate("window.cityopsConsole.dutyReload()") is True
        assert district_page.evaluate("window.cityopsConsole.duty") == [handler.pk]
        minutes = settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES
        ResponderPosition.objects.filter(user=handler).update(
            received_at=timezone.now() - timedelta(minutes=minutes + 1)
        )
        assert district_page.evaluate("window.cityopsConsole.dutyReload()") is True
        expect(district_page.locator("#duty-responders li")).to_have_count(0)
        expect(district_page.get_by_test_id("duty-empty")).to_be_visible()

        # The "ago" text ticks (every 30 s; run at once here, the clock set 7½ minutes after
        # the handler's report), and past the max age a position leaves without any event.
        page = pages[0]
        at = _row(page, handler).locator(".duty-ago").get_attribute("datetime")
        clock = (
            "([at, minutes]) => window.cityopsConsole.dutyClock(Date.parse(at) + minutes * 60000)"
        )
        page.evaluate(clock, [at, 7.5])
        expect(_row(page, handler).locator(".duty-ago")).to_have_text("7 分钟前")
        page.evaluate(clock, [at, minutes + 0.5])
        expect(page.locator("#duty-responders li")).to_have_count(0)
        expect(page.get_by_test_id("duty-empty")).to_be_visible()
        expect(page.get_by_test_id("duty-empty")).to_have_text("当前没有共享位置的响应人员")
        expect(page.get_by_test_id("duty-count")).to_have_text("0")

        for page in pages:
            assert page.evaluate("window.__notReloaded") is True
            assert page.errors == []
    finally:
        for page in pages:
            page.context.close()
