"""Helpers of the browser tests of the responder panels (the street console's 在岗响应人员 and
the case page's 附近的响应人员): users who sign in, positions reported through the real service,
a page opened signed in and following the live feed."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from accounts.models import User
from dispatch.services import responder_position_report
from tests.incidents.cases import make_user, point_in
from tests.threads import in_thread

PASSWORD = "e2e-Passw0rd-not-secret"
# How long a live event may take to show on a loaded machine (the page's own checks keep the
# 5 s default).
LIVE = 20_000


def signing_user(username: str, role: str, place: str = "", name: str = "", **extra: Any) -> User:
    """A user of `role` at `place` who signs in with PASSWORD; `name` is what the panels show."""
    user = make_user(role, place, **extra)
    user.username = username
    user.first_name = name
    user.set_password(PASSWORD)
    user.save()
    return user


def report_in(user: User, grid: str) -> None:
    """`user` shares a position inside `grid` (committed; its event goes out after commit)."""
    lon, lat = point_in(grid)
    in_thread(lambda: responder_position_report(user=user, lon=lon, lat=lat, accuracy_m=10))


def live_page(browser: Any, base_url: str, user: User, path: str, width: int, height: int) -> Any:
    """`path` opened by `user` after signing in, once its live feed is connected. Page errors
    collect in `page.errors`; `window.__notReloaded` tells whether the page ever reloaded."""
    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": width, "height": height}
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    page.goto(f"{base_url}/accounts/login/?next={path}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click(".login-form button[type=submit]")
    page.wait_for_url(f"{base_url}{path}")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    return page
