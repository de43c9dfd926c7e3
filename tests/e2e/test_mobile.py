"""The grid worker's phone in a real browser: Debian's Chromium at 360×740, touch, zh-CN, the
position from the browser's own geolocation (granted to the page through the browser context —
the page calls navigator.geolocation as on a phone), photos from real JPEG files.

Against pytest-django's live server with committed data (the server is another thread):
report with GPS and a photo; report while offline, see it pending, go back online and see it
delivered exactly once — also when the first answer is lost on the way back; a refused report
shows its error and is not sent again; my tasks with a case to accept, handle and feed back
(with an after-photo), and a second grid worker verifying the fix; on an English phone the
category picker finds a category by English or Chinese words.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from accounts.models import Role, User
from incidents.models import IdempotencyRecord, Incident, IncidentStatus, PhotoKind
from incidents.services import (
    calendar_load,
    categories_load,
    incident_dispatch,
    incident_park,
    incident_register,
)
from tests.asgi_server import asgi_server  # noqa: F401  (fixture)
from tests.incidents.cases import (
    COMMUNITY,
    GRID,
    OTHER_STREET_GRID,
    make_user,
    point_in,
    report,
)
from tests.threads import in_thread

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-Passw0rd-not-secret"
PHONE = {"width": 360, "height": 740}
REPORT_URL = "/api/v1/incidents/"


@pytest.fixture
def reference(committed_demo_geography: None) -> None:
    """Categories, stage limits and the calendar, committed for the live server's thread."""
    categories_load()
    calendar_load()


def _worker(username: str, place: str = GRID) -> User:
    user = make_user(Role.GRID_WORKER, place)
    user.username = username
    user.first_name = "网格员"
    user.set_password(PASSWORD)
    user.save()
    return user


def _jpeg(path: Path, colour: str = "#3a7bd5", label: str = "before") -> Path:
    """A real JPEG as a phone camera writes one (baseline, 800×600)."""
    image = Image.new("RGB", (800, 600), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((120, 200, 680, 420), fill="#f2c94c")
    draw.text((140, 220), label, fill="#000000")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


class Phone:
    """A browser context shaped like a phone, signed in as one user."""

    def __init__(
        self, browser: Any, base_url: str, lon: float, lat: float, locale: str = "zh-CN"
    ) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale=locale,
            timezone_id="Asia/Shanghai",
            geolocation={"longitude": lon, "latitude": lat, "accuracy": 12},
            permissions=["geolocation"],
        )
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.posts: list[str] = []
        self.page.on(
            "request",
            lambda r: (
                self.posts.append(r.url) if r.method == "POST" and REPORT_URL in r.url else None
            ),
        )

    def sign_in(self, user: User, next_url: str = "/m/") -> None:
        page = self.page
        page.goto(f"{self.base_url}/accounts/login/?next={next_url}")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click(".login-form button[type=submit]")
        page.wait_for_url(f"{self.base_url}{next_url}")

    def wait_located(self) -> None:
        expect(self.page.locator("#geo")).to_have_attribute("data-state", "ok")

    def choose_category(self, search: str, code: str) -> None:
        page = self.page
        page.click("#category-button")
        expect(page.locator("#picker")).to_be_visible()
        page.fill("#picker-search", search)
        page.click(f"#picker-list .m-option[data-code='{code}']")
        expect(page.locator("#picker")).to_be_hidden()
        expect(page.locator("#category-chosen")).to_contain_text(code)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def phone_at(
    browser: Any, live_server: Any, reference: None, plain_static_storage: None
) -> Iterator[Any]:
    opened: list[Phone] = []

    def open_phone(grid: str = GRID, locale: str = "zh-CN") -> Phone:
        lon, lat = point_in(grid)
        phone = Phone(browser, live_server.url, lon, lat, locale)
        opened.append(phone)
        return phone

    yield open_phone
    for phone in opened:
        phone.close()


