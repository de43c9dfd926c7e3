"""Importing boundary files: formats, coordinate systems, and broken inputs that store nothing.

Files are written at test time into tmp_path — GeoJSON as text, Shapefile and GeoPackage converted
from it with GDAL's ogr2ogr — and imported through `manage.py gridmap_import`. The synthetic
hierarchy sits near Longhua (lon 114.0, lat 22.7) in cells of 1e-3° (≈ 100 m): one district of
4×2 cells, two streets, four communities and eight grid cells. Generation numbers 900+ keep clear
of the demo generation 1 the session loads.
"""

from __future__ import annotations

import json
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from django.contrib.gis.gdal import DataSource
from django.core.management import call_command
from django.core.management.base import CommandError

from gridmap import crs as crs_module
from gridmap.crs import MetricProjector
from gridmap.models import LEVEL_ORDER, Generation, GenerationStatus, Level, Region
from gridmap.validation import validate_generation
from tests.gridmap.layouts import DISTRICT, X0, Y0, D, cells, clean_layout

pytestmark = pytest.mark.django_db

STREET_W = "440309001"
COMMUNITY_A = "440309001001"
GRID_A1 = "440309001001001"
GRID_A2 = "440309001001002"
GEN = 950  # a draft generation number for these tests

# Names of the ogr2ogr drivers and the file suffix each writes.
FORMATS = {"GeoJSON": ".geojson", "ESRI Shapefile": ".shp", "GPKG": ".gpkg"}


def feature(code: Any, name: str, geometry: Any, **properties: Any) -> dict[str, Any]:
    if geometry is not None and not isinstance(geometry, dict):
        geometry = shapely.geometry.mapping(geometry)
    return {
        "type": "Feature",
        "properties": {"name": name, "code": code, **properties},
        "geometry": geometry,
    }


def write_geojson(path: Path, features: list[dict[str, Any]], epsg: int | None = None) -> Path:
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if epsg is not None:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"},
        }
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return path


def level_file(tmp_path: Path, level: str, layout: dict[str, dict[str, Any]] | None = None) -> Path:
    layout = clean_layout() if layout is None else layout
    features = [feature(code, f"{level}-{code}", geom) for code, geom in layout[level].items()]
    return write_geojson(tmp_path / f"{level}.geojson", features)


def ogr2ogr(destination: Path, source: Path, *options: str) -> Path:
    driver = next(d for d, suffix in FORMATS.items() if destination.suffix == suffix)
    subprocess.run(
        ["ogr2ogr", "-f", driver, *options, str(destination), str(source)],
        check=True,
        capture_output=True,
    )
    return destination


def run_import(path: Path, level: str, generation: int = GEN, **options: Any) -> str:
    out = StringIO()
    call_command(
        "gridmap_import",
        str(path),
        level=level,
        generation=generation,
        stdout=out,
        stderr=StringIO(),
        **options,
    )
    return out.getvalue()


def import_levels(tmp_path: Path, levels: list[str], layout: Any = None, generation: int = GEN):
    for level in levels:
        run_import(level_file(tmp_path, level, layout), level, generation)


def first_geometry_in_file(path: Path) -> Any:
    """The first feature's geometry with the file's own numbers, read through GDAL."""
    return shapely.from_wkb(bytes(next(iter(DataSource(str(path))[0])).geom.wkb))


def stored(code: str, generation: int = GEN) -> Any:
    region = Region.objects.get(generation__number=generation, code=code)
    return shapely.from_wkb(bytes(region.geom.wkb))


def same_shape(a: Any, b: Any, tolerance: float) -> bool:
    """Same shape up to vertex order/orientation: no point of either is `tolerance`° off."""
    return bool(shapely.hausdorff_distance(a, b) <= tolerance)


def as_multipolygon(geom: Any) -> Any:
    return geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])


@pytest.fixture
def region_count() -> int:
    return Region.objects.count()


def assert_nothing_stored(generation: int, regions_before: int) -> None:
    assert not Generation.objects.filter(number=generation).exists()
    assert Region.objects.count() == regions_before


def refused(path: Path, level: str = Level.DISTRICT, generation: int = GEN, **options: Any) -> str:
    with pytest.raises(CommandError) as raised:
        run_import(path, level, generation, **options)
    return str(raised.value)


