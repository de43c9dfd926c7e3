"""The consoles in a real browser (Debian's Chromium, zh-CN).

Against pytest-django's live server (a WSGI thread, committed data):
* a street operator refuses an empty rejection (the reason is named beside its field), registers
  and dispatches a case from the case page; the department handler's console lists it and
  accepts it from the queue;
* a department handler works a case from its page: a send-back without its explanation is
  refused, then accept, an extension request, handle, feed back with a photo;
* a possible duplicate is merged with the button beside it;
* the street queue narrows to received days (and its export link with it), names a reversed
  range, and resets;
* the hotline operator files a call by clicking the map; the new case's number, owner and a
  possible duplicate are shown, and the form is empty for the next call (a second click files
  nothing); on an English page the category search finds English words, Chinese and codes.

Against a real Daphne (tests/asgi_server.py, WebSockets, Redis):
* a case reported through the API appears in the street console's queue without a reload; a case
  of another street never does; while the pointer is over the queue a change waits, with a note,
  until the pointer leaves;
* a department called out writes its 协办反馈 in the dialog its queue row opens (kept while the
  queue is fetched again under it), and the street's case page shows it without a reload;
* the case page follows its case when someone else acts on it, or merges a case into it and
  takes it out again;
* when the server goes away the "实时连接中断" banner is shown;
* when the session ends after its idle limit the console says so (登录已失效), stops, and its
  link signs in again and comes back.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from accounts.models import Role, User
from incidents.models import (
    Channel,
    Incident,
    IncidentStatus,
    IncidentTransition,
    OwnerLevel,
    PhotoKind,
)
from incidents.services import (
    calendar_load,
    categories_load,
    incident_dispatch,
    incident_merge,
    incident_register,
    incident_unmerge,
)
from tests.asgi_server import asgi_server, daphne_server, private_redis  # noqa: F401 (fixture)
from tests.incidents.cases import (
    DISTRICT,
    GRID,
    OTHER_STREET,
    OTHER_STREET_GRID,
    RUBBISH,
    STREET,
    make_user,
    point_in,
    report,
)
from tests.threads import in_thread

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-Passw0rd-not-secret"


@pytest.fixture
def daphne_url(request: pytest.FixtureRequest) -> str:
    """Base URL of the session's Daphne (tests/asgi_server.py)."""
    return str(request.getfixturevalue("asgi_server"))


@pytest.fixture
def reference(committed_demo_geography: None) -> None:
    """Categories, stage limits and the calendar, committed for the server."""
    categories_load()
    calendar_load()


def _jpeg(path: Path) -> Path:
    """A real JPEG, as a phone camera writes one."""
    image = Image.new("RGB", (800, 600), "#6a8d73")
    ImageDraw.Draw(image).rectangle((200, 150, 600, 450), fill="#d9d2c3")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


def _user(username: str, role: str, place: str = "", department: str = "") -> User:
    user = make_user(role, place, department)
    user.username = username
    user.set_password(PASSWORD)
    user.save()
    return user


class Desk:
    """A browser context at a desk (1440×900, zh-CN unless told), signed in as one user."""

    def __init__(
        self,
        browser: Any,
        base_url: str,
        timezone_id: str = "Asia/Shanghai",
        locale: str = "zh-CN",
    ) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            locale=locale, timezone_id=timezone_id, viewport={"width": 1440, "height": 900}
        )
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def sign_in(self, user: User, next_url: str) -> None:
        page = self.page
        page.goto(f"{self.base_url}/accounts/login/?next={next_url}")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click(".login-form button[type=submit]")
        page.wait_for_url(f"{self.base_url}{next_url}")

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST to the API with this context's session, as the page's scripts do."""
        token = next(c["value"] for c in self.context.cookies() if c["name"] == "csrftoken")
        return self.context.request.post(
            f"{self.base_url}{path}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "X-CSRFToken": token},
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def desks(browser: Any) -> Iterator[list[Desk]]:
    opened: list[Desk] = []
    yield opened
    for desk in opened:
        desk.close()


def _desk(
    desks: list[Desk],
    browser: Any,
    base_url: str,
    user: User,
    next_url: str,
    locale: str = "zh-CN",
) -> Desk:
    desk = Desk(browser, base_url, locale=locale)
    desks.append(desk)
    desk.sign_in(user, next_url)
    return desk


def _open_action(page: Any, action: str) -> Any:
    """The action's form, its <details> opened as a user would."""
    details = page.locator(f'details[data-action="{action}"]')
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    return details.locator("form")


