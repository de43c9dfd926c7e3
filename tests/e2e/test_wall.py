"""The district wall screen in a real browser (Debian's Chromium, 1920×1080, zh-CN) against a real
Daphne (tests/asgi_server.py: WebSockets, Redis, the test database).

* opened through a screen token's address, as a kiosk: the token leaves the address bar, the
  page fills the screen without scrolling, its figures equal the server's snapshot, and it
  follows the district's live feed;
* a case reported by a grid worker through the API appears on the wall without a reload — a
  marker on the map, the top line of the ticker, one more in 今日上报 and its street's row — and
  its registration by the district centre (through the API too) moves 今日立案;
* when the server goes away the "实时连接中断" banner is shown;
* a surge: with more overdue and due-soon cases than the panel holds, the overdue list builds
  only the rows that fit, says how many more there are ("另有 N 件"), and from then on only its
  countdowns change by the second (no row is built again); a same-second batch of alarms puts
  its newest on top of the ticker, as a reload does; beyond a threshold the emergencies (突发)
  are clustered among themselves — and drawn one by one again when zoomed in; the street names
  are drawn over those clusters and let clicks through to them;
* every row of the ticker and of the overdue list shows its whole case number (what an operator
  reads out on the radio), at 1920×1080 and 3840×2160, in Chinese and in English;
* a case days past its limit counts down in days and hours ("+2天03时"), and its row in the
  overdue list shows its community whole (三联社区, where to send help) beside its whole number,
  in Chinese and in English;
* a response (应急响应): a plan started on a fire puts the case in the responses panel live,
  with its plan, its lead and the departments called out, and rings its marker on the map; a
  department's 确认到场 marks it arrived and counts it; the case's 结案 takes it out, and the
  panel goes with its last row;
* on an English wall every category name is English — the TOP chart, the ticker and the overdue
  list, for the cases the page came with and for a case reported live (whose event names its
  category in Chinese).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role, User
from accounts.services import api_key_issue
from command.services import screen_token_issue
from gridmap.models import Region
from incidents.models import Incident
from incidents.services import (
    calendar_load,
    categories_load,
    incident_accept,
    incident_feed_back,
    incident_handle,
    incident_verify,
)
from incidents.services.escalation import incident_escalate
from tests.asgi_server import asgi_server, daphne_server, private_redis  # noqa: F401
from tests.incidents.cases import (
    COMMUNITY,
    DISTRICT,
    FIRE,
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


# --- a surge ------------------------------------------------------------------------------------

# Counts every row the page ever puts into the overdue list (from before its script runs).
COUNT_OVERDUE_ROWS = """
window.__overdueRowsBuilt = 0;
new MutationObserver(function (records) {
  records.forEach(function (record) {
    if (record.target.id === "overdue-list") {
      record.addedNodes.forEach(function (node) {
        if (node.nodeName === "LI" && !node.__counted) {
          node.__counted = true;
          window.__overdueRowsBuilt += 1;
        }
      });
    }
  });
}).observe(document, {childList: true, subtree: true});
"""


def _alarms(browser: Any, base_url: str, count: int, code: str, prefix: str) -> list[str]:
    """`count` sensor alarms posted as one batch to the bulk API by a gateway (so they share
    their created_at, one moment), spread over two grid cells; their case numbers."""
    gateway = make_user(Role.INTEGRATION, first_name="龙华物联感知平台")
    _, raw = api_key_issue(user=gateway, name="物联网关", channels=("sensor",))
    points = [point_in(grid) for grid in (GRID, OTHER_STREET_GRID)]
    items = [
        {
            "channel": "sensor",
            "category": code,
            "lon": points[i % len(points)][0],
            "lat": points[i % len(points)][1],
            "source_ref": f"{prefix}-{i:04d}",
            "description": "积水报警",
        }
        for i in range(count)
    ]
    context = browser.new_context()
    try:
        response = context.request.post(
            f"{base_url}/api/v1/incidents/bulk/",
            data=json.dumps({"items": items}),
            headers={"Content-Type": "application/json", "Authorization": f"Api-Key {raw}"},
        )
        body = response.json()
    finally:
        context.close()
    assert response.status == 200, body
    numbers = [r["number"] for r in body["results"] if r["result"] == "created"]
    assert len(numbers) == count, body
    return numbers


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_the_overdue_list_shows_what_fits_and_only_its_countdowns_tick(
    wall_context: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    late = [report(grid=GRID if i % 2 else OTHER_STREET_GRID).number for i in range(25)]
    soon = [report(grid=GRID).number for _ in range(15)]
    now = timezone.now()
    for i, number in enumerate(late):
        Incident.objects.filter(number=number).update(
            stage_deadline=now - timedelta(hours=1, minutes=i)
        )
    Incident.objects.filter(number__in=soon).update(stage_deadline=now + timedelta(minutes=50))
    wall_context.add_init_script(COUNT_OVERDUE_ROWS)

    page, errors = _open_wall(wall_context, asgi_server)
    expect(page.locator("#overdue-counts")).to_contain_text("超时 25")
    expect(page.locator("#overdue-counts")).to_contain_text("临期 15")
    rows = page.locator("#overdue-list li")
    shown = rows.count()
    assert 1 <= shown < 40
    # The rows shown are the longest overdue first, and each fits inside the panel.
    assert rows.first.get_attribute("data-number") == late[-1]
    assert page.evaluate(
        """() => { const list = document.getElementById('overdue-list');
        const bottom = list.getBoundingClientRect().bottom + 1;
        return [...list.children].every(li => li.getBoundingClientRect().bottom <= bottom); }"""
    )
    expect(page.locator("#overdue-more")).to_be_visible()
    expect(page.locator("#overdue-more")).to_have_text(f"另有 {40 - shown} 件")

    # Second after second the same rows stay; only their countdowns move.
    first = rows.first
    first.evaluate("li => { li.__kept = true; }")
    countdown = first.locator(".countdown").inner_text()
    page.wait_for_timeout(2500)
    assert rows.count() == shown
    assert rows.first.evaluate("li => li.__kept === true")
    assert rows.first.locator(".countdown").inner_text() != countdown
    # Never more rows built than fit (and the one that showed where the panel ends).
    assert page.evaluate("window.__overdueRowsBuilt") <= shown + 1
    assert page.evaluate("window.cityopsWall.mismatches") == []
    assert errors == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_same_second_batch_of_alarms_puts_its_newest_on_top_of_the_ticker(
    wall_context: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    report(grid=GRID)
    page, errors = _open_wall(wall_context, asgi_server)
    expect(_kpi(page, "reported")).to_have_text("1")

    numbers = _alarms(wall_context.browser, asgi_server, 12, "01004", "E2E-TICKER")
    expect(_kpi(page, "reported")).to_have_text("13")
    rows = page.locator("#ticker-list li")
    expect(rows.first).to_have_attribute("data-number", max(numbers))
    shown = [rows.nth(i).get_attribute("data-number") for i in range(rows.count())]
    assert shown == sorted(numbers, reverse=True)[: len(shown)]
    times = {rows.nth(i).locator(".ticker-time").inner_text() for i in range(len(shown))}
    assert len(times) == 1  # one moment: the order came from the tie-break

    # A reload shows the same rows in the same order.
    page.reload()
    page.wait_for_function("window.cityopsWall && window.cityopsWall.ready")
    after = page.locator("#ticker-list li")
    expect(after.first).to_have_attribute("data-number", max(numbers))
    assert [after.nth(i).get_attribute("data-number") for i in range(after.count())] == shown
    assert errors == []


def _emergencies_on_map(page: Any) -> dict[str, int]:
    """What the map draws of the emergencies: single diamonds, clusters, and the cases those
    clusters hold."""
    return page.evaluate(
        """() => {
        const pane = document.querySelector('.leaflet-emergencies-pane');
        return {
          singles: pane.querySelectorAll('.mk-emergency').length,
          clusters: pane.querySelectorAll('.cle').length,
          inClusters: [...pane.querySelectorAll('.cle-count')]
            .reduce((sum, n) => sum + Number(n.textContent), 0),
        }; }"""
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_emergencies_are_clustered_beyond_a_threshold(
    wall_context: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    for _ in range(5):
        report(grid=GRID, code=FIRE)
    page, errors = _open_wall(wall_context, asgi_server)
    # Few emergencies: each its own diamond, with its level.
    page.wait_for_function(
        "document.querySelectorAll('.leaflet-emergencies-pane .mk-emergency').length === 5"
    )
    assert _emergencies_on_map(page) == {"singles": 5, "clusters": 0, "inClusters": 0}
    assert page.evaluate("window.cityopsWall.emergenciesClustered()") is False

    # A surge of flooding alarms (内涝积水, an emergency of level Ⅳ): clustered among themselves.
    _alarms(wall_context.browser, asgi_server, 40, "90002", "E2E-FLOOD")
    expect(_kpi(page, "reported")).to_have_text("45")
    page.wait_for_function("window.cityopsWall.emergenciesClustered()")
    page.wait_for_function("document.querySelectorAll('.leaflet-emergencies-pane .cle').length > 0")
    drawn = _emergencies_on_map(page)
    assert drawn["singles"] + drawn["inClusters"] == 45
    assert drawn["singles"] < 45 - 20
    cluster = page.locator(".leaflet-emergencies-pane .cle").first
    assert re.fullmatch(r"\d+", cluster.locator(".cle-count").inner_text())
    expect(cluster.locator(".cle-level")).to_have_text("Ⅳ")

    # Zoomed in far enough, each is drawn on its own again.
    lon, lat = point_in(GRID)
    page.evaluate(
        "([lat, lon]) => window.cityopsWall.map.setView([lat, lon], 17, {animate: false})",
        [lat, lon],
    )
    page.wait_for_function(
        "document.querySelectorAll('.leaflet-emergencies-pane .cle').length === 0"
    )
    assert errors == []


# The street names and the emergencies' clusters: the panes they are drawn in (higher is over),
# how many names a click at their middle passes through, and how many clusters a click at their
# middle reaches.
STREET_NAMES_OVER_CLUSTERS = """
() => {
  const z = name => Number(getComputedStyle(
    document.querySelector('.leaflet-' + name + '-pane')).zIndex);
  const labels = [...document.querySelectorAll('.wall-street-label')];
  const clusters = [...document.querySelectorAll('.leaflet-emergencies-pane .leaflet-marker-icon')]
    .filter(icon => icon.querySelector('.cle'));
  const middle = node => {
    const r = node.getBoundingClientRect();
    return [r.left + r.width / 2, r.top + r.height / 2];
  };
  return {
    labels: z('labels'), emergencies: z('emergencies'), markers: z('marker'),
    named: labels.length,
    clickedThroughLabels: labels.filter(label => {
      const hit = document.elementFromPoint(...middle(label));
      return hit && !hit.closest('.wall-street-label');
    }).length,
    clusters: clusters.length,
    clickedClusters: clusters.filter(icon => {
      const hit = document.elementFromPoint(...middle(icon));
      return hit && hit.closest('.leaflet-marker-icon') === icon;
    }).length,
  };
}"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_street_names_are_drawn_over_the_clusters_and_let_clicks_through(
    wall_context: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    page, errors = _open_wall(wall_context, asgi_server)
    _alarms(wall_context.browser, asgi_server, 40, "90002", "E2E-NAMES")
    page.wait_for_function("window.cityopsWall.emergenciesClustered()")
    page.wait_for_function("document.querySelectorAll('.leaflet-emergencies-pane .cle').length > 0")
    drawn = page.evaluate(STREET_NAMES_OVER_CLUSTERS)
    # Over the cases and over the emergencies' clusters: a cluster never hides a street's name.
    assert drawn["labels"] > drawn["emergencies"] > drawn["markers"]
    assert drawn["named"] == 6
    # A name takes no clicks: they reach what is under it, and every cluster can be clicked.
    assert drawn["clickedThroughLabels"] == drawn["named"]
    assert drawn["clusters"] > 0
    assert drawn["clickedClusters"] == drawn["clusters"]
    assert errors == []


