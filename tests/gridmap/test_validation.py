"""Validation of boundary generations and activation of drafts (gridmap.validation, services).

Small synthetic hierarchies are stored through gridmap.services near Longhua (lon 114.0, lat
22.7), in cells of 1e-3° (≈ 100 m): one district of 4×2 cells, two streets of 2×2, four
communities of 1×2 and eight grid cells of 1×1. Each test breaks one thing and checks that the
report names it — the check, the codes, and where relevant the area and a location inside the
problem. Generation numbers 900+ keep clear of the demo generation 1 the session loads.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.core.management import call_command
from django.core.management.base import CommandError

from gridmap.crs import MetricProjector
from gridmap.models import (
    CODE_LENGTH,
    LEVEL_ORDER,
    Generation,
    GenerationStatus,
    Level,
    Region,
)
from gridmap.services import (
    GenerationInvalid,
    GeographyError,
    RegionInput,
    generation_activate,
    generation_create_draft,
    generation_validate,
    regions_add,
)
from gridmap.validation import Report, _Item, validate_generation, validate_items
from tests.gridmap.layouts import DISTRICT, X0, Y0, D, cells, clean_layout

pytestmark = pytest.mark.django_db

CELL_AREA_M2 = 11_390.0  # 1e-3° × 1e-3° at 22.7°N, in UTM 50N

STREET_W = "440309001"
COMMUNITY_A = "440309001001"  # cells x 0..1
COMMUNITY_B = "440309001002"  # cells x 1..2
GRID_A1 = "440309001001001"  # x 0..1, y 0..1
GRID_A2 = "440309001001002"  # x 0..1, y 1..2
GRID_B1 = "440309001002001"  # x 1..2, y 0..1

metric = MetricProjector.around(X0, Y0)


def store(
    number: int,
    layout: dict[str, dict[str, Any]] | None = None,
    parents: dict[str, str] | None = None,
) -> Generation:
    """Store a layout as a draft generation through the services, level by level."""
    layout = clean_layout() if layout is None else layout
    parents = parents or {}
    generation = generation_create_draft(number=number, label=f"test {number}")
    for level in LEVEL_ORDER:
        if layout[level]:
            regions_add(
                generation=generation,
                level=level,
                regions=[
                    RegionInput(
                        code=code, name=f"{level}-{code}", geom=geom, parent_code=parents.get(code)
                    )
                    for code, geom in layout[level].items()
                ],
            )
    return generation


def checks(report: Report) -> list[str]:
    return sorted(f.check for f in report.errors)


def only(report: Report, check: str) -> Any:
    found = [f for f in report.errors if f.check == check]
    assert len(found) == 1, report.as_text()
    return found[0]


def inside(location: list[float] | None, geom: Any) -> bool:
    assert location is not None
    return bool(shapely.Point(location).within(geom))


# --- a clean hierarchy -------------------------------------------------------------------------


def test_clean_synthetic_hierarchy_validates_with_no_errors_or_warnings():
    generation = store(900)

    report = generation_validate(generation=generation)

    assert report.ok, report.as_text()
    assert report.errors == [] and report.warnings == []
    assert report.counts == {"district": 1, "street": 2, "community": 4, "grid": 8}


def test_validation_report_is_stored_on_the_generation_as_json():
    generation = store(900, layout=clean_layout() | {Level.GRID: {}})

    generation_validate(generation=generation)
    generation.refresh_from_db()

    stored = generation.validation_report
    assert generation.validated_at is not None
    assert stored["generation"] == 900 and stored["ok"] is False
    assert stored["counts"]["grid"] == 0
    assert {e["check"] for e in stored["errors"]} == {"gap"}
    # Every community lacks children; the stored findings keep codes, area, location and title.
    assert sorted(e["codes"][0] for e in stored["errors"]) == sorted(
        clean_layout()[Level.COMMUNITY]
    )
    assert all(e["title"].startswith("缝隙 gap") for e in stored["errors"])
    assert all(e["area_m2"] > 0 and len(e["location"]) == 2 for e in stored["errors"])
    assert generation.validation_passed is False
    json.dumps(stored)  # plain JSON


def test_replacing_a_level_clears_the_stored_report():
    generation = store(900)
    generation_validate(generation=generation)
    generation.refresh_from_db()
    assert generation.validation_passed

    regions_add(
        generation=generation,
        level=Level.GRID,
        regions=[RegionInput(code=GRID_A1, name="only one", geom=cells(0, 0, 1, 1))],
        replace=True,
    )
    generation.refresh_from_db()

    assert generation.validation_report is None and generation.validated_at is None
    assert Region.objects.filter(generation=generation, level=Level.GRID).count() == 1
    assert not generation.validation_passed


# --- geometry checks ---------------------------------------------------------------------------


def test_bow_tie_grid_cell_is_reported_as_self_intersection_with_geos_reason_and_location():
    layout = clean_layout()
    x, y = X0, Y0
    layout[Level.GRID][GRID_A1] = shapely.Polygon(
        [(x, y), (x + D, y + D), (x + D, y), (x, y + D), (x, y)]
    )
    generation = store(901, layout)

    report = generation_validate(generation=generation)

    finding = only(report, "self_intersection")
    assert finding.codes == [GRID_A1] and finding.level == "grid"
    assert finding.message.startswith("Self-intersection")  # GEOS's own reason
    assert finding.location == pytest.approx([x + D / 2, y + D / 2], abs=1e-9)
    assert "invalid_geometry" not in checks(report)
    # The bow-tie covers two of the four triangles of its square; the other two (south and
    # north) are gaps in its community.
    gaps = [f for f in report.errors if f.check == "gap"]
    assert [g.codes for g in gaps] == [[COMMUNITY_A]] * 2
    assert [g.area_m2 for g in gaps] == pytest.approx([CELL_AREA_M2 / 4] * 2, rel=0.02)
    assert inside(gaps[0].location, cells(0, 0, 1, 0.5)) != inside(
        gaps[1].location, cells(0, 0, 1, 0.5)
    )


def test_gap_where_children_leave_part_of_parent_uncovered_reports_area_and_location():
    layout = clean_layout()
    missing = layout[Level.GRID].pop(GRID_A2)
    generation = store(902, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["gap"]
    gap = only(report, "gap")
    assert gap.level == "community" and gap.codes == [COMMUNITY_A]
    assert gap.names == [f"community-{COMMUNITY_A}"]
    assert gap.area_m2 == pytest.approx(metric.area_m2(missing), rel=1e-3)
    assert gap.area_m2 == pytest.approx(CELL_AREA_M2, rel=0.02)
    assert inside(gap.location, missing)


def test_parent_without_children_is_reported_as_gap_saying_it_has_no_children():
    layout = clean_layout()
    for code in [c for c in layout[Level.GRID] if c.startswith(COMMUNITY_B)]:
        del layout[Level.GRID][code]
    generation = store(902, layout)

    report = generation_validate(generation=generation)

    gap = only(report, "gap")
    assert gap.codes == [COMMUNITY_B]
    assert "no children" in gap.message
    assert gap.area_m2 == pytest.approx(2 * CELL_AREA_M2, rel=0.02)


def test_small_gap_sliver_below_area_tolerance_is_not_reported():
    layout = clean_layout()
    # 1e-8° ≈ 1 mm short of its top edge: ≈ 0.1 m² uncovered, below the 1 m² tolerance.
    layout[Level.GRID][GRID_A2] = cells(0, 1, 1, 2 - 1e-5)

    report = generation_validate(generation=store(902, layout))

    assert report.ok, report.as_text()


def test_gap_tolerance_follows_the_area_tolerance_setting(settings):
    settings.GRIDMAP_AREA_TOLERANCE_M2 = 0.01
    layout = clean_layout()
    layout[Level.GRID][GRID_A2] = cells(0, 1, 1, 2 - 1e-5)

    report = generation_validate(generation=store(902, layout))

    gap = only(report, "gap")
    assert gap.codes == [COMMUNITY_A]
    assert 0.01 < gap.area_m2 < 1.0


def test_overlapping_sibling_grid_cells_are_reported_as_overlap():
    layout = clean_layout()
    layout[Level.GRID][GRID_A1] = cells(0, 0, 1, 1.5)  # reaches half-way into GRID_A2
    generation = store(903, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["overlap"]
    overlap = only(report, "overlap")
    assert overlap.level == "grid"
    assert sorted(overlap.codes) == [GRID_A1, GRID_A2]
    assert overlap.area_m2 == pytest.approx(CELL_AREA_M2 / 2, rel=0.02)
    assert inside(overlap.location, cells(0, 1, 1, 1.5))


def test_overlapping_streets_are_reported_at_street_level():
    layout = clean_layout()
    layout[Level.STREET][STREET_W] = cells(0, 0, 2.5, 2)

    report = generation_validate(generation=store(903, layout))

    overlap = only(report, "overlap")
    assert overlap.level == "street"
    assert sorted(overlap.codes) == [STREET_W, "440309002"]
    assert overlap.area_m2 == pytest.approx(CELL_AREA_M2, rel=0.02)
    # The street's communities no longer cover its extra half-column.
    assert only(report, "gap").codes == [STREET_W]


def test_child_spilling_outside_its_parent_is_reported_as_outside_parent():
    layout = clean_layout()
    layout[Level.GRID][GRID_A1] = cells(0, -0.5, 1, 1)  # half a cell south of the district
    generation = store(904, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["outside_parent"]
    outside = only(report, "outside_parent")
    assert outside.level == "grid"
    assert outside.codes == [GRID_A1, COMMUNITY_A]
    assert outside.area_m2 == pytest.approx(CELL_AREA_M2 / 2, rel=0.02)
    assert inside(outside.location, cells(0, -0.5, 1, 0))


def test_empty_geometry_is_refused_by_regions_add_and_stores_nothing():
    generation = store(905, clean_layout() | {Level.GRID: {}})
    regions = [
        RegionInput(code=code, name=code, geom=geom)
        for code, geom in clean_layout()[Level.GRID].items()
    ]
    regions[3].geom = shapely.Polygon()

    with pytest.raises(GeographyError, match=r"feature 4 \(\d{15} .*\): the geometry is empty"):
        regions_add(generation=generation, level=Level.GRID, regions=regions)

    assert not Region.objects.filter(generation=generation, level=Level.GRID).exists()


def test_empty_geometry_row_is_reported_as_empty(is_postgis):
    """SpatiaLite cannot hold an empty geometry; PostGIS can, and validation must catch it."""
    if not is_postgis:
        pytest.skip("SpatiaLite stores no empty geometries")
    generation = store(905)
    Region.objects.filter(generation=generation, code=GRID_A1).update(
        geom=GEOSGeometry("MULTIPOLYGON EMPTY", srid=4326)
    )

    report = generation_validate(generation=generation)

    empty = only(report, "empty")
    assert empty.codes == [GRID_A1] and empty.location is None
    assert only(report, "gap").codes == [COMMUNITY_A]  # its cell is left uncovered
    assert checks(report) == ["empty", "gap"]


def test_empty_geometry_is_reported_as_empty_by_validate_items():
    """The overlay checks skip an empty region, and report its parent's uncovered part."""
    layout = clean_layout()
    items = []
    ids = {}
    for level in LEVEL_ORDER:
        for code, geom in layout[level].items():
            ids[code] = len(ids) + 1
            parent = code[: CODE_LENGTH[LEVEL_ORDER[LEVEL_ORDER.index(level) - 1]]]
            empty = code == GRID_A1
            items.append(
                _Item(
                    pk=ids[code],
                    level=level,
                    code=code,
                    name=code,
                    parent_id=ids.get(parent) if level != Level.DISTRICT else None,
                    geom=shapely.MultiPolygon() if empty else shapely.MultiPolygon([geom]),
                    wkb_size=0 if empty else len(shapely.to_wkb(geom)),
                )
            )

    report = validate_items(905, items)

    assert only(report, "empty").codes == [GRID_A1]
    assert only(report, "gap").codes == [COMMUNITY_A]
    assert checks(report) == ["empty", "gap"]