# --- the case page and the department console (live server) ---------------------------------------


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_street_operator_registers_and_dispatches_and_the_department_accepts(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    street = _user("e2e-street", Role.STREET_OPERATOR, STREET)
    handler = _user("e2e-cgj", Role.DEPARTMENT_HANDLER, department="CGJ")
    case = report(description="路口堆放建筑垃圾")
    desk = _desk(desks, browser, live_server.url, street, f"/command/cases/{case.number}/")
    page = desk.page
    expect(page.get_by_test_id("case-status")).to_have_text("已上报（待立案）")

    # An empty rejection: the API's 400 names `reason`, shown beside that field; nothing stored.
    reject = _open_action(page, "reject")
    reject.locator("button[type=submit]").click()
    error = reject.locator('[data-error-for="reason"]')
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    assert Incident.objects.get(pk=case.pk).status == IncidentStatus.REPORTED

    register = _open_action(page, "register")
    register.locator("textarea[name=note]").fill("属实，立案")
    register.locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("已立案（待派遣）")

    # Dispatch to a person who does not exist: refused beside the assignee field.
    dispatch = _open_action(page, "dispatch")
    expect(dispatch.locator("select[name=department]")).to_have_value("CGJ")
    dispatch.locator("input[name=assignee]").fill("nobody-here")
    dispatch.locator("button[type=submit]").click()
    expect(dispatch.locator('[data-error-for="assignee"]')).to_contain_text("nobody-here")
    dispatch.locator("input[name=assignee]").fill("")
    dispatch.locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("已派遣（待签收）")
    expect(page.get_by_test_id("timeline")).to_contain_text("派遣")
    assert desk.errors == []

    fresh = Incident.objects.get(pk=case.pk)
    assert fresh.status == IncidentStatus.DISPATCHED
    assert fresh.assigned_department_code == "CGJ"
    steps = list(IncidentTransition.objects.filter(incident=fresh).values_list("action", flat=True))
    assert steps == ["report", "register", "dispatch"]

    # The department's console lists it; 签收 from the queue.
    cgj = _desk(desks, browser, live_server.url, handler, "/command/department/")
    row = cgj.page.locator(f'tr[data-number="{case.number}"]')
    expect(row).to_be_visible()
    expect(row.locator(".status")).to_have_text("已派遣（待签收）")
    row.locator("button[data-quick-action=accept]").click()
    expect(row.locator(".status")).to_have_text("已签收")
    assert Incident.objects.get(pk=case.pk).status == IncidentStatus.ACCEPTED
    assert cgj.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_department_handler_works_a_case_from_its_page(
    browser: Any, live_server: Any, desks: list[Desk], tmp_path: Path
) -> None:
    handler = _user("e2e-cgj-2", Role.DEPARTMENT_HANDLER, department="CGJ")
    street = make_user(Role.STREET_OPERATOR, STREET)
    case = report(description="绿化带里的垃圾")
    incident_register(incident=case, by=street)
    incident_dispatch(incident=case, by=street, department_code="CGJ")
    desk = _desk(desks, browser, live_server.url, handler, f"/command/cases/{case.number}/")
    page = desk.page

    # The map's controls speak the page's language (Leaflet's own titles are English).
    expect(page.locator("#case-map .leaflet-control-zoom-in")).to_have_attribute("title", "放大")

    # 退单 "other" needs its explanation: named beside the field, nothing stored.
    send_back = _open_action(page, "send_back")
    send_back.locator("select[name=reason_code]").select_option("other")
    send_back.locator("button[type=submit]").click()
    expect(send_back.locator('[data-error-for="reason"]')).to_have_text("不能为空。")
    assert Incident.objects.get(pk=case.pk).status == IncidentStatus.DISPATCHED

    _open_action(page, "accept").locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("已签收")

    # More time: a moment after the current deadline.
    deadline = timezone.localtime(Incident.objects.get(pk=case.pk).stage_deadline)
    wanted = (deadline + timedelta(days=2)).replace(second=0, microsecond=0)
    extension = _open_action(page, "request_extension")
    # Both empty required fields are named at once, beside themselves, and nothing is sent.
    extension.locator("button[type=submit]").click()
    expect(extension.locator('[data-error-for="until"]')).to_have_text("不能为空。")
    expect(extension.locator('[data-error-for="reason"]')).to_have_text("不能为空。")
    assert Incident.objects.get(pk=case.pk).extension_requested_until is None
    extension.locator("input[name=until]").fill(wanted.strftime("%Y-%m-%dT%H:%M"))
    extension.locator("textarea[name=reason]").fill("需要等待配件")
    extension.locator("button[type=submit]").click()
    expect(page.get_by_test_id("extension-pending")).to_be_visible()
    assert Incident.objects.get(pk=case.pk).extension_requested_until == wanted

    _open_action(page, "handle").locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("处置中")

    feed_back = _open_action(page, "feed_back")
    feed_back.locator("textarea[name=feedback]").fill("已清理干净")
    feed_back.locator("input[name=photos]").set_input_files(str(_jpeg(tmp_path / "after.jpg")))
    feed_back.locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("已反馈（待核查）")
    expect(page.locator("#case-photos .photo-after img")).to_have_count(1)
    fresh = Incident.objects.get(pk=case.pk)
    assert fresh.feedback == "已清理干净"
    assert list(fresh.photos.values_list("kind", flat=True)) == [PhotoKind.AFTER]
    expect(page.get_by_test_id("no-actions")).to_be_visible()  # the centre verifies now
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_case_sent_back_leaves_the_handlers_page_with_the_way_back(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    """退单 takes the case out of the department's view: the page says so where the actions
    were and links back to the console, instead of refreshing in vain."""
    handler = _user("e2e-cgj-3", Role.DEPARTMENT_HANDLER, department="CGJ")
    street = make_user(Role.STREET_OPERATOR, STREET)
    case = report(description="不归城管的事")
    incident_register(incident=case, by=street)
    incident_dispatch(incident=case, by=street, department_code="CGJ")
    desk = _desk(desks, browser, live_server.url, handler, f"/command/cases/{case.number}/")
    page = desk.page

    send_back = _open_action(page, "send_back")
    send_back.locator("select[name=reason_code]").select_option("not_our_jurisdiction")
    send_back.locator("button[type=submit]").click()

    gone = page.get_by_test_id("case-gone")
    expect(gone).to_contain_text("已退单")
    expect(gone.get_by_role("link", name="返回工作台")).to_have_attribute(
        "href", "/command/department/"
    )
    expect(page.locator("form.action-form")).to_have_count(0)
    assert Incident.objects.get(pk=case.pk).status == IncidentStatus.RETURNED
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_possible_duplicate_is_merged_from_the_case_page(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    street = _user("e2e-merge-street", Role.STREET_OPERATOR, STREET)
    first = report(description="路口垃圾")
    second = report(description="同一处垃圾，又有人打电话")
    # A browser in another time zone (a laptop set to UTC) still reads the server's times.
    desk = Desk(browser, live_server.url, timezone_id="UTC")
    desks.append(desk)
    desk.sign_in(street, f"/command/cases/{second.number}/")
    page = desk.page
    duplicates = page.get_by_test_id("duplicates")
    expect(duplicates).to_contain_text(first.number)
    received = timezone.localtime(first.created_at).strftime("%m-%d %H:%M")
    expect(duplicates.locator(".duplicate-facts")).to_contain_text(received)
    duplicates.locator(f'button[data-merge-into="{first.number}"]').click()
    merge = page.locator('form[data-action="merge"]')
    expect(merge).to_be_visible()
    expect(merge.locator("input[name=into]")).to_have_value(first.number)
    merge.locator("textarea[name=reason]").fill("同一堆垃圾")
    merge.locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("已合并")
    expect(page.locator("#case-main")).to_contain_text(f"已合并至 {first.number}")
    merged = Incident.objects.get(pk=second.pk)
    assert merged.status == IncidentStatus.MERGED and merged.merged_into_id == first.pk
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_a_street_operator_merges_registers_and_dispatches_ticked_cases(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    street = _user("e2e-batch-street", Role.STREET_OPERATOR, STREET)
    flooded = [report(description=f"下穿隧道积水，第 {n} 个来电") for n in range(4)]
    other = report(description="另一处垃圾")
    desk = _desk(desks, browser, live_server.url, street, f"/command/street/{STREET}/")
    page = desk.page
    bar = page.get_by_test_id("batch-bar")
    expect(bar).to_be_hidden()

    # Tick the four calls: the first, then shift-click the last (a range).
    page.locator(f'input[data-pick][value="{flooded[0].number}"]').check()
    page.locator(f'input[data-pick][value="{flooded[3].number}"]').click(modifiers=["Shift"])
    expect(bar.locator("[data-batch-count]")).to_have_text("已选 4 件")
    assert not page.locator(f'input[data-pick][value="{other.number}"]').is_checked()

    # 合并重复件: the primary is chosen among them, the earliest first; three go into it.
    bar.locator('[data-batch-action="merge"]').click()
    merge = bar.locator('form[data-batch-form="merge"]')
    expect(merge.locator("select[name=into] option")).to_have_count(4)
    expect(merge.locator("select[name=into]")).to_have_value(flooded[0].number)
    expect(merge.locator("[data-batch-submit]")).to_have_text("合并重复件（3 件）")
    merge.locator("textarea[name=reason]").fill("同一下穿隧道")
    merge.locator("[data-batch-submit]").click()
    result = page.get_by_test_id("batch-result")
    expect(result).to_contain_text(f"合并重复件：3 件已并入 {flooded[0].number}。")
    primary = Incident.objects.get(pk=flooded[0].pk)
    assert primary.duplicates.count() == 3
    assert primary.status == IncidentStatus.REPORTED
    expect(bar.locator("[data-batch-count]")).to_have_text("已选 0 件")
    # The merged ones leave the open queue; the primary stays, unticked.
    expect(page.locator(f'tr[data-number="{flooded[1].number}"]')).to_have_count(0)
    expect(page.locator(f'input[data-pick][value="{primary.number}"]')).not_to_be_checked()

    # Only the two open ones left to register: tick them, 立案.
    page.locator(f'input[data-pick][value="{primary.number}"]').check()
    page.locator(f'input[data-pick][value="{other.number}"]').check()
    bar.locator('[data-batch-action="register"]').click()
    bar.locator('form[data-batch-form="register"] [data-batch-submit]').click()
    expect(result).to_contain_text("立案：2 件已办理。")
    for case in (primary, other):
        assert Incident.objects.get(pk=case.pk).status == IncidentStatus.REGISTERED

    # 派遣 without a department: the API's 400 beside the field, nothing changed; then 城管.
    page.locator(f'input[data-pick][value="{primary.number}"]').check()
    page.locator(f'input[data-pick][value="{other.number}"]').check()
    bar.locator('[data-batch-action="dispatch"]').click()
    dispatch = bar.locator('form[data-batch-form="dispatch"]')
    dispatch.locator("[data-batch-submit]").click()
    expect(dispatch.locator('[data-error-for="department"]')).to_be_visible()
    assert Incident.objects.get(pk=other.pk).status == IncidentStatus.REGISTERED
    dispatch.locator("select[name=department]").select_option("CGJ")
    dispatch.locator("[data-batch-submit]").click()
    expect(result).to_contain_text("派遣：2 件已办理。")
    for case in (primary, other):
        fresh = Incident.objects.get(pk=case.pk)
        assert (fresh.status, fresh.assigned_department_code) == (IncidentStatus.DISPATCHED, "CGJ")
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_the_street_queue_narrows_to_received_days_and_exports_them(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    street = _user("e2e-street-days", Role.STREET_OPERATOR, STREET)
    today = report(description="今天受理的案件")
    earlier = report(description="上周受理的案件")
    last_week = timezone.now() - timedelta(days=7)
    # Left a week: late and escalated (督办) to the district, the widest row a queue has.
    Incident.objects.filter(pk=earlier.pk).update(
        created_at=last_week,
        stage_deadline=last_week + timedelta(hours=2),
        stage_breached=True,
        owner_level=OwnerLevel.DISTRICT,
        owner_code=DISTRICT,
    )
    desk = _desk(desks, browser, live_server.url, street, f"/command/street/{STREET}/")
    page = desk.page
    queue = page.locator("#queue")
    expect(queue.locator("tr[data-number]")).to_have_count(2)

    day = timezone.localdate().isoformat()
    page.fill("input[name=since]", day)  # a date field: its change fetches the queue again
    expect(queue.locator("tr[data-number]")).to_have_count(1)
    expect(queue.locator(f'tr[data-number="{today.number}"]')).to_be_visible()
    assert f"since={day}" in page.url
    href = page.get_by_test_id("queue-export").get_attribute("href")
    assert href is not None and f"since={day}" in href and "export=csv" in href
    # The chips count within the days, and following one keeps them (the field too).
    expect(page.get_by_test_id("chip-reported")).to_contain_text("1")
    page.get_by_test_id("chip-registered").click()
    expect(queue.locator("tr[data-number]")).to_have_count(0)
    assert f"since={day}" in page.url and "status=registered" in page.url
    assert page.locator("input[name=since]").input_value() == day
    assert page.locator("select[name=status]").input_value() == "registered"
    page.get_by_test_id("chip-reported").click()
    expect(queue.locator("tr[data-number]")).to_have_count(1)

    # The last day before the first: named above the queue, the bad end not used.
    page.fill("input[name=until]", (timezone.localdate() - timedelta(days=1)).isoformat())
    expect(page.get_by_test_id("queue-filter-errors")).to_contain_text("结束日期早于开始日期")
    expect(queue.locator("tr[data-number]")).to_have_count(1)

    page.locator("#queue-filters a.button-quiet").click()  # 重置
    expect(queue.locator("tr[data-number]")).to_have_count(2)
    assert page.locator("input[name=since]").input_value() == ""

    # In English (a status, a deadline, a flag two or three times as wide as in Chinese) the
    # queue still fits its box beside 在岗响应人员, at 1440 px and at 1280 px, and shows every
    # case's number whole.
    page.locator("form.lang-switch button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(queue.locator(".flag-escalated")).to_contain_text("District command centre")
    for width in (1440, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        fit = page.evaluate(
            """() => {
                const table = document.querySelector('#queue table.queue');
                const numbers = [...table.querySelectorAll('.case-link')];
                return {
                    table: table.scrollWidth,
                    box: table.parentElement.clientWidth,
                    // on one line each (an inline box broken in two has two rectangles)
                    numbersWhole: numbers.every((a) => a.getClientRects().length === 1),
                };
            }"""
        )
        assert fit["table"] <= fit["box"], (width, fit)
        assert fit["numbersWhole"], (width, fit)
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_an_opened_audit_entry_leaves_its_number_in_sight(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    auditor = _user("e2e-auditor", Role.AUDITOR, DISTRICT)
    street = _user("e2e-audit-street", Role.STREET_OPERATOR, STREET)
    incident_register(incident=report(), by=street)  # an entry with a before and an after
    for locale in ("zh-CN", "en-GB"):
        desk = _desk(desks, browser, live_server.url, auditor, "/command/audit/", locale=locale)
        page = desk.page
        for width in (1440, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.reload()
            entry = page.locator("details.audit-change:has(table.audit-diff)").first
            entry.locator("summary").click()  # the click first brings the summary into view
            expect(entry.locator("table.audit-diff")).to_be_visible()
            seen = entry.evaluate(
                """(entry) => {
                    const box = entry.closest('.table-scroll');
                    const number = entry.closest('tr').querySelector('.col-sequence');
                    return {
                        table: box.scrollWidth,
                        box: box.clientWidth,
                        scrolled: box.scrollLeft,
                        numberLeft: number.getBoundingClientRect().left,
                        boxLeft: box.getBoundingClientRect().left,
                    };
                }"""
            )
            # The table fits its box, and the entry's "#" is where it was, not scrolled out.
            assert seen["table"] <= seen["box"], (locale, width, seen)
            assert seen["scrolled"] == 0 and seen["numberLeft"] >= seen["boxLeft"], seen
        # Narrower, the table scrolls sideways and the "#" column stays in sight.
        page.set_viewport_size({"width": 1024, "height": 800})
        page.locator(".audit .table-scroll").evaluate("(box) => { box.scrollLeft = 300; }")
        number = page.locator(".audit-table tbody .col-sequence").first
        box = page.locator(".audit .table-scroll").bounding_box()
        assert number.bounding_box()["x"] >= box["x"], (locale, number.bounding_box(), box)
        assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_the_hotline_files_a_call_by_clicking_the_map(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    operator = _user("e2e-hotline", Role.DISTRICT_OPERATOR, DISTRICT)
    earlier = report(description="昨天就有人反映的垃圾")  # same category, same grid: a duplicate
    desk = _desk(desks, browser, live_server.url, operator, "/command/intake/")
    page = desk.page
    page.wait_for_function("window.cityopsIntake && window.cityopsIntake.ready")

    # Submitted without a category or a point: each said beside its field, once, in words.
    page.click("#intake-form button[type=submit]")
    expect(page.locator('[data-error-for="category"]')).to_have_text("请选择事项分类。")
    expect(page.locator('[data-error-for="lon"]')).to_have_text("请在地图上点击问题位置。")
    expect(page.locator('[data-error-for="lat"]')).to_be_hidden()
    assert not Incident.objects.exclude(pk=earlier.pk).exists()

    page.fill("#category-search", "暴露垃圾")
    page.select_option("#category-select", RUBBISH)
    expect(page.locator("#category-chosen")).to_contain_text("06010 暴露垃圾")
    page.fill("textarea[name=description]", "市民来电：小区门口垃圾堆积")
    page.fill("input[name=reporter_name]", "陈先生")
    page.fill("input[name=reporter_phone]", "13800138000")
    page.fill("input[name=address]", "三联路 12 号")

    lon, lat = point_in(GRID)
    page.evaluate(
        "([lon, lat]) => window.cityopsIntake.map.setView([lat, lon], 16, {animate: false})",
        [lon, lat],
    )
    point = page.evaluate(
        """([lon, lat]) => {
            const p = window.cityopsIntake.map.latLngToContainerPoint([lat, lon]);
            const box = document.getElementById('intake-map').getBoundingClientRect();
            return {x: box.left + p.x, y: box.top + p.y};
        }""",
        [lon, lat],
    )
    page.mouse.click(point["x"], point["y"])
    expect(page.get_by_test_id("point-readout")).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("point-readout")).to_contain_text("三联社区")

    page.click("#intake-form button[type=submit]")
    expect(page.get_by_test_id("intake-result")).to_be_visible()
    created = Incident.objects.exclude(pk=earlier.pk).get()
    expect(page.get_by_test_id("created-number")).to_have_text(created.number)
    expect(page.get_by_test_id("created-owner")).to_contain_text("社区工作站")
    expect(page.locator(".result-duplicates")).to_contain_text(earlier.number)
    assert created.channel == Channel.HOTLINE_12345
    assert created.grid_code == GRID
    assert (created.reporter_name, created.reporter_phone) == ("陈先生", "13800138000")
    assert created.address == "三联路 12 号"
    assert created.description == "市民来电：小区门口垃圾堆积"
    # The form is empty for the next call: clicking 提交受理 again files nothing twice.
    expect(page.locator("textarea[name=description]")).to_have_value("")
    expect(page.get_by_test_id("point-readout")).not_to_have_attribute("data-state", "ok")
    page.click("#intake-form button[type=submit]")
    expect(page.locator('[data-error-for="category"]')).to_have_text("请选择事项分类。")
    expect(page.get_by_test_id("created-number")).to_have_text(created.number)
    assert Incident.objects.exclude(pk=earlier.pk).count() == 1
    assert desk.errors == []


@pytest.mark.usefixtures("reference", "plain_static_storage")
def test_the_intake_category_search_reads_english_and_chinese_on_an_english_page(
    browser: Any, live_server: Any, desks: list[Desk]
) -> None:
    operator = _user("e2e-hotline-en", Role.DISTRICT_OPERATOR, DISTRICT)
    desk = _desk(desks, browser, live_server.url, operator, "/command/intake/", locale="en-GB")
    page = desk.page
    page.wait_for_function("window.cityopsIntake && window.cityopsIntake.ready")
    shown = page.locator("#category-select option:not([hidden])")

    for words in ("exposed garbage", "暴露垃圾", "06010"):
        page.fill("#category-search", words)
        page.press("#category-search", "Enter")
        expect(shown).to_have_count(1)
        expect(shown).to_have_text("06010 Exposed garbage")
    expect(page.locator("#category-chosen")).to_have_text("06010 Exposed garbage")
    page.fill("#category-search", "manhole cover")
    expect(shown.first).to_have_text("01001 Water supply manhole cover problem")
    expect(page.locator("#category-select optgroup:not([hidden])")).to_have_attribute(
        "label", "01 Municipal utilities"
    )
    assert desk.errors == []


# --- live updates (a real Daphne with WebSockets) ------------------------------------------------


def _wait_live(page: Any) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("live-banner")).to_be_hidden()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_reported_case_appears_in_the_street_queue_without_reload(
    browser: Any, daphne_url: str, desks: list[Desk]
) -> None:
    street = _user("e2e-live-street", Role.STREET_OPERATOR, STREET)
    community = _user("e2e-live-community", Role.COMMUNITY_STAFF, "440309001001")
    neighbour = _user("e2e-live-neighbour", Role.STREET_OPERATOR, OTHER_STREET)
    console = _desk(desks, browser, daphne_url, street, f"/command/street/{STREET}/")
    page = console.page
    _wait_live(page)
    page.evaluate("window.__notReloaded = true")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()

    # Another street's case, reported through the API by that street's operator.
    other = _desk(desks, browser, daphne_url, neighbour, "/")
    lon, lat = point_in(OTHER_STREET_GRID)
    answer = other.post_json(
        "/api/v1/incidents/",
        {"category": RUBBISH, "lon": lon, "lat": lat, "description": "大浪街道的垃圾"},
    )
    assert answer.status == 201, answer.text()
    theirs = answer.json()["number"]

    # Then one of ours, through the API by the community station.
    reporter = _desk(desks, browser, daphne_url, community, "/")
    lon, lat = point_in(GRID)
    answer = reporter.post_json(
        "/api/v1/incidents/",
        {"category": RUBBISH, "lon": lon, "lat": lat, "description": "三联社区的垃圾"},
    )
    assert answer.status == 201, answer.text()
    ours = answer.json()["number"]

    row = page.locator(f'tr[data-number="{ours}"]')
    expect(row).to_be_visible()
    expect(row).to_have_class("queue-row is-new")
    assert page.evaluate("window.__notReloaded") is True
    assert theirs not in page.content()
    expect(page.get_by_test_id("chip-reported")).to_contain_text("1")

    # With the pointer over the queue, a change waits (the row under it does not move) and a
    # note says so; moving off the list shows it.
    row.hover()
    answer = reporter.post_json(
        "/api/v1/incidents/",
        {"category": RUBBISH, "lon": lon, "lat": lat, "description": "又一处垃圾"},
    )
    assert answer.status == 201, answer.text()
    later = answer.json()["number"]
    held = page.get_by_test_id("queue-held")
    expect(held).to_be_visible()
    expect(held).to_contain_text("队列有更新")
    expect(page.locator(f'tr[data-number="{later}"]')).to_have_count(0)
    page.mouse.move(5, 5)
    expect(page.locator(f'tr[data-number="{later}"]')).to_be_visible()
    expect(held).to_be_hidden()
    assert page.evaluate("window.__notReloaded") is True
    assert console.errors == []


def _flood_called_out(command: Desk, description: str, support: str, note: str) -> str:
    """A flood reported from `command`'s desk through the API, registered, dispatched to 水务 by
    hand, and `support` called out beside it (增派协办, with `note`); its number."""
    lon, lat = point_in(GRID)
    answer = command.post_json(
        "/api/v1/incidents/",
        {"category": "90002", "lon": lon, "lat": lat, "description": description},
    )
    assert answer.status == 201, answer.text()
    number = str(answer.json()["number"])
    for action, body in (
        ("register", {}),
        ("dispatch", {"department": "SWJ"}),
        ("call-out", {"supports": [support], "note": note}),
    ):
        answer = command.post_json(f"/api/v1/incidents/{number}/{action}/", body)
        assert answer.status == 200, (action, answer.text())
    return number


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_department_called_out_sees_the_case_arrive_live_and_confirms_its_arrival(
    browser: Any, daphne_url: str, desks: list[Desk]
) -> None:
    street = _user("e2e-callout-street", Role.STREET_OPERATOR, STREET)
    police = _user("e2e-callout-police", Role.DEPARTMENT_HANDLER, department="JJ")
    desk = _desk(desks, browser, daphne_url, police, "/command/department/")
    page = desk.page
    _wait_live(page)
    page.evaluate("window.__notReloaded = true")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()

    # A flood dispatched to 水务 by hand; then 交警 is called out beside it (增派协办).
    command = _desk(desks, browser, daphne_url, street, "/")
    number = _flood_called_out(command, "路口积水", "JJ", "请交警疏导")

    # The police's queue shows it without a reload, as 协办, with its 确认到场.
    row = page.locator(f'tr[data-number="{number}"]')
    expect(row).to_be_visible()
    expect(row.locator(".flag-support")).to_be_visible()
    expect(page.get_by_test_id("chip-support")).to_contain_text("1")
    expect(page.get_by_test_id("chip-dispatched")).to_contain_text("0")
    row.locator('button[data-quick-action="confirm-arrival"]').click()
    expect(row.locator(".flag-arrived")).to_be_visible()
    expect(row.locator('button[data-quick-action="confirm-arrival"]')).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True
    assert Incident.objects.get(number=number).support_arrived_codes == ["JJ"]
    assert desk.errors == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_department_called_out_reports_from_its_queue_and_the_case_page_hears_it(
    browser: Any, daphne_url: str, desks: list[Desk]
) -> None:
    street = _user("e2e-report-street", Role.STREET_OPERATOR, STREET)
    fire = _user("e2e-report-fire", Role.DEPARTMENT_HANDLER, department="XF")
    command = _desk(desks, browser, daphne_url, street, "/")
    number = _flood_called_out(command, "下穿通道积水", "XF", "请消防排水")
    # The street's case page, open while the fire brigade works.
    case_page = command.page
    case_page.goto(f"{daphne_url}/command/cases/{number}/")
    _wait_live(case_page)
    case_page.evaluate("window.__notReloaded = true")

    desk = _desk(desks, browser, daphne_url, fire, "/command/department/")
    page = desk.page
    _wait_live(page)
    page.evaluate("window.__notReloaded = true")
    row = page.locator(f'tr[data-number="{number}"]')
    row.locator('button[data-row-form="support_report"]').click()
    dialog = page.get_by_test_id("row-form-support-report")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(number)
    # Nothing written: said beside the field, nothing sent.
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator('[data-error-for="note"]')).to_have_text("不能为空。")
    # What is being written stays while the queue is fetched again under it (增派 供电).
    note = dialog.locator("textarea[name=note]")
    note.fill("已疏散群众 12 人，水泵 2 台到位")
    row.evaluate("node => { node.dataset.before = '1'; }")  # gone when the row is drawn anew
    answer = command.post_json(f"/api/v1/incidents/{number}/call-out/", {"supports": ["GDJ"]})
    assert answer.status == 200, answer.text()
    expect(page.locator(f'tr[data-number="{number}"][data-before]')).to_have_count(0)
    expect(note).to_have_value("已疏散群众 12 人，水泵 2 台到位")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#queue-notice")).to_contain_text("已完成：协办反馈")
    step = IncidentTransition.objects.filter(incident__number=number).latest("id")
    assert (step.action, step.reason, step.data["department"]) == (
        "support_report",
        "已疏散群众 12 人，水泵 2 台到位",
        "XF",
    )
    # The street hears of it on the case page, without a reload: the report in the timeline.
    report_row = case_page.get_by_test_id("timeline").locator("li.step-support_report")
    expect(report_row).to_contain_text("已疏散群众 12 人，水泵 2 台到位")
    expect(report_row).to_contain_text("部门：消防")
    # …and under 消防 in the 协办 list beside it (the street's actions are the same as before:
    # the list is drawn anew all the same), then its arrival, each without a reload.
    fire_row = case_page.get_by_test_id("called-out").locator('li[data-department="XF"]')
    expect(fire_row.get_by_test_id("called-out-report")).to_contain_text("已疏散群众 12 人")
    expect(fire_row.locator(".flag-owed")).to_be_visible()
    row.locator('button[data-quick-action="confirm-arrival"]').click()
    expect(fire_row.locator(".flag-arrived")).to_be_visible()
    expect(case_page.get_by_test_id("called-out")).to_contain_text("1/2 已到场")
    assert case_page.evaluate("window.__notReloaded") is True
    assert page.evaluate("window.__notReloaded") is True
    assert desk.errors == [] and command.errors == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_chips_pick_stays_while_the_other_filters_change(
    browser: Any, daphne_url: str, desks: list[Desk]
) -> None:
    from dispatch.services import plan_activate

    street = _user("e2e-chips-street", Role.STREET_OPERATOR, STREET)
    district = _user("e2e-chips-district", Role.DISTRICT_OPERATOR, DISTRICT)
    flood = report(code="90002", severity="IV", description="下穿通道积水")
    in_thread(lambda: plan_activate(incident=flood, plan_code="FLOOD-IV", by=district))
    report(description="路边堆放垃圾")
    page = _desk(desks, browser, daphne_url, street, f"/command/street/{STREET}/").page
    form = page.locator("#queue-filters")

    # The 应急响应 chip: its cases, and the form's field says so.
    page.get_by_test_id("chip-response").click()
    expect(page.locator(f'tr[data-number="{flood.number}"]')).to_be_visible()
    expect(page.locator("tr[data-number]")).to_have_count(1)
    expect(form.locator("select[name=response]")).to_have_value("true")
    # Another filter chosen in the form keeps it (the queue still shows the flood only).
    form.locator("select[name=order]").select_option("newest")
    expect(page).to_have_url(f"{daphne_url}/command/street/{STREET}/?response=true&order=newest")
    expect(page.locator("tr[data-number]")).to_have_count(1)
    # A stage chip trades it for its stage; the field says so too.
    page.get_by_test_id("chip-reported").click()
    expect(form.locator("select[name=response]")).to_have_value("")

    # A department's 协办 chip (the form has no field for it) stays as well.
    police = _user("e2e-chips-police", Role.DEPARTMENT_HANDLER, department="JJ")
    page = _desk(desks, browser, daphne_url, police, "/command/department/").page
    page.get_by_test_id("chip-support").click()
    expect(page.locator(f'tr[data-number="{flood.number}"]')).to_be_visible()
    page.locator("#queue-filters select[name=order]").select_option("newest")
    expect(page).to_have_url(f"{daphne_url}/command/department/?order=newest&share=support")
    expect(page.locator(f'tr[data-number="{flood.number}"]')).to_be_visible()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_the_case_page_follows_its_case(browser: Any, daphne_url: str, desks: list[Desk]) -> None:
    street = _user("e2e-case-street", Role.STREET_OPERATOR, STREET)
    district = _user("e2e-case-district", Role.DISTRICT_OPERATOR, DISTRICT)
    case = report(description="井盖松动")
    desk = _desk(desks, browser, daphne_url, street, f"/command/cases/{case.number}/")
    page = desk.page
    _wait_live(page)
    page.evaluate("window.__notReloaded = true")
    expect(page.locator('form[data-action="register"]')).to_be_attached()

    in_thread(lambda: incident_register(incident=case, by=district, note="区指挥中心立案"))

    expect(page.get_by_test_id("case-status")).to_have_text("已立案（待派遣）")
    expect(page.locator('form[data-action="dispatch"]')).to_be_attached()
    expect(page.locator('form[data-action="register"]')).to_have_count(0)
    expect(page.get_by_test_id("timeline")).to_contain_text("区指挥中心立案")

    # A case merged into it and taken out again: the page hears of its own case each time.
    duplicate = report(description="同一处井盖")
    in_thread(lambda: incident_merge(incident=duplicate, into=case, by=district))
    expect(page.get_by_test_id("merged-cases")).to_contain_text(duplicate.number)
    in_thread(lambda: incident_unmerge(incident=duplicate, by=district))
    expect(page.get_by_test_id("merged-cases")).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True
    assert desk.errors == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_an_interrupted_feed_shows_the_banner(browser: Any, desks: list[Desk]) -> None:
    street = _user("e2e-banner-street", Role.STREET_OPERATOR, STREET)
    with private_redis() as redis, daphne_server(redis_url=redis.url) as server:
        desk = _desk(desks, browser, server.url, street, f"/command/street/{STREET}/")
        page = desk.page
        _wait_live(page)
        server.stop()
        expect(page.get_by_test_id("live-banner")).to_be_visible()
        expect(page.get_by_test_id("live-banner")).to_contain_text("实时连接中断")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "interrupted")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_session_ended_after_its_idle_limit_is_said_and_signs_in_again(
    browser: Any, desks: list[Desk]
) -> None:
    from django.contrib.sessions.models import Session

    street = _user("e2e-idle-street", Role.STREET_OPERATOR, STREET)
    console = f"/command/street/{STREET}/"
    with (
        private_redis() as redis,
        daphne_server(redis_url=redis.url, env={"REALTIME_REAUTH_SECONDS": "1"}) as server,
    ):
        desk = _desk(desks, browser, server.url, street, console)
        page = desk.page
        _wait_live(page)
        # The idle limit passes: the stored session expires; the socket re-reads it.
        session = next(c["value"] for c in desk.context.cookies() if c["name"] == "sessionid")
        Session.objects.filter(session_key=session).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )
        banner = page.get_by_test_id("signed-out-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("登录已失效")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "signedout")
        expect(page.locator("#live-status")).to_contain_text("已退出登录")
        expect(page.get_by_test_id("live-banner")).to_be_hidden()

        banner.get_by_role("link", name="重新登录").click()
        page.wait_for_url(f"{server.url}/accounts/login/?next={console}")
        expect(page.get_by_test_id("idle-limit")).to_contain_text("30 分钟未操作")
        page.fill("input[name=username]", street.username)
        page.fill("input[name=password]", PASSWORD)
        page.click(".login-form button[type=submit]")
        page.wait_for_url(f"{server.url}{console}")
        _wait_live(page)
        expect(banner).to_be_hidden()
    assert desk.errors == []
