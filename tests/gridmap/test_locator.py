"""The in-memory locator against the database reference, the border rule, CRS input, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from django.utils import translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap import crs
from gridmap.crs import MetricProjector
from gridmap.locator import (
    InvalidCoordinates,
    OutsideJurisdiction,
    Resolution,
    locate,
    locator,
)
from gridmap.models import Level, Region
from gridmap.selectors import active_generation, locate_in_database

pytestmark = pytest.mark.django_db

# Longhua's bounding box (WGS-84), a little larger than the district.
BBOX = (113.96, 22.57, 114.12, 22.78)


def _grid(code: str) -> Region:
    return Region.objects.get(generation__status="active", code=code)


def _inside_point(region: Region) -> tuple[float, float]:
    point = shapely.point_on_surface(shapely.from_wkb(bytes(region.geom.wkb)))
    return point.x, point.y


def test_point_inside_a_grid_cell_resolves_to_its_full_path():
    grid = _grid("440309001001001")
    location = locate(*_inside_point(grid))
    assert location.path.grid.code == "440309001001001"
    assert location.path.community.code == "440309001001"
    assert location.path.street.code == "440309001"
    assert location.path.street.name == "龙华街道"
    assert location.path.district.code == "440309"
    assert location.generation == active_generation().number
    assert location.resolution is Resolution.INSIDE
    assert location.on_border is False


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.floats(min_value=BBOX[0], max_value=BBOX[2]),
    st.floats(min_value=BBOX[1], max_value=BBOX[3]),
)
def test_locator_agrees_with_database_covers_on_random_points(lon, lat):
    generation = active_generation()
    expected, hits = locate_in_database(lon=lon, lat=lat, generation_id=generation.pk)
    try:
        location = locator.index().locate_wgs84(lon, lat)
    except OutsideJurisdiction:
        assert expected is None
        return
    if expected is None:
        # Covered by no cell: only the locality fallback may answer, flagged as such.
        assert location.resolution is Resolution.NEAREST
    else:
        assert location.path.grid.code == expected
        assert location.on_border == (hits > 1)


def _shared_vertices(limit: int) -> list[tuple[float, float]]:
    """Vertices that belong to two or more grid cells: points exactly on a shared border."""
    counts: dict[tuple[float, float], int] = {}
    for region in Region.objects.filter(
        generation__status="active", level=Level.GRID, code__startswith="44030900100"
    ):
        geom = shapely.from_wkb(bytes(region.geom.wkb))
        for x, y in {tuple(c) for c in shapely.get_coordinates(geom).tolist()}:
            counts[(x, y)] = counts.get((x, y), 0) + 1
    shared = sorted(p for p, n in counts.items() if n >= 2)
    return shared[:limit]


def test_points_on_shared_borders_follow_the_lowest_code_rule_like_the_database():
    generation = active_generation()
    points = _shared_vertices(150)
    assert len(points) > 50
    for lon, lat in points:
        expected, hits = locate_in_database(lon=lon, lat=lat, generation_id=generation.pk)
        location = locate(lon, lat)
        assert hits >= 2
        assert location.on_border is True
        assert location.resolution is Resolution.BORDER
        assert location.path.grid.code == expected  # ORDER BY code in the reference


def test_points_within_a_metre_of_a_border_agree_with_the_database():
    generation = active_generation()
    projector = MetricProjector.around(114.03, 22.69)
    rng = np.random.default_rng(7)
    points = _shared_vertices(80)
    checked = 0
    for lon, lat in points:
        x, y = projector.point(lon, lat)
        angle = rng.uniform(0, 2 * math.pi)
        distance = rng.uniform(0.05, 1.0)  # metres
        moved = projector.to_wgs84(
            shapely.Point(x + distance * math.cos(angle), y + distance * math.sin(angle))
        )
        expected, _ = locate_in_database(lon=moved.x, lat=moved.y, generation_id=generation.pk)
        location = locate(moved.x, moved.y)
        assert location.path.grid.code == expected
        checked += 1
    assert checked == len(points)


def test_gcj02_and_bd09_inputs_are_converted_to_wgs84_at_the_edge():
    grid = _grid("440309003002003")
    lon, lat = _inside_point(grid)
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    blon, blat = crs.wgs84_to_bd09(lon, lat)
    for x, y, system in ((glon, glat, "gcj02"), (blon, blat, "bd09")):
        location = locate(x, y, system)
        assert location.path.grid.code == "440309003002003"
        assert location.lon == pytest.approx(lon, abs=1e-6)
        assert location.lat == pytest.approx(lat, abs=1e-6)


def test_gcj02_point_read_as_wgs84_lands_about_550_metres_away():
    """Why the CRS matters: the same numbers mean different places."""
    lon, lat = _inside_point(_grid("440309001005002"))
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    projector = MetricProjector.around(lon, lat)
    a, b = projector.point(lon, lat), projector.point(glon, glat)
    assert 450 < math.dist(a, b) < 650


@pytest.mark.parametrize(
    ("lon", "lat", "field", "words"),
    [
        ("nan", "22.7", "lon", "必须是有限的数字"),
        ("114.0", "inf", "lat", "必须是有限的数字"),
        ("-inf", "22.7", "lon", "必须是有限的数字"),
        ("abc", "22.7", "lon", "“abc”不是数字"),
        (None, "22.7", "lon", "不能为空"),
        ("114.0", "", "lat", "不能为空"),
        (True, "22.7", "lon", "必须是数字"),
        ("181", "22.7", "lon", "181.0 超出 −180…180"),
        ("114.0", "-91", "lat", "-91.0 超出 −90…90"),
        ("22.6696", "114.0305", "lat", "填反了（应为 lon=114.0305，lat=22.6696？）"),
    ],
)
def test_bad_coordinates_name_the_field_and_the_reason(lon, lat, field, words):
    with pytest.raises(InvalidCoordinates) as caught:
        locate(lon, lat)
    assert caught.value.field == field
    assert words in caught.value.reason


def test_unknown_crs_is_refused_naming_crs():
    with pytest.raises(InvalidCoordinates) as caught:
        locate(114.03, 22.67, "epsg:3857")
    assert caught.value.field == "crs"
    assert caught.value.reason == "“epsg:3857”不在可选范围内（wgs84, gcj02, bd09）。"


@pytest.mark.parametrize(
    ("lon", "lat", "crs_name", "reason"),
    [
        ("abc", "22.7", "wgs84", "“abc” is not a number."),
        ("114.0", None, "wgs84", "This field is required."),
        ("nan", "22.7", "wgs84", "Must be a finite number (got NaN or infinity)."),
        ("114.0", "-91", "wgs84", "-91.0 is outside −90…90."),
        ("181", "22.7", "wgs84", "181.0 is outside −180…180."),
        (
            "22.6696",
            "114.0305",
            "wgs84",
            "114.0305 is outside −90…90; lon and lat look swapped (lon=114.0305, lat=22.6696?).",
        ),
        ("114.03", "22.67", "epsg:3857", "“epsg:3857” is not one of wgs84, gcj02, bd09."),
    ],
)
def test_the_reasons_are_translated_when_raised(lon, lat, crs_name, reason):
    with translation.override("en"), pytest.raises(InvalidCoordinates) as caught:
        locate(lon, lat, crs_name)
    assert caught.value.reason == reason


def test_point_just_outside_the_district_goes_to_the_nearest_grid_flagged():
    district = shapely.from_wkb(
        bytes(Region.objects.get(generation__status="active", level="district").geom.wkb)
    )
    # The easternmost vertex of the outline, moved 60 m further east.
    coords = shapely.get_coordinates(district)
    lon, lat = coords[np.argmax(coords[:, 0])]
    projector = MetricProjector.around(lon, lat)
    x, y = projector.point(lon, lat)
    outside = projector.to_wgs84(shapely.Point(x + 60.0, y))
    assert not shapely.covers(district, outside)
    location = locate(outside.x, outside.y)
    assert location.resolution is Resolution.NEAREST
    assert 55 < location.distance_m < 80
    assert location.path.district.code == "440309"


def test_far_point_is_outside_the_jurisdiction_with_its_distance():
    with pytest.raises(OutsideJurisdiction) as caught:
        locate(114.0579, 22.5431)  # Futian, south of Longhua
    assert 2_000 < caught.value.distance_m < 10_000


def test_activation_switches_this_process_locator_on_commit(django_capture_on_commit_callbacks):
    from django.core.management import call_command

    before = locate(114.0305, 22.6696)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("gridmap_demo", force=True, verbosity=0)
    after = locate(114.0305, 22.6696)
    assert after.generation == before.generation + 1
    assert after.path.grid.code == before.path.grid.code  # same lines, new generation
