"""批量办理 in a surge, in a real browser (Debian's Chromium, zh-CN, pytest-django's live server).

* 130 内涝积水 reports in one street, a page of 20: tick the page's all-box, 选择全部 130 件,
  keep them across a reload of the queue and a change of page, 立案 → two requests of at most
  BATCH_MAX numbers, one after the other, each with its own key; one report: all done; none left
  in 待立案; another filter unticks all.
* With the limits made small (the console's SELECT_ALL_MAX and the bar's chunk size,
  consoles.BATCH_MAX; the endpoint's own limit is unchanged): past the limit the offer asks to
  narrow the filters; a blank 不予立案 reason is refused on the form before any case changes;
  停止 after the first chunk leaves the rest ticked; an answer lost to the network is sent again
  with its chunk's key (the server replays what it did: reported done, not refused as done
  already), and only what was not answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import Role, User
from command.views import consoles
from incidents.api.batch import BATCH_MAX
from incidents.models import Incident, IncidentStatus
from incidents.services import calendar_load, categories_load
from tests.incidents.cases import OTHER_STREET_GRID, STREET, make_user, report

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-Passw0rd-not-secret"
FLOOD = "90002"  # 内涝积水
BATCH_PATH = "/api/v1/incidents/batch/"


@pytest.fixture
def reference(committed_demo_geography: None) -> None:
    """Categories, stage limits and the calendar, committed for the server."""
    categories_load()
    calendar_load()


class Desk:
    """A browser page at a street operator's desk (1366×768, zh-CN) and its script errors."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1366, "height": 768}
        )
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
def desk(browser: Any) -> Iterator[Desk]:
    opened = Desk(browser)
    yield opened
    opened.context.close()


def _until(page: Any, done: Callable[[], bool]) -> None:
    """Let the page's events (here: a route's handler) run until `done`; 20 s at most."""
    for _ in range(400):
        if done():
            return
        page.wait_for_timeout(50)
    raise AssertionError("not reached in 20 s")


def _sign_in(page: Any, base_url: str, next_url: str) -> None:
    user: User = make_user(Role.STREET_OPERATOR, STREET)
    user.set_password(PASSWORD)
    user.save()
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click(".login-form button[type=submit]")
    page.wait_for_url(f"{base_url}{next_url}")


def _open(page: Any, base_url: str, path: str, query: str) -> None:
    """Sign in as a new street operator of STREET and open `path` with `query`."""
    _sign_in(page, base_url, path)
    page.goto(f"{base_url}{path}?{query}")


def _floods(n: int) -> list[Incident]:
    return [report(code=FLOOD, description=f"台风积水，第 {k} 个来电") for k in range(n)]


def _reported_floods() -> int:
    return Incident.objects.filter(
        street_code=STREET, category__code=FLOOD, status=IncidentStatus.REPORTED
    ).count()


