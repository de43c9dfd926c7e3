"""Admin of the geography: generations (report, validate, activate) and regions (offline map,
read-only outside drafts)."""

from __future__ import annotations

import pytest
import shapely
from django.contrib.messages import get_messages
from django.core.management import call_command

from gridmap.admin import report_html
from gridmap.models import Generation, Level, Region
from gridmap.services import (
    RegionInput,
    generation_create_draft,
    generation_validate,
    regions_add,
)
from gridmap.widgets import OfflineOpenLayersWidget

pytestmark = pytest.mark.django_db

GENERATIONS = "/admin/gridmap/generation/"
REGIONS = "/admin/gridmap/region/"


def _broken_draft() -> Generation:
    """A draft whose only street covers half the district and has no communities: two gaps."""
    draft = generation_create_draft(label="broken draft")
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


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _run_action(client, action: str, *generations: Generation):
    return client.post(
        GENERATIONS,
        {"action": action, "_selected_action": [g.pk for g in generations]},
        follow=True,
    )


def test_generation_list_shows_counts_and_validation(admin_client):
    html = admin_client.get(GENERATIONS).content.decode()
    assert "1 / 6 / 50 / " in html
    assert "通过" in html
    assert "校验 validate" in html
    assert "启用 activate" in html
    assert "delete_selected" not in html


def test_generation_page_renders_the_report_as_a_table(admin_client):
    draft = _broken_draft()
    generation_validate(generation=draft)
    html = admin_client.get(f"{GENERATIONS}{draft.pk}/change/").content.decode()
    assert 'data-testid="validation-report"' in html
    assert "校验未通过：2 个错误" in html
    assert "<table>" in html
    assert html.count("缝隙 gap") == 2
    assert "<code>440309001</code> 龙华街道" in html
    assert "&lt;br&gt;" not in html
    assert "m²" in html