# --- formats and coordinate systems ------------------------------------------------------------


def test_clean_geojson_hierarchy_imports_every_level_and_validates_clean(tmp_path):
    out = run_import(level_file(tmp_path, Level.DISTRICT), Level.DISTRICT, label="测试")
    assert f"Imported 1 district region(s) into draft generation {GEN}" in out
    assert "file CRS WGS 84" in out
    import_levels(tmp_path, [Level.STREET, Level.COMMUNITY, Level.GRID])

    generation = Generation.objects.get(number=GEN)
    assert generation.status == GenerationStatus.DRAFT and generation.label == "测试"
    counts = {lv: generation.regions.filter(level=lv).count() for lv in LEVEL_ORDER}
    assert counts == {"district": 1, "street": 2, "community": 4, "grid": 8}
    grid = Region.objects.get(generation=generation, code=GRID_A1)
    assert grid.name == f"grid-{GRID_A1}"
    assert (grid.parent.code, grid.community.code, grid.street.code, grid.district.code) == (
        COMMUNITY_A,
        COMMUNITY_A,
        STREET_W,
        DISTRICT,
    )
    assert grid.vertex_count == 5
    assert grid.area_m2 == pytest.approx(11_390, rel=0.02)
    assert grid.attributes == {"source_fid": 0}
    assert same_shape(stored(GRID_A1), as_multipolygon(cells(0, 0, 1, 1)), 1e-12)
    report = validate_generation(generation)
    assert report.ok, report.as_text()


@pytest.mark.parametrize("driver", list(FORMATS))
def test_each_format_is_read_to_the_same_wgs84_geometry(tmp_path, driver):
    source = level_file(tmp_path, Level.STREET)
    path = ogr2ogr(tmp_path / f"converted{FORMATS[driver]}", source)
    run_import(level_file(tmp_path, Level.DISTRICT), Level.DISTRICT)

    out = run_import(path, Level.STREET)

    assert "Imported 2 street region(s)" in out
    for code, geom in clean_layout()[Level.STREET].items():
        assert same_shape(stored(code), as_multipolygon(geom), 1e-12), driver
        assert Region.objects.get(generation__number=GEN, code=code).name == f"street-{code}"


def test_geopackage_layer_is_chosen_by_name_and_an_unknown_layer_is_refused(tmp_path):
    path = ogr2ogr(tmp_path / "two.gpkg", level_file(tmp_path, Level.STREET), "-nln", "streets")
    ogr2ogr(path, level_file(tmp_path, Level.DISTRICT), "-update", "-nln", "district")

    run_import(path, Level.DISTRICT, layer="district")
    run_import(path, Level.STREET, layer="streets")

    assert Region.objects.filter(generation__number=GEN).count() == 3
    message = refused(path, Level.DISTRICT, generation=951, layer="communities")
    assert "no layer 'communities'" in message
    message = refused(path, Level.DISTRICT, generation=951, layer="7")
    assert "no layer 7" in message
    assert not Generation.objects.filter(number=951).exists()


@pytest.mark.parametrize(("mars", "label"), [("gcj02", "GCJ-02"), ("bd09", "BD-09")])
def test_mars_coordinates_are_converted_to_wgs84_like_gridmap_crs(tmp_path, mars, label):
    wgs = cells(0, 0, 4, 2)
    shifted = shapely.transform(
        wgs, lambda xy: np.column_stack(crs_module.from_wgs84(xy[:, 0], xy[:, 1], mars))
    )
    path = write_geojson(tmp_path / "mars.geojson", [feature(DISTRICT, "龙华区", shifted)])

    out = run_import(path, Level.DISTRICT, crs=mars)

    assert f"converted from {label}" in out
    result = stored(DISTRICT)
    expected = shapely.transform(
        as_multipolygon(shifted),
        lambda xy: np.column_stack(crs_module.to_wgs84(xy[:, 0], xy[:, 1], mars)),
    )
    assert same_shape(result, expected, 1e-12)
    # The round trip lands back on the WGS-84 square (to ~1e-6° for BD-09's closed form) …
    assert same_shape(result, as_multipolygon(wgs), 1e-6)
    # … hundreds of metres from where the raw numbers would put it.
    assert result.centroid.distance(shifted.centroid) > 0.004