class BatchRequests:
    """The batch requests a page sends, each with its numbers and key, and the order in which
    they were sent and answered."""

    def __init__(self, page: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        self.steps: list[str] = []
        page.on("request", self._sent)
        page.on("requestfinished", lambda request: self._ended(request, "answered"))
        page.on("requestfailed", lambda request: self._ended(request, "failed"))

    def _sent(self, request: Any) -> None:
        if BATCH_PATH in request.url:
            body = json.loads(request.post_data)
            key = request.headers.get("idempotency-key")
            self.sent.append({"numbers": body["numbers"], "key": key, "body": body})
            self.steps.append(f"sent {len(self.sent)}")

    def _ended(self, request: Any, how: str) -> None:
        if BATCH_PATH in request.url:
            self.steps.append(how)


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_surge_is_registered_by_selecting_every_matching_case_and_sending_it_in_chunks(
    desk: Desk, live_server: Any
) -> None:
    floods = _floods(130)
    rubbish = [report() for _ in range(3)]  # reported too, another category
    theirs = report(code=FLOOD, grid=OTHER_STREET_GRID)  # another street's
    page = desk.page
    _open(page, live_server.url, f"/command/street/{STREET}/", f"status=reported&category={FLOOD}")
    requests = BatchRequests(page)
    bar = page.get_by_test_id("batch-bar")
    count = bar.locator("[data-batch-count]")
    offer = page.get_by_test_id("batch-all")
    expect(page.get_by_test_id("queue-count")).to_contain_text("共 130 件")
    expect(page.locator("tr[data-number]")).to_have_count(20)

    # The page's all-box: its twenty, and the offer of all 130.
    page.locator("input[data-pick-all]").check()
    expect(count).to_have_text("已选 20 件")
    expect(offer).to_contain_text("已选本页 20 件。")
    offer.get_by_role("button", name="选择全部 130 件符合筛选的案件").click()
    expect(count).to_have_text("已选 130 件（其中 110 件在其他页）")
    expect(offer).to_contain_text("已选全部 130 件符合筛选的案件（含其他页）。")

    # A reload of the queue (as the live feed makes) keeps the ticks of the other pages, and so
    # does another page of the same filters.
    page.evaluate("window.cityopsConsole.reloadQueue()")
    expect(count).to_have_text("已选 130 件（其中 110 件在其他页）")
    page.locator(".pager a[rel=next]").click()
    expect(page.get_by_test_id("queue-count")).to_contain_text("第 2 / 7 页")
    expect(page.locator("input[data-pick]:checked")).to_have_count(20)
    expect(count).to_have_text("已选 130 件（其中 110 件在其他页）")

    # 立案: two requests, the second sent after the first was answered, each with its own key.
    bar.locator('[data-batch-action="register"]').click()
    submit = bar.locator('form[data-batch-form="register"] [data-batch-submit]')
    expect(submit).to_have_text("立案（130 件）")
    submit.click()
    result = page.get_by_test_id("batch-result")
    expect(result).to_contain_text("立案：130 件已办理。")
    expect(result.locator(".batch-failures")).to_have_count(0)
    assert [len(request["numbers"]) for request in requests.sent] == [BATCH_MAX, 30]
    assert requests.steps == ["sent 1", "answered", "sent 2", "answered"]
    first, second = requests.sent
    assert first["key"] and second["key"] and first["key"] != second["key"]
    assert sorted(first["numbers"] + second["numbers"]) == sorted(c.number for c in floods)

    # None left in 待立案; the others as they were.
    assert _reported_floods() == 0
    for case in (*rubbish, theirs):
        assert Incident.objects.get(pk=case.pk).status == IncidentStatus.REPORTED
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.get_by_test_id("chip-reported").locator(".chip-count")).to_have_text("0")
    expect(count).to_have_text("已选 0 件")

    # Another filter unticks all: the three reported cases of any category, all ticked, then
    # none once the filter changes.
    page.select_option("#queue-filters select[name=category]", "")
    expect(page.locator("tr[data-number]")).to_have_count(3)
    page.locator("input[data-pick-all]").check()
    expect(count).to_have_text("已选 3 件")
    expect(offer).to_be_hidden()  # all of them are on this page
    page.select_option("#queue-filters select[name=status]", "registered")
    expect(page.locator("tr[data-number]")).to_have_count(20)
    expect(bar).to_be_hidden()
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_batch_in_chunks_stops_and_resumes_what_was_not_answered(
    desk: Desk, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    floods = _floods(25)
    monkeypatch.setattr(consoles, "SELECT_ALL_MAX", 20)
    monkeypatch.setattr(consoles, "BATCH_MAX", 10)  # the page's chunks; the endpoint takes 100
    page = desk.page
    _open(page, live_server.url, f"/command/street/{STREET}/", f"category={FLOOD}")
    bar = page.get_by_test_id("batch-bar")
    count = bar.locator("[data-batch-count]")
    offer = page.get_by_test_id("batch-all")

    # Past the limit: no offer of them all, the filters to narrow.
    page.locator("input[data-pick-all]").check()
    expect(offer).to_contain_text("符合筛选的共 25 件，超过一次可选的 20 件，请缩小筛选范围。")
    expect(offer.get_by_role("button")).to_be_hidden()

    monkeypatch.setattr(consoles, "SELECT_ALL_MAX", 1000)
    page.reload()
    requests = BatchRequests(page)
    page.locator("input[data-pick-all]").check()
    offer.get_by_role("button", name="选择全部 25 件符合筛选的案件").click()
    expect(count).to_have_text("已选 25 件（其中 5 件在其他页）")

    # A blank 不予立案 reason: the first chunk's 400 of the whole batch, on the form; nothing
    # changed, nothing more sent.
    bar.locator('[data-batch-action="reject"]').click()
    reject = bar.locator('form[data-batch-form="reject"]')
    reject.locator("[data-batch-submit]").click()
    expect(reject.locator('[data-error-for="reason"]')).to_be_visible()
    assert len(requests.sent) == 1 and _reported_floods() == 25
    reject.locator("[data-batch-cancel]").click()

    # 立案, held in the first chunk; 停止 meanwhile: the first chunk's ten are done, the rest is
    # not sent and stays ticked.
    held: list[Any] = []
    lost: list[Any] = []
    calls: list[Any] = []

    def registers(route: Any) -> None:
        calls.append(route)
        if len(calls) == 1:
            held.append(route)  # answered when the test lets it go
        elif len(calls) == 2:
            lost.append(route.fetch())  # the server does it; its answer never arrives
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"**{BATCH_PATH}register/", registers)
    bar.locator('[data-batch-action="register"]').click()
    form = bar.locator('form[data-batch-form="register"]')
    submit = form.locator("[data-batch-submit]")
    submit.click()
    expect(submit).to_have_text("正在办理 0 / 25 件…")
    stop = form.locator("[data-batch-stop]")
    stop.click()
    expect(submit).to_have_text("正在停止…")
    _until(page, lambda: len(held) == 1)
    held[0].continue_()
    result = page.get_by_test_id("batch-result")
    expect(result).to_contain_text("立案：10 件已办理。")
    expect(result).to_contain_text("已停止：15 件未发送，仍为选中状态。")
    expect(count).to_contain_text("已选 15 件")
    assert _reported_floods() == 15
    expect(submit).to_have_text("继续立案（剩余 15 件）")

    # Resumed: the second chunk is done on the server but its answer is lost; the report says
    # what is known, the form why.
    submit.click()
    expect(result).to_contain_text("15 件尚无结果，仍为选中状态。")
    expect(form.locator('[data-error-for="__all__"]')).to_contain_text("网络中断")
    assert len(lost) == 1 and lost[0].status == 200
    assert _reported_floods() == 5
    expect(submit).to_have_text("继续立案（剩余 15 件）")

    # Again: the lost chunk with its key (the server answers what it did: done), then the last.
    submit.click()
    expect(result).to_contain_text("立案：25 件已办理。")
    expect(result.locator(".batch-failures")).to_have_count(0)
    expect(result).not_to_contain_text("尚无结果")
    register_requests = [r for r in requests.sent if "reason" not in r["body"]]
    assert [len(r["numbers"]) for r in register_requests] == [10, 10, 10, 5]
    keys = [r["key"] for r in register_requests]
    assert keys[1] == keys[2] and len(set(keys)) == 3
    assert register_requests[1]["numbers"] == register_requests[2]["numbers"]
    assert _reported_floods() == 0
    assert {n for r in register_requests for n in r["numbers"]} == {c.number for c in floods}
    expect(count).to_have_text("已选 0 件")
    assert desk.errors == []