def test_report_with_gps_and_a_photo_makes_a_case_with_that_photo(
    phone_at: Any, tmp_path: Path
) -> None:
    worker = _worker("gw-report")
    phone = phone_at()
    phone.sign_in(worker)
    page = phone.page
    phone.wait_located()
    # The browser's position, its accuracy, and the grid cell the server locates it in.
    expect(page.locator("#geo-status")).to_contain_text("精度约 12 米")
    expect(page.locator("#geo-grid")).to_contain_text(GRID)

    phone.choose_category("暴露垃圾", "06010")
    page.fill("#description-input", "和平路东侧人行道堆放生活垃圾")
    # A file that only looks like a photo by its name is refused at once, not after the upload.
    fake = tmp_path / "scene.png"
    fake.write_text("not an image")
    page.set_input_files("#photo-input", str(fake))
    expect(page.locator("#report-message")).to_have_text("所选文件不是 JPEG、PNG 或 WebP 图片。")
    expect(page.locator("#photo-previews img")).to_have_count(0)
    photo = _jpeg(tmp_path / "scene.jpg")
    page.set_input_files("#photo-input", str(photo))
    expect(page.locator("#photo-previews img")).to_have_count(1)
    page.click("#report-submit")

    message = page.locator("#report-message")
    expect(message).to_contain_text("已上报")
    number = message.locator("a").inner_text()
    assert re.fullmatch(r"LH-\d{8}-\d{6}", number)
    case = Incident.objects.get(number=number)
    assert case.reporter_id == worker.pk and case.grid_code == GRID
    assert case.channel == "grid_worker" and case.category.code == "06010"
    assert case.description == "和平路东侧人行道堆放生活垃圾"
    assert case.client_reported_at is not None
    photos = list(case.photos.all())
    assert [p.kind for p in photos] == [PhotoKind.BEFORE]
    assert photos[0].original_sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    # One key, used once; the queue is empty and the delivery shows the number.
    records = IdempotencyRecord.objects.filter(user=worker)
    assert [(r.response_status, r.response_body["number"]) for r in records] == [(201, number)]
    expect(page.locator("#delivered-list [data-number]")).to_have_attribute("data-number", number)
    expect(page.locator("#outbox")).to_be_hidden()
    assert phone.errors == []


def test_the_english_picker_finds_a_category_by_english_or_chinese_words(phone_at: Any) -> None:
    worker = _worker("gw-english")
    phone = phone_at(locale="en-GB")
    phone.sign_in(worker)
    page = phone.page
    page.click("#category-button")
    expect(page.locator("#picker")).to_be_visible()
    expect(page.locator('#picker-list [data-group="06"] summary')).to_contain_text(
        "City appearance and environment"
    )
    found = page.locator("#picker-list .m-option")
    for words in ("exposed garbage", "暴露垃圾", "06010 garbage"):
        page.fill("#picker-search", words)
        expect(found).to_have_count(1)
        expect(found).to_contain_text("Exposed garbage")
        expect(found).to_contain_text("City appearance and environment")
    page.fill("#picker-search", "water manhole")
    expect(found.first).to_contain_text("Water supply manhole cover problem")
    page.fill("#picker-search", "garbage")
    page.click("#picker-list .m-option[data-code='06010']")
    expect(page.locator("#category-chosen")).to_have_text("Exposed garbage (06010)")
    assert phone.errors == []


def test_an_english_phone_names_the_departments_to_dispatch_to_so_they_fit(
    phone_at: Any,
) -> None:
    staff = _worker("cs-english")
    staff.role, staff.place_code = Role.COMMUNITY_STAFF, COMMUNITY
    staff.save()
    case = report(grid=GRID)
    incident_register(incident=case, by=staff)
    phone = phone_at(locale="en-GB")
    phone.sign_in(staff, f"/m/tasks/{case.number}/")
    page = phone.page
    select = page.locator('form[data-action="dispatch"] select[name=department]')
    full_name = page.locator('form[data-action="dispatch"] [data-role=department-name]')
    # The category's department, by its short name: a closed select cannot wrap, and the full
    # English name ("Longhua District Urban Management and Comprehensive Law Enforcement
    # Bureau") was cut after its first words. The full name and code are written under it.
    expect(select.locator("option:checked")).to_have_text("Urban Management")
    expect(full_name).to_have_text(
        "Longhua District Urban Management and Comprehensive Law Enforcement Bureau (CGJ)"
    )
    shown = select.evaluate(
        """(select) => {
            const style = getComputedStyle(select);
            const context = document.createElement("canvas").getContext("2d");
            context.font = style.font;
            const room = select.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight) - 20;  // the arrow
            return {text: context.measureText(select.selectedOptions[0].text).width, room};
        }"""
    )
    assert shown["text"] <= shown["room"], shown
    select.select_option("SWJ")
    expect(full_name).to_have_text("Longhua District Water Affairs Bureau (SWJ)")
    select.select_option("")
    expect(full_name).to_be_hidden()
    assert phone.errors == []