# Each row of `rows` (a selector) whose `text` — by default its case number, its data-number —
# is not drawn whole: not shown at all, broken over two lines, or reaching past a box that cuts
# what overflows it (a "…" included), up to its panel. Each is listed as "<number>: <why>".
TEXT_CUT = """
({rows, text: wanted}) => {
  const cut = [];
  for (const li of document.querySelectorAll(rows)) {
    const number = li.dataset.number;
    const whole = wanted || number;
    const walker = document.createTreeWalker(li, NodeFilter.SHOW_TEXT);
    let text = null;
    while (walker.nextNode()) {
      if (walker.currentNode.data.includes(whole)) { text = walker.currentNode; break; }
    }
    if (!text) { cut.push(number + ': not shown'); continue; }
    const range = document.createRange();
    const start = text.data.indexOf(whole);
    range.setStart(text, start);
    range.setEnd(text, start + whole.length);
    // Where a "…" cuts it, Chromium gives the text's whole box and the part left visible.
    const parts = [...range.getClientRects()];
    if (parts.some(part => Math.abs(part.top - parts[0].top) > 1)) {
      cut.push(number + ': broken over lines');
      continue;
    }
    const r = {
      left: Math.min(...parts.map(part => part.left)),
      right: Math.max(...parts.map(part => part.right)),
    };
    for (let box = text.parentElement; box; box = box.parentElement) {
      const b = box.getBoundingClientRect();
      const panel = box.classList.contains('panel');
      const clips = panel || getComputedStyle(box).overflowX !== 'visible';
      if (clips && (r.left < b.left - 0.5 || r.right > b.right + 0.5)) {
        cut.push(number + ': cut by .' + box.className);
        break;
      }
      if (panel) { break; }
    }
  }
  return cut;
}"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize(
    ("width", "height", "locale", "lang"),
    [
        (1920, 1080, "zh-CN", "zh-Hans"),
        (1920, 1080, "en-US", "en"),
        (3840, 2160, "zh-CN", "zh-Hans"),
        (3840, 2160, "en-US", "en"),
    ],
)
def test_every_row_shows_its_whole_case_number(
    browser: Any,
    asgi_server: str,  # noqa: F811
    width: int,
    height: int,
    locale: str,
    lang: str,
) -> None:
    # Overdue cases escalated (督办) a tier up: in the ticker their place reads "… → 街道" and
    # in the overdue list they carry a 督办 badge — the longest rows either list draws.
    for _ in range(3):
        report(grid=GRID, code=FIRE)
    for i in range(4):
        case = report(grid=GRID if i % 2 else OTHER_STREET_GRID)
        now = timezone.now()
        Incident.objects.filter(pk=case.pk).update(
            stage_deadline=now - timedelta(hours=2, minutes=i)
        )
        case.refresh_from_db()
        incident_escalate(incident=case, now=now)
    context = browser.new_context(
        locale=locale, timezone_id="Asia/Shanghai", viewport={"width": width, "height": height}
    )
    try:
        page, errors = _open_wall(context, asgi_server)
        assert page.evaluate("document.documentElement.lang") == lang
        assert page.locator("#ticker-list li[data-kind=escalated]").count() >= 1
        assert page.locator("#overdue-list li").count() >= 4
        assert page.evaluate(TEXT_CUT, {"rows": "#ticker-list li, #overdue-list li"}) == []
        assert errors == []
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize(("locale", "lang"), [("zh-CN", "zh-Hans"), ("en-US", "en")])
def test_the_overdue_list_shows_where_a_case_days_overdue_is(
    browser: Any,
    asgi_server: str,  # noqa: F811
    locale: str,
    lang: str,
) -> None:
    # Cases of 三联社区 (龙华街道) two days and three hours past their limit and escalated: the
    # longest countdowns and the longest rows the overdue list draws. The community is where to
    # send help, and the case number what is read out on the radio: both whole.
    assert Region.objects.get(generation__status="active", code=COMMUNITY).name == "三联社区"
    for _ in range(4):
        case = report(grid=GRID)
        now = timezone.now()
        Incident.objects.filter(pk=case.pk).update(
            stage_deadline=now - timedelta(days=2, hours=3, minutes=10)
        )
        case.refresh_from_db()
        incident_escalate(incident=case, now=now)
    context = browser.new_context(locale=locale, timezone_id="Asia/Shanghai", viewport=WALL)
    try:
        page, errors = _open_wall(context, asgi_server)
        assert page.evaluate("document.documentElement.lang") == lang
        rows = page.locator("#overdue-list li")
        assert rows.count() == 4
        overdue = "#overdue-list li"
        assert page.evaluate(TEXT_CUT, {"rows": overdue, "text": "三联社区"}) == []
        assert page.evaluate(TEXT_CUT, {"rows": overdue}) == []
        # Past a day a countdown reads days and hours ("+2天03时"; in English as the catalogue
        # words it), with no seconds.
        template = page.evaluate(
            "JSON.parse(document.getElementById('wall-strings').textContent).daysHours"
        )
        late = "+" + template.replace("%(days)s", "2").replace("%(hours)s", "03")
        if lang == "zh-Hans":
            assert late == "+2天03时"
        for clock in rows.locator(".countdown").all_inner_texts():
            assert clock.splitlines()[-1] == late
        assert errors == []
    finally:
        context.close()


def _category_chart_names(page: Any) -> list[str]:
    """The names beside the bars of the TOP categories chart (drawn on a canvas), top first."""
    return page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById('chart-category'))
        .getOption().yAxis[0].data.slice().reverse()"""
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_an_english_wall_names_the_categories_in_english(
    browser: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    # Two cases of 暴露垃圾 (Exposed garbage) reported today, one of them overdue: the page comes
    # with them (the snapshot names their category in Chinese).
    late = report(grid=GRID)
    report(grid=OTHER_STREET_GRID)
    Incident.objects.filter(pk=late.pk).update(stage_deadline=timezone.now() - timedelta(hours=1))
    worker = _user("e2e-wall-en-worker", Role.GRID_WORKER, GRID)
    context = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai", viewport=WALL)
    try:
        page, errors = _open_wall(context, asgi_server)
        assert page.evaluate("document.documentElement.lang") == "en"
        ticker = page.locator("#ticker-list li")
        expect(ticker).to_have_count(2)
        for name in ticker.locator(".ticker-what").all_inner_texts():
            assert name == "Exposed garbage"
        overdue = page.locator(f'#overdue-list li[data-number="{late.number}"]')
        expect(overdue.locator(".overdue-what")).to_have_text("Exposed garbage")
        assert _category_chart_names(page) == ["Exposed garbage"]

        # A fire reported live by a grid worker: its event names the category 火灾.
        lon, lat = point_in(GRID)
        answer = _api_post(
            browser,
            asgi_server,
            worker,
            "/api/v1/incidents/",
            {"category": FIRE, "lon": lon, "lat": lat},
        )
        assert answer["status"] == 201, answer
        first = ticker.first
        expect(first).to_have_attribute("data-number", answer["body"]["number"])
        expect(first.locator(".ticker-what")).to_have_text("Fire")
        page.wait_for_function(
            "() => echarts.getInstanceByDom(document.getElementById('chart-category'))"
            ".getOption().yAxis[0].data.length === 2"
        )
        assert _category_chart_names(page) == ["Exposed garbage", "Fire"]
        assert "暴露垃圾" not in page.locator("#wall").inner_text()
        assert "火灾" not in page.locator("#wall").inner_text()
        assert page.evaluate("window.cityopsWall.mismatches") == []
        assert errors == []
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_a_response_is_followed_live_from_its_plan_to_its_close(
    wall_context: Any,
    asgi_server: str,  # noqa: F811
) -> None:
    fire = report(grid=GRID, code=FIRE, severity="III")  # registered at once (an emergency)
    district = _user("e2e-wall-resp-district", Role.DISTRICT_OPERATOR, DISTRICT)
    police = _user("e2e-wall-resp-police", Role.DEPARTMENT_HANDLER, "")
    police.department_code = "JJ"
    police.save()
    page, errors = _open_wall(wall_context, asgi_server)
    panel = page.locator("#panel-responses")
    expect(panel).to_be_hidden()  # a quiet day: the ticker keeps the column
    page.evaluate("window.__notReloaded = true")

    # The centre starts the fire's major response: 消防 leads, five departments are called out.
    answer = _api_post(
        wall_context.browser,
        asgi_server,
        district,
        f"/api/v1/incidents/{fire.number}/plans/",
        {"plan": "FIRE-III"},
    )
    assert answer["status"] == 200, answer
    expect(panel).to_be_visible()
    row = page.locator(f'#responses-list li[data-number="{fire.number}"]')
    expect(row.locator(".response-title")).to_have_text("火灾较大及以上响应")
    expect(row.locator(".response-level")).to_have_text("Ⅲ")
    expect(row.locator(".dept-lead")).to_have_text("消防牵头")
    expect(row.locator(".dept.is-pending")).to_have_count(5)
    expect(row.locator(".response-tally")).to_have_text("0/5 到场")
    expect(row.locator(".response-where")).to_contain_text(fire.number)
    expect(page.locator("#responses-count")).to_have_text("1 起")
    expect(page.locator("#wall-map .mk-response")).to_have_count(1)  # ringed on the map
    # How long it has run, by the second.
    since = row.locator(".response-since").inner_text()
    expect(row.locator(".response-since")).not_to_have_text(since)

    # 交警 confirms its arrival from the scene.
    answer = _api_post(
        wall_context.browser,
        asgi_server,
        police,
        f"/api/v1/incidents/{fire.number}/confirm-arrival/",
        {"note": "已到场维持秩序"},
    )
    assert answer["status"] == 200, answer
    expect(row.locator(".response-tally")).to_have_text("1/5 到场")
    expect(row.locator(".dept.is-arrived")).to_have_text("交警")
    expect(row.locator(".dept.is-pending")).to_have_count(4)

    # The fire is put out and the case closed: it leaves the panel, and the panel goes.
    fire.refresh_from_db()
    admin = make_user(Role.ADMIN)
    fire = incident_accept(incident=fire, by=admin)
    fire = incident_handle(incident=fire, by=admin)
    fire = incident_feed_back(incident=fire, by=admin, feedback="明火已扑灭")
    incident_verify(incident=fire, by=district, passed=True)
    answer = _api_post(
        wall_context.browser, asgi_server, district, f"/api/v1/incidents/{fire.number}/close/", {}
    )
    assert answer["status"] == 200, answer
    expect(panel).to_be_hidden()
    expect(page.locator("#wall-map .mk-response")).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True
    assert page.evaluate("window.cityopsWall.mismatches") == []
    assert errors == []