@pytest.mark.parametrize("driver", list(FORMATS))
def test_utm_50n_file_is_converted_to_wgs84(tmp_path, driver):
    source = level_file(tmp_path, Level.DISTRICT)
    path = ogr2ogr(tmp_path / f"utm{FORMATS[driver]}", source, "-t_srs", "EPSG:32650")
    assert shapely.bounds(first_geometry_in_file(path))[0] > 1000  # metres in the file

    out = run_import(path, Level.DISTRICT)
    assert "file CRS WGS 84 / UTM zone 50N" in out
    assert same_shape(stored(DISTRICT), as_multipolygon(cells(0, 0, 4, 2)), 1e-8)

    # Saying what the file says is accepted too.
    out = run_import(path, Level.DISTRICT, generation=GEN + 1, crs="EPSG:32650")
    assert "converted from EPSG:32650" in out
    assert same_shape(stored(DISTRICT, GEN + 1), as_multipolygon(cells(0, 0, 4, 2)), 1e-8)


def test_shapefile_in_utm_metres_without_prj_is_converted_with_declared_epsg(tmp_path):
    path = ogr2ogr(
        tmp_path / "utm.shp", level_file(tmp_path, Level.DISTRICT), "-t_srs", "EPSG:32650"
    )
    path.with_suffix(".prj").unlink()

    out = run_import(path, Level.DISTRICT, crs="epsg:32650")

    assert "converted from EPSG:32650" in out
    assert same_shape(stored(DISTRICT), as_multipolygon(cells(0, 0, 4, 2)), 1e-8)


def test_cgcs2000_gauss_kruger_file_is_converted_to_wgs84(tmp_path):
    # EPSG:4547, CGCS2000 / 3-degree Gauss-Kruger CM 114E: what a district GIS office may send.
    path = ogr2ogr(
        tmp_path / "gk.gpkg", level_file(tmp_path, Level.DISTRICT), "-t_srs", "EPSG:4547"
    )

    out = run_import(path, Level.DISTRICT)

    assert "CGCS2000 / 3-degree Gauss-Kruger CM 114E" in out
    assert same_shape(stored(DISTRICT), as_multipolygon(cells(0, 0, 4, 2)), 1e-8)


@pytest.mark.parametrize("crs", [None, "wgs84"])
def test_3d_polygons_are_stored_flat(tmp_path, crs):
    square = cells(0, 0, 4, 2)
    ring = [[x, y, 42.0] for x, y in square.exterior.coords]
    path = write_geojson(
        tmp_path / "z.geojson",
        [feature(DISTRICT, "龙华区", {"type": "Polygon", "coordinates": [ring]})],
    )

    run_import(path, Level.DISTRICT, crs=crs)

    result = stored(DISTRICT)
    assert not shapely.has_z(result)
    assert same_shape(result, as_multipolygon(square), 1e-12)


def test_numeric_codes_are_stored_as_digit_strings(tmp_path):
    path = write_geojson(tmp_path / "n.geojson", [feature(440309, "龙华区", cells(0, 0, 4, 2))])
    run_import(path, Level.DISTRICT)
    streets = [
        feature(int(code), code, geom) for code, geom in clean_layout()[Level.STREET].items()
    ]
    shp = ogr2ogr(tmp_path / "s.shp", write_geojson(tmp_path / "s.geojson", streets))

    run_import(shp, Level.STREET)

    codes = sorted(Region.objects.filter(generation__number=GEN).values_list("code", flat=True))
    assert codes == [DISTRICT, "440309001", "440309002"]


# --- wrong coordinate systems --------------------------------------------------------------------


def test_utm_file_declared_wgs84_is_refused_and_stores_nothing(tmp_path, region_count):
    path = ogr2ogr(
        tmp_path / "utm.gpkg", level_file(tmp_path, Level.DISTRICT), "-t_srs", "EPSG:32650"
    )

    message = refused(path, crs="wgs84")

    assert "--crs wgs84 disagrees with the file" in message
    assert "WGS 84 / UTM zone 50N" in message
    assert_nothing_stored(GEN, region_count)


