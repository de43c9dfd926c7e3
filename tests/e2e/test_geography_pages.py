"""The geography pages in a real browser: home, the map, the admin of generations and regions.

Debian's Chromium (Playwright, see conftest.py) against pytest-django's live server, with the
demo geography committed (`committed_demo_geography`: the live server is another thread, so the
data must be committed, not inside a test transaction).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import shapely
from playwright.sync_api import expect

from gridmap.models import Generation, Level, Region
from gridmap.services import RegionInput, generation_create_draft, regions_add
from tests.e2e.conftest import PageRecorder

pytestmark = pytest.mark.e2e

BANNER_ZH = (
    "演示用合成划分：街道/社区/网格边界为算法生成，非官方边界，请用 gridmap_import 导入正式边界"
)
# In 龙华街道, near Longhua station; and a point ~9 km east of the district.
LONGHUA_LON, LONGHUA_LAT = 114.0305, 22.6696
FAR_LON, FAR_LAT = 114.20, 22.62
PASSWORD = "e2e-Passw0rd-not-secret"


def _wait_for_map(page: Any) -> None:
    page.wait_for_function("window.cityopsMap && window.cityopsMap.ready")


def _set_view(page: Any, lon: float, lat: float, zoom: float) -> None:
    page.evaluate(
        "([lon, lat, zoom]) => {"
        " window.cityopsMap.map.setView([lat, lon], zoom, {animate: false}); }",
        [lon, lat, zoom],
    )


def _click_lonlat(page: Any, lon: float, lat: float) -> None:
    """Click the map where (lon, lat) is drawn, as a user would."""
    point = page.evaluate(
        """([lon, lat]) => {
            const p = window.cityopsMap.map.latLngToContainerPoint([lat, lon]);
            const box = document.getElementById('map').getBoundingClientRect();
            return {x: box.left + p.x, y: box.top + p.y, w: box.width, h: box.height,
                    px: p.x, py: p.y};
        }""",
        [lon, lat],
    )
    assert 0 < point["px"] < point["w"] and 0 < point["py"] < point["h"], point
    page.mouse.click(point["x"], point["y"])


def _log_in(recorder: PageRecorder, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser(
        username="e2e-admin", email="e2e@example.invalid", password=PASSWORD
    )
    page = recorder.page
    page.goto(f"{recorder.base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", "e2e-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def _broken_draft() -> Generation:
    """A draft whose only street covers half the district and has no communities: two gaps."""
    draft = generation_create_draft(label="e2e broken draft")
    regions_add(
        generation=draft,
        level=Level.DISTRICT,
        regions=[RegionInput("440309", "龙华区", shapely.box(114.00, 22.60, 114.02, 22.62))],
    )
    regions_add(
        generation=draft,
        level=Level.STREET,
        regions=[RegionInput("440309001", "龙华街道", shapely.box(114.00, 22.60, 114.01, 22.62))],
    )
    return draft


def test_home_page_shows_the_synthetic_partition_banner(recorder: PageRecorder) -> None:
    page = recorder.page
    page.goto(f"{recorder.base_url}/")
    banner = page.get_by_test_id("synthetic-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(BANNER_ZH)
    expect(banner).to_contain_text("Synthetic demo partition")
    generation = page.get_by_test_id("active-generation")
    expect(generation).to_contain_text("#1")
    expect(generation.locator(".count-street dd")).to_have_text("6")
    expect(generation.locator(".count-community dd")).to_have_text("50")

    # The language switch (Django's set_language view) turns the page into English; the notice
    # about the synthetic lines stays, in both languages.
    page.click(".lang-switch button[value=en]")
    expect(page.locator("h1")).to_have_text("Longhua District City Operations Command")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("synthetic-banner")).to_contain_text(BANNER_ZH)
    assert recorder.errors == []
    assert recorder.foreign_requests() == []


def test_map_draws_the_six_streets_and_locates_a_click_in_longhua(
    recorder: PageRecorder,
) -> None:
    page = recorder.page
    page.goto(f"{recorder.base_url}/map/")
    expect(page.get_by_test_id("synthetic-banner")).to_contain_text(BANNER_ZH)
    _wait_for_map(page)
    counts = page.evaluate("window.cityopsMap.counts")
    assert counts["street"] == 6
    assert counts["community"] == 50
    expect(page.locator(".leaflet-streets-pane path")).to_have_count(6)
    expect(page.locator(".leaflet-tooltip.street-label")).to_have_count(6)
    expect(page.locator("#street-legend li")).to_have_count(6)

    _click_lonlat(page, LONGHUA_LON, LONGHUA_LAT)
    output = page.locator("#locate-output")
    expect(output).to_have_attribute("data-state", "ok")
    expect(output.locator("[data-level=street] .name")).to_have_text("龙华街道")
    expect(output.locator("[data-level=street] .code")).to_have_text("440309001")
    expect(output.locator("[data-level=community] .code")).to_have_text(
        re.compile(r"^440309001\d{3}$")
    )
    expect(output.locator("[data-level=grid] .code")).to_have_text(re.compile(r"^440309001\d{6}$"))
    expect(output).to_contain_text("归属方式")
    expect(output).to_contain_text("#1")
    # Once the grid is loaded, zooming in draws it (on a canvas).
    page.wait_for_function("window.cityopsMap.gridReady")
    assert page.evaluate("window.cityopsMap.counts.grid") > 1000
    _set_view(page, LONGHUA_LON, LONGHUA_LAT, 15)
    expect(page.locator(".leaflet-grid-pane canvas")).to_have_count(1)

    assert recorder.errors == []
    # No base tiles (CITYOPS_MAP_TILE_URL is empty), no CDN: everything from the live server.
    assert recorder.foreign_requests() == []


def test_map_click_outside_the_district_says_so_with_the_distance(
    recorder: PageRecorder,
) -> None:
    page = recorder.page
    page.goto(f"{recorder.base_url}/map/")
    _wait_for_map(page)
    _set_view(page, FAR_LON, FAR_LAT, 14)
    _click_lonlat(page, FAR_LON, FAR_LAT)
    output = page.locator("#locate-output")
    expect(output).to_have_attribute("data-state", "outside")
    expect(output).to_contain_text("不在辖区内")
    expect(output).to_contain_text("公里")
    expect(output.locator(".detail")).to_contain_text("不在辖区内。")
    assert recorder.errors == []


def test_coordinate_form_takes_a_pasted_pair_and_names_what_is_wrong(
    recorder: PageRecorder,
) -> None:
    page = recorder.page
    page.goto(f"{recorder.base_url}/map/")
    _wait_for_map(page)
    output = page.locator("#locate-output")

    def submit(lon: str, lat: str) -> None:
        page.fill("input[name=lon]", lon)
        page.fill("input[name=lat]", lat)
        page.click("#locate-form button[type=submit]")

    # "lon, lat" pasted into the first box (full-width comma too, as Chinese IMEs type it).
    submit("114.0305，22.6696", "")
    expect(output).to_have_attribute("data-state", "ok")
    expect(output.locator("[data-level=street] .name")).to_have_text("龙华街道")
    expect(page.locator("input[name=lat]")).to_have_value("22.6696")

    # Bad input reaches the server as typed and comes back naming the parameter.
    for lon, lat, words in (
        ("114.0305", "", "lat: 不能为空。"),
        ("abc", "22.6", "lon: “abc”不是数字。"),
        ("22.6696", "114.0305", "经度和纬度似乎填反了"),
    ):
        submit(lon, lat)
        expect(output).to_have_attribute("data-state", "error")
        expect(output).to_contain_text(words)
    assert recorder.errors == []


def test_admin_generation_page_renders_the_validation_report_and_actions(
    recorder: PageRecorder, django_user_model: Any
) -> None:
    _log_in(recorder, django_user_model)
    page = recorder.page
    active = Generation.objects.get(status="active")
    page.goto(f"{recorder.base_url}/admin/gridmap/generation/{active.pk}/change/")
    report = page.get_by_test_id("validation-report")
    expect(report).to_contain_text("校验通过")
    expect(report).to_contain_text("街道 6")

    # A draft with gaps: the "validate" action stores and shows the report's findings ...
    draft = _broken_draft()
    page.goto(f"{recorder.base_url}/admin/gridmap/generation/")
    page.check(f"input.action-select[value='{draft.pk}']")
    page.select_option("select[name=action]", "validate")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist .error")).to_contain_text("校验未通过：2 个错误")
    page.goto(f"{recorder.base_url}/admin/gridmap/generation/{draft.pk}/change/")
    report = page.get_by_test_id("validation-report")
    expect(report).to_contain_text("校验未通过")
    rows = report.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("缝隙 gap")
    expect(rows.first).to_contain_text("440309")

    # ... and "activate" refuses it, giving the number of errors.
    page.goto(f"{recorder.base_url}/admin/gridmap/generation/")
    page.check(f"input.action-select[value='{draft.pk}']")
    page.select_option("select[name=action]", "activate")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist .error")).to_contain_text(
        f"版本 #{draft.number} 未启用：校验发现 2 个错误"
    )
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert Generation.objects.get(status="active").pk == active.pk
    assert recorder.errors == []


def test_admin_region_page_draws_the_boundary_without_leaving_the_server(
    recorder: PageRecorder, django_user_model: Any
) -> None:
    _log_in(recorder, django_user_model)
    page = recorder.page
    street = Region.objects.get(generation__status="active", code="440309001")
    recorder.requests.clear()
    page.goto(f"{recorder.base_url}/admin/gridmap/region/{street.pk}/change/")
    # OpenLayers drew the map with the street's outline; the region is read-only (active
    # generation): no save button, no drawing tools.
    expect(page.locator(".dj_map .ol-viewport canvas").first).to_be_attached()
    page.wait_for_function("window.geodjango_geom && window.geodjango_geom.map")
    assert page.evaluate("geodjango_geom.featureOverlay.getSource().getFeatures().length") == 1
    assert page.evaluate("geodjango_geom.interactions.draw") is None
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.locator("body")).to_contain_text("只读")
    assert any("/static/vendor/ol/ol.js" in url for url in recorder.requests)
    assert recorder.foreign_requests() == []

    # A draft's region is editable, with the same offline map.
    draft = _broken_draft()
    draft_street = Region.objects.get(generation=draft, code="440309001")
    recorder.requests.clear()
    page.goto(f"{recorder.base_url}/admin/gridmap/region/{draft_street.pk}/change/")
    page.wait_for_function("window.geodjango_geom && window.geodjango_geom.map")
    assert page.evaluate("geodjango_geom.interactions.draw !== null")
    expect(page.locator("input[name=_save]")).to_have_count(1)
    assert recorder.foreign_requests() == []
    assert recorder.errors == []