def test_report_html_escapes_what_came_from_a_boundary_file():
    html = str(
        report_html(
            {
                "counts": {"district": 1},
                "errors": [
                    {
                        "check": "gap",
                        "title": "缝隙 gap",
                        "severity": "error",
                        "level": "street",
                        "codes": ["440309001"],
                        "names": ["<script>alert(1)</script>"],
                        "message": "<b>gap</b>",
                        "area_m2": 12.5,
                        "location": [114.0, 22.6],
                    }
                ],
                "warnings": [],
            }
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;gap&lt;/b&gt;" in html
    assert "114.000000, 22.600000" in html


def test_unvalidated_generation_says_how_to_validate():
    assert "校验 validate" in str(report_html(None))


def test_validate_action_stores_the_report_and_reports_errors(admin_client):
    draft = _broken_draft()
    response = _run_action(admin_client, "validate", draft)
    assert any("校验未通过：2 个错误" in m for m in _messages(response))
    draft.refresh_from_db()
    assert len(draft.validation_report["errors"]) == 2


def test_validate_action_on_a_clean_generation_succeeds(admin_client):
    active = Generation.objects.get(status="active")
    response = _run_action(admin_client, "validate", active)
    assert any(f"版本 #{active.number} 校验通过" in m for m in _messages(response))


def test_activate_action_refuses_an_invalid_draft_with_the_error_count(admin_client):
    draft = _broken_draft()
    active = Generation.objects.get(status="active")
    response = _run_action(admin_client, "activate", draft)
    assert any(f"版本 #{draft.number} 未启用：校验发现 2 个错误" in m for m in _messages(response))
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert Generation.objects.get(status="active") == active


def test_activate_action_refuses_a_generation_that_is_not_a_draft(admin_client):
    active = Generation.objects.get(status="active")
    response = _run_action(admin_client, "activate", active)
    assert any("未启用" in m and "only a draft" in m for m in _messages(response))


def test_activate_action_wants_exactly_one_generation(admin_client):
    draft = _broken_draft()
    active = Generation.objects.get(status="active")
    response = _run_action(admin_client, "activate", draft, active)
    assert any("一次只能启用一个版本" in m for m in _messages(response))


def test_activate_action_switches_to_a_valid_draft(admin_client, admin_user):
    previous = Generation.objects.get(status="active")
    call_command("gridmap_demo", "--force", "--no-activate", verbosity=0)
    draft = Generation.objects.get(status="draft")
    response = _run_action(admin_client, "activate", draft)
    assert any(f"版本 #{draft.number} 已启用" in m for m in _messages(response))
    draft.refresh_from_db()
    previous.refresh_from_db()
    assert draft.status == "active"
    assert draft.activated_by == admin_user
    assert previous.status == "retired"


def test_generations_are_not_added_here_and_live_ones_not_deleted(admin_client):
    active = Generation.objects.get(status="active")
    draft = _broken_draft()
    assert admin_client.get(f"{GENERATIONS}add/").status_code == 403
    assert admin_client.get(f"{GENERATIONS}{active.pk}/delete/").status_code == 403
    assert admin_client.get(f"{GENERATIONS}{draft.pk}/delete/").status_code == 200


def test_region_list_filters_and_searches_by_code_prefix(admin_client):
    active = Generation.objects.get(status="active")
    response = admin_client.get(REGIONS, {"generation__id__exact": active.pk, "level": "street"})
    assert response.context["cl"].result_count == 6
    response = admin_client.get(REGIONS, {"q": "440309001"})
    codes = [r.code for r in response.context["cl"].result_list]
    assert codes and all(code.startswith("440309001") for code in codes)


def test_region_of_the_active_generation_is_read_only_with_an_offline_map(admin_client):
    street = Region.objects.get(generation__status="active", code="440309001")
    url = f"{REGIONS}{street.pk}/change/"
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_geom_map"' in html
    assert "/static/vendor/ol/ol.js" in html
    assert "/static/gridmap/admin-map.js" in html
    assert "ol.layer.Vector" in html
    assert "options['readonly'] = true" in html
    for remote in ("cdn.jsdelivr", "earthdata.nasa", "openstreetmap", "ol.source.OSM"):
        assert remote not in html
    assert 'name="_save"' not in html
    assert "只读" in html
    response = admin_client.post(url, {"name": "改名", "attributes": "{}"})
    assert response.status_code == 403
    street.refresh_from_db()
    assert street.name == "龙华街道"
    assert admin_client.get(f"{REGIONS}{street.pk}/delete/").status_code == 403
    assert admin_client.get(f"{REGIONS}add/").status_code == 403


def test_region_of_a_draft_is_editable_and_keeps_derived_values_right(admin_client):
    draft = _broken_draft()
    generation_validate(generation=draft)
    street = Region.objects.get(generation=draft, code="440309001")
    url = f"{REGIONS}{street.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert 'name="_save"' in html
    assert "options['readonly'] = false" in html
    new_outline = "SRID=4326;MULTIPOLYGON(((114 22.6,114.02 22.6,114.02 22.62,114 22.62,114 22.6)))"
    response = admin_client.post(
        url, {"name": "龙华街道（修正）", "geom": new_outline, "attributes": "{}"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    street.refresh_from_db()
    draft.refresh_from_db()
    assert street.name == "龙华街道（修正）"
    assert street.vertex_count == 5
    assert street.area_m2 == pytest.approx(2055.0 * 2212.0, rel=0.02)
    assert draft.validation_report is None


def test_widget_media_is_local(settings):
    media = str(OfflineOpenLayersWidget().media)
    assert "/static/vendor/ol/ol.js" in media
    assert "/static/vendor/ol/ol.css" in media
    assert "/static/gis/js/OLMapWidget.js" in media
    assert "http" not in media


def test_widget_base_layer_is_empty_unless_tiles_are_configured(settings):
    settings.CITYOPS_MAP_TILE_URL = ""
    html = OfflineOpenLayersWidget().render("geom", None)
    assert "ol.layer.Vector" in html
    assert "XYZ" not in html
    assert "options['default_lon'] = 114.035" in html
    settings.CITYOPS_MAP_TILE_URL = "https://tiles.example.invalid/{z}/{x}/{y}.png"
    html = OfflineOpenLayersWidget().render("geom", None)
    assert "ol.source.XYZ" in html
    assert "https://tiles.example.invalid/{z}/{x}/{y}.png" in html