def test_projected_numbers_in_geojson_without_crs_are_refused_and_store_nothing(
    tmp_path, region_count
):
    # UTM 50N metres written as if they were GeoJSON's default longitude/latitude.
    metric = MetricProjector(32650)
    square = metric.to_metric(cells(0, 0, 4, 2), densify=False)
    path = write_geojson(tmp_path / "metres.geojson", [feature(DISTRICT, "龙华区", square)])

    for crs in (None, "wgs84", "gcj02"):
        message = refused(path, crs=crs)
        assert "not longitude/latitude — wrong CRS?" in message, crs
        assert "feature 1" in message
        assert "--crs EPSG:nnnn" in message
    assert_nothing_stored(GEN, region_count)


def test_swapped_latitude_and_longitude_are_refused(tmp_path, region_count):
    swapped = shapely.transform(cells(0, 0, 4, 2), lambda xy: xy[:, ::-1])
    path = write_geojson(tmp_path / "latlon.geojson", [feature(DISTRICT, "龙华区", swapped)])

    assert "not longitude/latitude" in refused(path)
    assert_nothing_stored(GEN, region_count)


def test_gcj02_declared_for_a_projected_file_is_refused(tmp_path, region_count):
    path = ogr2ogr(
        tmp_path / "utm.shp", level_file(tmp_path, Level.DISTRICT), "-t_srs", "EPSG:32650"
    )

    message = refused(path, crs="gcj02")

    assert "--crs gcj02 says longitude/latitude" in message
    assert "projected system 'WGS 84 / UTM zone 50N'" in message
    assert_nothing_stored(GEN, region_count)


def test_wgs84_file_declared_utm_is_refused(tmp_path, region_count):
    message = refused(level_file(tmp_path, Level.DISTRICT), crs="EPSG:32650")

    assert "--crs EPSG:32650 disagrees with the file, which declares 'WGS 84'" in message
    assert_nothing_stored(GEN, region_count)


def test_shapefile_without_prj_and_without_crs_option_is_refused(tmp_path, region_count):
    path = ogr2ogr(tmp_path / "noprj.shp", level_file(tmp_path, Level.DISTRICT))
    path.with_suffix(".prj").unlink()

    message = refused(path)

    assert "does not say which coordinate system it uses; pass --crs" in message
    assert_nothing_stored(GEN, region_count)


@pytest.mark.parametrize(
    ("crs", "expected"),
    [
        ("mars", "use wgs84, gcj02, bd09 or EPSG:nnnn"),
        ("EPSG:99999", "--crs EPSG:99999: unknown EPSG code"),
        ("EPSG:abc", "use wgs84, gcj02, bd09 or EPSG:nnnn"),
    ],
)
def test_unknown_crs_option_is_refused(tmp_path, region_count, crs, expected):
    assert expected in refused(level_file(tmp_path, Level.DISTRICT), crs=crs)
    assert_nothing_stored(GEN, region_count)


# --- broken and foreign files ------------------------------------------------------------------