def test_an_offline_report_waits_then_is_delivered_exactly_once(
    phone_at: Any, tmp_path: Path
) -> None:
    worker = _worker("gw-offline")
    phone = phone_at()
    phone.sign_in(worker)
    page = phone.page
    phone.wait_located()
    expect(page.locator("#geo-grid")).to_contain_text(GRID)

    phone.context.set_offline(True)
    expect(page.locator("#m-net")).to_have_attribute("data-state", "offline")
    phone.choose_category("井盖", "01001")
    page.fill("#description-input", "离线时发现井盖缺失")
    photo = _jpeg(tmp_path / "cover.jpg", colour="#555555", label="cover")
    page.set_input_files("#photo-input", str(photo))
    page.click("#report-submit")

    expect(page.locator("#report-message")).to_contain_text("已保存到待发送")
    entry = page.locator("#outbox-list .m-entry").first
    expect(entry).to_have_attribute("data-state", "pending")
    expect(entry.locator(".m-state")).to_have_text("待发送")
    expect(entry).to_contain_text("1 张照片")
    expect(page.locator("#m-outbox-badge")).to_have_text("1")
    queued = page.evaluate("window.cityopsOutbox.entries()")
    assert len(queued) == 1
    key = queued[0]["key"]
    assert re.fullmatch(r"[0-9a-f-]{36}", key)
    assert queued[0]["photos"][0]["size"] == photo.stat().st_size
    assert Incident.objects.count() == 0
    assert phone.posts == []  # offline: nothing was even tried

    # Back online, the first answer is lost on its way back (the server stored the case): the
    # phone sees a network failure and keeps the entry; its retry, with the same key, gets the
    # first answer again — one case.
    lost: list[int] = []

    def lose_the_answer(route: Any) -> None:
        answer = route.fetch()
        lost.append(answer.status)
        route.abort("connectionreset")

    page.route(f"**{REPORT_URL}", lose_the_answer, times=1)
    replayed: list[str | None] = []
    page.on(
        "response",
        lambda r: (
            replayed.append(r.headers.get("idempotent-replayed"))
            if r.request.method == "POST" and REPORT_URL in r.url
            else None
        ),
    )
    phone.context.set_offline(False)

    delivered = page.locator("#delivered-list [data-number]")
    expect(delivered).to_have_count(1, timeout=60_000)
    number = delivered.get_attribute("data-number")
    assert lost == [201]
    assert replayed == ["true"]
    assert len(phone.posts) == 2
    cases = Incident.objects.filter(reporter=worker)
    assert [c.number for c in cases] == [number]
    assert cases[0].photos.count() == 1
    assert IdempotencyRecord.objects.filter(user=worker, key=key).count() == 1
    assert IdempotencyRecord.objects.filter(user=worker).count() == 1
    expect(page.locator("#outbox")).to_be_hidden()
    assert page.evaluate("window.cityopsOutbox.entries()") == []
    assert phone.errors == []


def test_a_refused_report_shows_its_error_and_is_not_sent_again(phone_at: Any) -> None:
    worker = _worker("gw-refused")
    phone = phone_at(OTHER_STREET_GRID)  # standing in another street's grid cell
    phone.sign_in(worker)
    page = phone.page
    phone.wait_located()
    expect(page.locator("#geo-grid")).to_contain_text("上报会被拒绝")

    phone.context.set_offline(True)
    phone.choose_category("暴露垃圾", "06010")
    page.click("#report-submit")
    entry = page.locator("#outbox-list .m-entry").first
    expect(entry).to_have_attribute("data-state", "pending")
    phone.context.set_offline(False)

    expect(entry).to_have_attribute("data-state", "failed", timeout=60_000)
    expect(entry.locator(".m-state")).to_have_text("上报失败")
    expect(entry.locator(".m-entry-error")).to_contain_text("无权“上报”：该点在网格")
    page.evaluate("window.cityopsOutbox.flush()")
    [queued] = page.evaluate("window.cityopsOutbox.entries()")
    assert queued["state"] == "failed" and queued["attempts"] == 1
    assert len(phone.posts) == 1
    assert Incident.objects.count() == 0

    # Deleting it empties the queue.
    page.once("dialog", lambda dialog: dialog.accept())
    entry.get_by_role("button", name="删除").click()
    expect(page.locator("#outbox")).to_be_hidden()


def _action_form(page: Any, action: str) -> Any:
    """The form of one action on a task page, unfolded (the first one is open already)."""
    form = page.locator(f"form[data-action={action}]")
    if not form.is_visible():
        page.locator(f"details[data-action={action}] summary").click()
    expect(form).to_be_visible()
    return form