def test_tiny_polygon_part_is_reported_as_degenerate():
    layout = clean_layout()
    # A 1e-6° (≈ 0.1 m) square speck as a second part of the cell, inside the community.
    speck = shapely.box(X0 + 0.5 * D, Y0 + 1.5 * D, X0 + 0.5 * D + 1e-6, Y0 + 1.5 * D + 1e-6)
    layout[Level.GRID][GRID_A1] = shapely.MultiPolygon([cells(0, 0, 1, 1), speck])
    generation = store(906, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["degenerate"]
    degenerate = only(report, "degenerate")
    assert degenerate.codes == [GRID_A1]
    assert 0 < degenerate.area_m2 < 0.1
    assert inside(degenerate.location, speck.buffer(1e-9))


def test_zero_area_polygon_is_reported_as_degenerate():
    layout = clean_layout()
    # A "polygon" whose ring runs along a line: no area at all.
    layout[Level.GRID][GRID_A1] = shapely.Polygon(
        [(X0, Y0), (X0 + D / 2, Y0), (X0 + D, Y0), (X0, Y0)]
    )
    generation = store(906, layout)

    report = generation_validate(generation=generation)

    degenerate = only(report, "degenerate")
    assert degenerate.codes == [GRID_A1]
    assert degenerate.area_m2 == 0.0
    assert "self_intersection" in checks(report)  # GEOS: Self-intersection at a collinear vertex


def test_vertex_cap_reports_oversized_vertices(settings):
    settings.GRIDMAP_MAX_VERTICES_PER_REGION = 50
    layout = clean_layout()
    dense = shapely.segmentize(cells(0, 0, 1, 1), D / 100)  # ≈ 400 vertices, same square
    layout[Level.GRID][GRID_A1] = dense
    generation = store(907, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["oversized_vertices"]
    finding = only(report, "oversized_vertices")
    assert finding.codes == [GRID_A1]
    vertices = int(shapely.get_num_coordinates(dense))
    assert f"{vertices} vertices (cap 50)" in finding.message
    assert inside(finding.location, dense)
    assert Region.objects.get(generation=generation, code=GRID_A1).vertex_count == vertices


def test_byte_cap_reports_oversized_bytes(settings):
    settings.GRIDMAP_MAX_BYTES_PER_REGION = 1000  # a 5-vertex square is ~100 bytes of WKB
    layout = clean_layout()
    layout[Level.GRID][GRID_B1] = shapely.segmentize(cells(1, 0, 2, 1), D / 100)
    generation = store(907, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["oversized_bytes"]
    finding = only(report, "oversized_bytes")
    assert finding.codes == [GRID_B1]
    assert "bytes as WKB (cap 1000)" in finding.message


def test_non_digit_code_is_reported_as_bad_code():
    layout = clean_layout()
    layout[Level.GRID]["44030900100100X"] = layout[Level.GRID].pop(GRID_A2)
    generation = store(908, layout)

    report = generation_validate(generation=generation)

    assert checks(report) == ["bad_code"]
    bad = only(report, "bad_code")
    assert bad.codes == ["44030900100100X"]
    assert "15 digits" in bad.message


def test_code_of_wrong_length_is_reported_as_bad_code():
    layout = clean_layout()
    layout[Level.GRID]["44030900100102"] = layout[Level.GRID].pop(GRID_A2)  # 14 digits

    report = generation_validate(generation=store(908, layout))

    bad = only(report, "bad_code")
    assert bad.codes == ["44030900100102"] and bad.level == "grid"
    assert checks(report) == ["bad_code"]


def test_code_not_extending_its_parents_code_is_reported_as_bad_code():
    layout = clean_layout()
    wrong = "440309002001009"  # a code of another community, under COMMUNITY_A
    layout[Level.GRID][wrong] = layout[Level.GRID].pop(GRID_A2)

    report = generation_validate(generation=store(908, layout, parents={wrong: COMMUNITY_A}))

    bad = only(report, "bad_code")
    assert bad.codes == [wrong]
    assert f"does not start with its parent's code {COMMUNITY_A}" in bad.message
    assert checks(report) == ["bad_code"]


def test_two_districts_are_reported_as_district_count():
    layout = clean_layout()
    layout[Level.DISTRICT]["440310"] = cells(10, 0, 11, 1)

    report = generation_validate(generation=store(909, layout))

    finding = only(report, "district_count")
    assert sorted(finding.codes) == [DISTRICT, "440310"]
    assert "found 2" in finding.message


def test_region_without_parent_is_reported_as_missing_parent():
    generation = store(909)
    Region.objects.filter(generation=generation, code=GRID_A1).update(parent=None)

    report = generation_validate(generation=generation)

    finding = only(report, "missing_parent")
    assert finding.codes == [GRID_A1]
    assert "needs a parent at level community" in finding.message


def test_report_text_names_check_codes_location_and_area():
    layout = clean_layout()
    del layout[Level.GRID][GRID_A2]

    text = generation_validate(generation=store(902, layout)).as_text()

    assert "1 error(s)" in text
    assert "[error] 缝隙 gap" in text and COMMUNITY_A in text
    assert " at 114.000" in text and " m²" in text


# --- gridmap_validate command --------------------------------------------------------------------


def test_validate_command_prints_report_and_fails_on_errors():
    layout = clean_layout()
    layout[Level.GRID][GRID_A1] = cells(0, 0, 1, 1.5)
    store(910, layout)
    out = StringIO()

    with pytest.raises(CommandError, match="generation 910 failed validation"):
        call_command("gridmap_validate", "910", stdout=out)

    assert "重叠 overlap" in out.getvalue()
    assert GRID_A1 in out.getvalue() and GRID_A2 in out.getvalue()
    stored = Generation.objects.get(number=910).validation_report
    assert [e["check"] for e in stored["errors"]] == ["overlap"]


def test_validate_command_json_output_is_the_report():
    layout = clean_layout()
    del layout[Level.GRID][GRID_A2]
    store(910, layout)
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("gridmap_validate", "910", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["ok"] is False
    assert [(e["check"], e["codes"]) for e in report["errors"]] == [("gap", [COMMUNITY_A])]


def test_validate_command_passes_a_clean_generation():
    store(910)
    out = StringIO()

    call_command("gridmap_validate", "910", stdout=out)

    assert "OK: no errors" in out.getvalue()


def test_validate_command_unknown_generation_is_an_error():
    with pytest.raises(CommandError, match="no generation 999"):
        call_command("gridmap_validate", "999", stdout=StringIO())


# --- activation --------------------------------------------------------------------------------


def active_numbers() -> list[int]:
    return list(Generation.objects.active().values_list("number", flat=True))


def test_activating_a_failing_draft_raises_generation_invalid_and_stores_the_report():
    layout = clean_layout()
    del layout[Level.GRID][GRID_A2]
    generation = store(920, layout)
    before = active_numbers()

    with pytest.raises(GenerationInvalid) as raised:
        generation_activate(generation=generation)

    assert checks(raised.value.report) == ["gap"]
    assert "920 has 1 validation error(s)" in str(raised.value)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.DRAFT and generation.activated_at is None
    assert generation.validation_report["ok"] is False
    assert generation.validation_report["errors"][0]["check"] == "gap"
    assert generation.validated_at is not None
    assert active_numbers() == before == [1]


def test_activate_command_refuses_a_failing_draft_and_prints_the_report():
    layout = clean_layout()
    layout[Level.GRID][GRID_A1] = cells(0, -0.5, 1, 1)
    store(921, layout)
    err = StringIO()

    with pytest.raises(CommandError, match="cannot be activated"):
        call_command("gridmap_activate", "921", stdout=StringIO(), stderr=err)

    assert "越界 child outside its parent" in err.getvalue()
    assert GRID_A1 in err.getvalue()
    assert Generation.objects.get(number=921).status == GenerationStatus.DRAFT
    assert active_numbers() == [1]


def test_clean_draft_activates_and_retires_the_previous_generation():
    previous = Generation.objects.get(number=1)
    assert previous.status == GenerationStatus.ACTIVE
    generation = store(922)

    activated = generation_activate(generation=generation)

    assert activated.status == GenerationStatus.ACTIVE
    assert activated.activated_at is not None
    assert activated.validation_report["ok"] is True
    previous.refresh_from_db()
    assert previous.status == GenerationStatus.RETIRED and previous.retired_at is not None
    assert active_numbers() == [922]
    assert Region.objects.active().count() == 15


def test_activate_command_activates_a_clean_draft():
    store(923)
    out = StringIO()

    call_command("gridmap_activate", "923", stdout=out)

    assert "Generation 923 is now active" in out.getvalue()
    assert active_numbers() == [923]
    assert Generation.objects.get(number=1).status == GenerationStatus.RETIRED


def test_activating_a_generation_that_is_not_a_draft_is_refused():
    with pytest.raises(GeographyError, match="only a draft can be activated"):
        generation_activate(generation=Generation.objects.get(number=1))
    with pytest.raises(CommandError, match="only a draft can be activated"):
        call_command("gridmap_activate", "1", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="no generation 998"):
        call_command("gridmap_activate", "998", stdout=StringIO(), stderr=StringIO())


# --- the demo partition ------------------------------------------------------------------------


def test_demo_partition_is_active_and_validates_clean():
    demo = Generation.objects.get(number=1)
    assert demo.status == GenerationStatus.ACTIVE and demo.synthetic

    report = validate_generation(demo)

    assert report.ok, report.as_text(limit=20)
    assert report.counts["district"] == 1
    assert report.counts["street"] == 6
    assert report.counts["community"] == 50
    assert 1500 <= report.counts["grid"] <= 3000


def test_demo_codes_have_the_level_length_and_extend_their_parents_code():
    rows = Region.objects.filter(generation__number=1).values_list(
        "level", "code", "parent__code", "parent__level"
    )
    grids = 0
    for level, code, parent_code, parent_level in rows:
        assert code.isdigit() and len(code) == CODE_LENGTH[level], code
        if level == Level.DISTRICT:
            assert code == DISTRICT and parent_code is None
            continue
        assert parent_level == LEVEL_ORDER[LEVEL_ORDER.index(level) - 1]
        assert code.startswith(parent_code), (code, parent_code)
        grids += level == Level.GRID
    assert 1500 <= grids <= 3000
    assert (
        not Region.objects.filter(generation__number=1, level=Level.GRID)
        .exclude(code__regex=r"^440309\d{9}$")
        .exists()
    )