def test_truncated_geojson_stores_nothing(tmp_path, region_count):
    whole = level_file(tmp_path, Level.STREET).read_bytes()
    path = tmp_path / "cut.geojson"
    path.write_bytes(whole[: len(whole) // 2])

    message = refused(path, Level.DISTRICT)

    assert "GDAL cannot read this as a geometry file" in message
    assert str(path) in message
    assert_nothing_stored(GEN, region_count)


def test_truncated_shapefile_stores_nothing(tmp_path, region_count):
    path = ogr2ogr(tmp_path / "streets.shp", level_file(tmp_path, Level.STREET))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # header intact, the records cut off

    message = refused(path, Level.DISTRICT)

    assert "truncated" in message
    assert "feature 1" in message
    assert_nothing_stored(GEN, region_count)


def test_shapefile_with_truncated_header_stores_nothing(tmp_path, region_count):
    path = ogr2ogr(tmp_path / "streets.shp", level_file(tmp_path, Level.STREET))
    path.write_bytes(path.read_bytes()[:50])

    assert "GDAL cannot read this as a geometry file" in refused(path)
    assert_nothing_stored(GEN, region_count)


def test_truncated_geopackage_stores_nothing(tmp_path, region_count):
    path = ogr2ogr(tmp_path / "streets.gpkg", level_file(tmp_path, Level.STREET))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    assert "GDAL cannot read this as a geometry file" in refused(path)
    assert_nothing_stored(GEN, region_count)


def test_truncated_street_file_leaves_the_existing_draft_untouched(tmp_path):
    import_levels(tmp_path, [Level.DISTRICT])
    path = ogr2ogr(tmp_path / "streets.shp", level_file(tmp_path, Level.STREET))
    path.write_bytes(path.read_bytes()[:200])

    refused(path, Level.STREET)

    generation = Generation.objects.get(number=GEN)
    assert generation.status == GenerationStatus.DRAFT
    assert list(generation.regions.values_list("code", flat=True)) == [DISTRICT]


def test_text_file_is_refused_as_not_a_geometry_file(tmp_path, region_count):
    path = tmp_path / "notes.txt"
    path.write_text("龙华区 boundaries will follow next week.\n", encoding="utf-8")

    message = refused(path)

    assert "GDAL cannot read this as a geometry file (GeoJSON, Shapefile, GeoPackage" in message
    assert_nothing_stored(GEN, region_count)


@pytest.mark.parametrize("crs", [None, "wgs84"])
def test_csv_without_geometry_is_refused_as_having_no_geometry(tmp_path, region_count, crs):
    path = tmp_path / "streets.csv"
    path.write_text("name,code\n龙华街道,440309001\n民治街道,440309002\n", encoding="utf-8")

    message = refused(path, crs=crs)

    assert "no geometry" in message
    assert "pass --crs" not in message
    assert_nothing_stored(GEN, region_count)


def test_point_features_are_refused_as_not_polygons(tmp_path, region_count):
    path = write_geojson(
        tmp_path / "points.geojson", [feature(DISTRICT, "龙华区", shapely.Point(X0, Y0))]
    )

    assert "feature 1 is a Point, not a polygon" in refused(path)
    assert_nothing_stored(GEN, region_count)


def test_feature_without_geometry_is_refused(tmp_path, region_count):
    features = [feature(c, c, g) for c, g in clean_layout()[Level.STREET].items()]
    features[1]["geometry"] = None
    path = write_geojson(tmp_path / "null.geojson", features)

    assert "feature 2 has no geometry" in refused(path, Level.DISTRICT)
    assert_nothing_stored(GEN, region_count)


def test_empty_geometry_feature_is_refused_and_stores_nothing(tmp_path, region_count):
    csv = tmp_path / "empty.csv"
    csv.write_text(f'name,code,wkt\n龙华区,{DISTRICT},"POLYGON EMPTY"\n', encoding="utf-8")
    path = ogr2ogr(
        tmp_path / "empty.gpkg",
        csv,
        "-oo",
        "GEOM_POSSIBLE_NAMES=wkt",
        "-oo",
        "KEEP_GEOM_COLUMNS=NO",
        "-a_srs",
        "EPSG:4326",
        "-nlt",
        "POLYGON",
    )

    message = refused(path)

    assert f"feature 1 ({DISTRICT} 龙华区): the geometry is empty" in message
    assert_nothing_stored(GEN, region_count)


def test_empty_and_missing_files_are_refused(tmp_path, region_count):
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")

    assert "the file is empty" in refused(empty)
    assert "no such file" in refused(tmp_path / "missing.geojson")
    assert_nothing_stored(GEN, region_count)


def test_file_over_the_import_byte_cap_is_refused(tmp_path, region_count, settings):
    path = level_file(tmp_path, Level.DISTRICT)
    settings.GRIDMAP_MAX_IMPORT_BYTES = 100

    message = refused(path)

    assert f"{path.stat().st_size} bytes is over the import cap of 100 bytes" in message
    assert "GRIDMAP_MAX_IMPORT_BYTES" in message
    assert_nothing_stored(GEN, region_count)


# --- fields and codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("name_field", "NAME"), ("code_field", "ADCODE"), ("parent_field", "PARENT")],
)
def test_missing_field_is_refused_with_the_available_fields(tmp_path, region_count, option, value):
    path = level_file(tmp_path, Level.DISTRICT)

    message = refused(path, **{option: value})

    flag = "--" + option.replace("_", "-")
    assert f"{flag} '{value}' is not a field of layer" in message
    assert "fields are: name, code" in message
    assert_nothing_stored(GEN, region_count)


def test_fields_can_be_named(tmp_path):
    path = write_geojson(
        tmp_path / "named.geojson",
        [
            {
                "type": "Feature",
                "properties": {"NAME": "龙华区", "ADCODE": DISTRICT},
                "geometry": shapely.geometry.mapping(cells(0, 0, 4, 2)),
            }
        ],
    )

    run_import(path, Level.DISTRICT, name_field="NAME", code_field="ADCODE")

    assert Region.objects.get(generation__number=GEN, code=DISTRICT).name == "龙华区"


def test_duplicate_codes_store_nothing_not_even_the_new_draft(tmp_path, region_count):
    import_levels(tmp_path, [Level.DISTRICT], generation=GEN + 1)  # the district is elsewhere
    region_count += 1
    features = [
        feature(STREET_W, "一", cells(0, 0, 2, 2)),
        feature(STREET_W, "二", cells(2, 0, 4, 2)),
    ]
    path = write_geojson(tmp_path / "dup.geojson", features)

    message = refused(path, Level.STREET, generation=GEN)

    assert f"duplicate code {STREET_W} in features 1 and 2" in message
    assert_nothing_stored(GEN, region_count)


def test_duplicate_codes_leave_the_existing_draft_untouched(tmp_path):
    import_levels(tmp_path, [Level.DISTRICT])
    features = [
        feature(STREET_W, "一", cells(0, 0, 2, 2)),
        feature(STREET_W, "二", cells(2, 0, 4, 2)),
    ]

    message = refused(write_geojson(tmp_path / "dup.geojson", features), Level.STREET)

    assert "duplicate code" in message
    assert list(Region.objects.filter(generation__number=GEN).values_list("code", flat=True)) == [
        DISTRICT
    ]


def test_parent_not_found_stores_nothing(tmp_path, region_count):
    message = refused(level_file(tmp_path, Level.STREET), Level.STREET)

    assert f"parent {DISTRICT} not found at level district in generation {GEN}" in message
    assert "import the district level first" in message
    assert_nothing_stored(GEN, region_count)


def test_parent_field_naming_an_unknown_parent_is_refused(tmp_path):
    import_levels(tmp_path, [Level.DISTRICT, Level.STREET])
    features = [feature(f"{STREET_W}001", "社区", cells(0, 0, 2, 2), parent="440309009")]
    path = write_geojson(tmp_path / "communities.geojson", features)

    message = refused(path, Level.COMMUNITY, parent_field="parent")

    assert "parent 440309009 not found at level street" in message
    assert not Region.objects.filter(generation__number=GEN, level=Level.COMMUNITY).exists()


def test_parent_field_chooses_the_parent_instead_of_the_code_prefix(tmp_path):
    import_levels(tmp_path, [Level.DISTRICT, Level.STREET])
    features = [feature("440309002001", "社区", cells(0, 0, 2, 2), parent=STREET_W)]
    path = write_geojson(tmp_path / "communities.geojson", features)

    run_import(path, Level.COMMUNITY, parent_field="parent")

    community = Region.objects.get(generation__number=GEN, code="440309002001")
    assert community.parent.code == STREET_W and community.street.code == STREET_W
    # … and validation notices that the code does not extend the parent's.
    report = validate_generation(Generation.objects.get(number=GEN))
    assert any(f.check == "bad_code" and f.codes == ["440309002001"] for f in report.errors), (
        report.as_text()
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [("", "feature 1 has an empty code"), ("4403090010010011", "longer than 15 characters")],
)
def test_empty_or_overlong_code_is_refused(tmp_path, region_count, code, expected):
    path = write_geojson(tmp_path / "bad.geojson", [feature(code, "龙华区", cells(0, 0, 4, 2))])

    assert expected in refused(path)
    assert_nothing_stored(GEN, region_count)


def test_import_into_the_active_generation_is_refused(tmp_path):
    before = Region.objects.filter(generation__number=1).count()

    message = refused(level_file(tmp_path, Level.DISTRICT), generation=1)

    assert "generation 1 is active; only a draft accepts imports" in message
    assert Region.objects.filter(generation__number=1).count() == before
    assert Generation.objects.get(number=1).status == GenerationStatus.ACTIVE


def test_existing_level_needs_replace_which_also_drops_the_levels_below(tmp_path):
    import_levels(tmp_path, LEVEL_ORDER)
    path = level_file(tmp_path, Level.COMMUNITY)

    assert "already has 4 community region(s); pass --replace" in refused(path, Level.COMMUNITY)
    run_import(path, Level.COMMUNITY, replace=True)

    regions = Region.objects.filter(generation__number=GEN)
    assert regions.filter(level=Level.COMMUNITY).count() == 4
    assert not regions.filter(level=Level.GRID).exists()
    assert regions.filter(level=Level.STREET).count() == 2


# --- broken geometries get in, and validation names them ---------------------------------------


def bow_tie() -> Any:
    x, y = X0, Y0
    return shapely.Polygon([(x, y), (x + D, y + D), (x + D, y), (x, y + D), (x, y)])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("bow_tie", {"self_intersection", "gap"}),
        ("missing_cell", {"gap"}),
        ("overlap", {"overlap"}),
        ("outside", {"outside_parent"}),
        ("bad_code", {"bad_code"}),
    ],
)
def test_broken_grid_file_imports_and_validation_reports_it(tmp_path, change, expected):
    layout = clean_layout()
    grids = layout[Level.GRID]
    if change == "bow_tie":
        grids[GRID_A1] = bow_tie()
    elif change == "missing_cell":
        del grids[GRID_A2]
    elif change == "overlap":
        grids[GRID_A1] = cells(0, 0, 1, 1.5)
    elif change == "outside":
        grids[GRID_A1] = cells(0, -0.5, 1, 1)
    else:
        grids["44030900100100A"] = grids.pop(GRID_A2)
    import_levels(tmp_path, LEVEL_ORDER, layout)
    out = StringIO()

    with pytest.raises(CommandError, match=f"generation {GEN} failed validation"):
        call_command("gridmap_validate", str(GEN), "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert {e["check"] for e in report["errors"]} == expected
    for error in report["errors"]:
        if error["check"] in ("gap", "overlap", "outside_parent"):
            assert error["area_m2"] > 1000 and len(error["location"]) == 2
        if error["check"] == "self_intersection":
            assert error["message"].startswith("Self-intersection")
            assert error["location"] == pytest.approx([X0 + D / 2, Y0 + D / 2])
    assert Generation.objects.get(number=GEN).validation_report == report


def test_region_caps_flag_an_oversized_imported_region(tmp_path, settings):
    settings.GRIDMAP_MAX_VERTICES_PER_REGION = 100
    settings.GRIDMAP_MAX_BYTES_PER_REGION = 2000
    layout = clean_layout()
    layout[Level.GRID][GRID_A1] = shapely.segmentize(cells(0, 0, 1, 1), D / 100)
    import_levels(tmp_path, LEVEL_ORDER, layout)

    report = validate_generation(Generation.objects.get(number=GEN))

    found = sorted((f.check, f.codes[0]) for f in report.errors)
    assert found == [("oversized_bytes", GRID_A1), ("oversized_vertices", GRID_A1)]


def test_activating_a_broken_import_is_refused_and_a_fixed_one_activates(tmp_path):
    layout = clean_layout()
    del layout[Level.GRID][GRID_A2]
    import_levels(tmp_path, LEVEL_ORDER, layout)
    err = StringIO()

    with pytest.raises(CommandError, match="cannot be activated"):
        call_command("gridmap_activate", str(GEN), stdout=StringIO(), stderr=err)
    assert "缝隙 gap" in err.getvalue() and COMMUNITY_A in err.getvalue()
    assert Generation.objects.get(number=1).status == GenerationStatus.ACTIVE

    run_import(level_file(tmp_path, Level.GRID), Level.GRID, replace=True)
    call_command("gridmap_activate", str(GEN), stdout=StringIO())

    assert Generation.objects.get(number=GEN).status == GenerationStatus.ACTIVE
    assert Generation.objects.get(number=1).status == GenerationStatus.RETIRED