def test_my_tasks_accept_handle_feed_back_then_another_worker_verifies(
    phone_at: Any, tmp_path: Path
) -> None:
    worker = _worker("gw-tasks")
    colleague = _worker("gw-colleague")
    operator = make_user(Role.DISTRICT_OPERATOR, "440309")
    case = report(grid=GRID, description="人行道护栏倒伏")
    incident_register(incident=case, by=operator)
    incident_dispatch(incident=case, by=operator, assignee=worker)

    phone = phone_at()
    phone.sign_in(worker, "/m/tasks/")
    page = phone.page
    task = page.locator(f".m-task[data-number='{case.number}']")
    expect(task).to_contain_text("已派遣（待签收）")
    expect(task.locator(".m-clock")).to_have_text(re.compile(r"^(剩余|已超时) "))
    expect(task).to_contain_text("派给我")
    task.locator("a").click()
    page.wait_for_url(f"**/m/tasks/{case.number}/")

    page.locator("form[data-action=accept] button[type=submit]").click()
    expect(page.locator("#m-flash")).to_have_text("已完成：签收")
    expect(page.get_by_test_id("case-status")).to_have_text("已签收")

    _action_form(page, "handle").locator("button[type=submit]").click()
    expect(page.get_by_test_id("case-status")).to_have_text("处置中")

    form = _action_form(page, "feed_back")
    form.locator("textarea[name=feedback]").fill("护栏已扶正加固")
    after = _jpeg(tmp_path / "after.jpg", colour="#2e7d32", label="after")
    form.locator("input[type=file]").set_input_files(str(after))
    expect(form.locator("[data-role=previews] img")).to_have_count(1)
    form.locator("button[type=submit]").click()
    expect(page.locator("#m-flash")).to_have_text("已完成：处置反馈")
    expect(page.get_by_test_id("case-status")).to_have_text("已反馈（待核查）")
    # Verifying is for somebody else: nothing is left for the one who fixed it.
    expect(page.get_by_test_id("no-actions")).to_be_visible()
    page.locator(".m-tabs a", has_text="我的任务").click()
    expect(page.locator("#task-list")).to_be_visible()
    expect(page.locator(f".m-task[data-number='{case.number}']")).to_have_count(0)

    case.refresh_from_db()
    assert case.status == IncidentStatus.FED_BACK
    assert case.feedback == "护栏已扶正加固" and case.handled_by_id == worker.pk
    assert list(case.photos.values_list("kind", flat=True)) == [PhotoKind.AFTER]
    assert IdempotencyRecord.objects.filter(user=worker).count() == 3

    # The fix is verified on the spot by someone else of the same grid (核查须由他人进行).
    other = phone_at()
    other.sign_in(colleague, "/m/tasks/")
    other.page.locator(f".m-task[data-number='{case.number}'] a").click()
    expect(other.page.get_by_test_id("case-photos").locator("img")).to_have_count(1)
    # A rework without its reason is named as the form labels it, and not sent.
    rework = _action_form(other.page, "rework")
    rework.locator("button[type=submit]").click()
    expect(rework.locator(".m-message")).to_have_text("不通过的原因：不能为空。")
    other.page.locator("form[data-action=verify] button[type=submit]").click()
    expect(other.page.get_by_test_id("case-status")).to_have_text("核查通过（待结案）")
    case.refresh_from_db()
    assert case.status == IncidentStatus.VERIFIED
    assert phone.errors == [] and other.errors == []


def test_the_pages_open_with_no_network_once_visited(phone_at: Any) -> None:
    worker = _worker("gw-shell")
    phone = phone_at()
    phone.sign_in(worker)
    page = phone.page
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    phone.wait_located()

    phone.context.set_offline(True)
    page.reload()
    expect(page.locator("#report-form")).to_be_visible()
    expect(page.locator("#m-net")).to_have_attribute("data-state", "offline")
    expect(page.locator("#m-stale")).to_contain_text("当前离线，显示的是")
    # A report made on the page opened offline waits in the outbox like any other.
    page.click("#geo-button")
    phone.wait_located()
    phone.choose_category("井盖", "01001")
    page.click("#report-submit")
    expect(page.locator("#outbox-list .m-entry")).to_have_attribute("data-state", "pending")

    page.goto(f"{phone.base_url}/m/tasks/")
    expect(page.locator("#task-list")).to_be_visible()
    expect(page.locator("#m-stale")).to_be_visible()
    assert Incident.objects.count() == 0

    phone.context.set_offline(False)
    page.goto(f"{phone.base_url}/m/")
    expect(page.locator("#m-stale")).to_be_hidden()
    expect(page.locator("#delivered-list [data-number]")).to_have_count(1, timeout=60_000)
    assert Incident.objects.filter(reporter=worker).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_dispatched_to_me_appears_live_and_the_outbox_is_left_alone(
    browser: Any,
    asgi_server: str,  # noqa: F811  (the fixture imported above)
    reference: None,
) -> None:
    """Against Daphne (the live feed needs WebSockets): the task list follows the feed while a
    report waits in the outbox; the new task appears without a reload, the waiting report keeps
    its key and is delivered once when its turn comes."""
    worker = _worker("gw-live")
    operator = make_user(Role.DISTRICT_OPERATOR, "440309")
    lon, lat = point_in(GRID)
    phone = Phone(browser, asgi_server, lon, lat)
    try:
        phone.sign_in(worker)
        page = phone.page
        phone.wait_located()
        # The report's request never gets through (as on a dead cell): it waits, pending.
        page.route(f"**{REPORT_URL}", lambda route: route.abort("internetdisconnected"))
        phone.choose_category("暴露垃圾", "06010")
        page.click("#report-submit")
        expect(page.locator("#outbox-list .m-entry")).to_have_attribute("data-state", "pending")
        [waiting] = page.evaluate("window.cityopsOutbox.entries()")

        page.locator(".m-tabs a", has_text="我的任务").click()
        expect(page.locator("#m-live")).to_have_attribute("data-state", "live")
        expect(page.locator(".m-task")).to_have_count(0)

        def dispatch() -> str:
            case = report(grid=GRID, description="消防通道被占用")
            incident_register(incident=case, by=operator)
            incident_dispatch(incident=case, by=operator, assignee=worker)
            return case.number

        number = in_thread(dispatch)
        task = page.locator(f".m-task[data-number='{number}']")
        expect(task).to_be_visible(timeout=60_000)
        expect(task).to_have_attribute("data-fresh", "true")
        expect(task).to_contain_text("已派遣（待签收）")

        # The outbox was not touched by the live refresh: the same entry, the same key.
        expect(page.locator("#m-outbox-badge")).to_have_text("1")
        [still] = page.evaluate("window.cityopsOutbox.entries()")
        assert still["key"] == waiting["key"] and still["state"] == "pending"
        page.unroute(f"**{REPORT_URL}")
        page.evaluate("window.cityopsOutbox.flush()")
        assert page.evaluate("window.cityopsOutbox.entries()") == []
        [delivered] = page.evaluate("window.cityopsOutbox.delivered()")
        assert delivered["key"] == waiting["key"]
        mine = Incident.objects.filter(reporter=worker)
        assert [c.number for c in mine] == [delivered["number"]]
        assert phone.errors == []
    finally:
        phone.close()


def test_a_task_page_follows_its_case_live(
    browser: Any,
    asgi_server: str,  # noqa: F811  (the fixture imported above)
    reference: None,
) -> None:
    """The task page reloads itself when its case changes elsewhere; with a form half filled
    in, it says so and offers the reload instead of throwing the input away."""
    worker = _worker("gw-task-live")
    operator = make_user(Role.DISTRICT_OPERATOR, "440309")
    lon, lat = point_in(GRID)

    def reported() -> str:
        case = report(grid=GRID, description="路灯不亮")
        incident_register(incident=case, by=operator)
        return case.number

    number = in_thread(reported)
    phone = Phone(browser, asgi_server, lon, lat)
    try:
        phone.sign_in(worker, next_url=f"/m/tasks/{number}/")
        page = phone.page
        expect(page.locator("#m-live")).to_have_attribute("data-state", "live")
        expect(page.get_by_test_id("case-status")).to_have_text("已立案（待派遣）")

        # Dispatched to this worker elsewhere: the page reloads by itself and shows it.
        def dispatch() -> None:
            case = Incident.objects.get(number=number)
            incident_dispatch(incident=case, by=operator, assignee=worker)

        in_thread(dispatch)
        expect(page.get_by_test_id("case-status")).to_have_text("已派遣（待签收）", timeout=30_000)
        expect(page.locator("#m-changed")).to_be_hidden()

        # The worker starts writing a send-back reason; meanwhile the operator parks the case
        # (挂账). The page keeps the text and says the case changed.
        page.locator("details[data-action=send_back] summary").click()
        page.fill("#f-send_back-reason", "不在我的网格")

        def park() -> None:
            case = Incident.objects.get(number=number)
            incident_park(incident=case, by=operator, reason="等待管网改造立项")

        in_thread(park)
        changed = page.locator("#m-changed")
        expect(changed).to_be_visible(timeout=30_000)
        expect(changed).to_contain_text("此案件刚有新进展")
        expect(page.locator("#f-send_back-reason")).to_have_value("不在我的网格")
        changed.locator("[data-role=reload]").click()
        expect(page.locator("#m-changed")).to_be_hidden()
        assert phone.errors == []
    finally:
        phone.close()
