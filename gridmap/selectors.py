"""Reads of the geography: the active generation, regions, and the database reference locator."""

from __future__ import annotations

from typing import Any

import shapely
from django.conf import settings
from django.contrib.gis.db.models.functions import AsWKB
from django.contrib.gis.geos import Point

from gridmap.crs import utm_srid_for
from gridmap.locator import GridIndex, RegionPath, RegionRef
from gridmap.models import Generation, GenerationStatus, Level, Region


def active_generation() -> Generation | None:
    return Generation.objects.active().first()


def active_generation_key() -> tuple[int, Any] | None:
    """(id, activated_at) of the active generation: what a locator compares to notice a switch."""
    row = (
        Generation.objects.filter(status=GenerationStatus.ACTIVE)
        .values_list("id", "activated_at")
        .first()
    )
    return (row[0], row[1]) if row else None


def generation_by_number(number: int | None) -> Generation | None:
    if number is None:
        return active_generation()
    return Generation.objects.filter(number=number).first()


def build_grid_index(*, generation_id: int, using: str = "default") -> GridIndex:
    generation = Generation.objects.using(using).get(pk=generation_id)
    refs: dict[int, RegionRef] = {}
    for pk, level, code, name in (
        Region.objects.using(using)
        .filter(generation_id=generation_id)
        .exclude(level=Level.GRID)
        .values_list("id", "level", "code", "name")
    ):
        refs[pk] = RegionRef(pk, level, code, name)
    paths: list[RegionPath] = []
    polygons: list[Any] = []
    rows = (
        Region.objects.using(using)
        .filter(generation_id=generation_id, level=Level.GRID)
        .annotate(wkb=AsWKB("geom"))
        .values_list("id", "code", "name", "community_id", "street_id", "district_id", "wkb")
        .iterator(chunk_size=5000)
    )
    for pk, code, name, community_id, street_id, district_id, wkb in rows:
        paths.append(
            RegionPath(
                district=refs[district_id],
                street=refs[street_id],
                community=refs[community_id],
                grid=RegionRef(pk, Level.GRID, code, name),
            )
        )
        polygons.append(shapely.from_wkb(bytes(wkb)))
    district = (
        Region.objects.using(using)
        .filter(generation_id=generation_id, level=Level.DISTRICT)
        .annotate(wkb=AsWKB("geom"))
        .values_list("wkb", flat=True)
        .first()
    )
    if district is None:
        outline = shapely.union_all(polygons) if polygons else shapely.Polygon()
    else:
        outline = shapely.from_wkb(bytes(district))
    centroid = shapely.centroid(outline) if not outline.is_empty else shapely.Point(114, 22.7)
    return GridIndex(
        generation=generation.number,
        generation_id=generation.pk,
        paths=paths,
        polygons=polygons,
        district_outline=outline,
        metric_srid=utm_srid_for(centroid.x, centroid.y),
        buffer_m=settings.GRIDMAP_OUTSIDE_BUFFER_M,
    )


def locate_in_database(
    *, lon: float, lat: float, generation_id: int, using: str = "default"
) -> tuple[str | None, int]:
    """The reference: the grid cells whose polygon `covers` the WGS-84 point, in the database.

    This is MapIt's approach (a spatial-index `covers` query per point). Returns the code chosen
    by the border rule (lowest code) and how many cells cover the point.
    """
    codes = list(
        Region.objects.using(using)
        .filter(
            generation_id=generation_id,
            level=Level.GRID,
            geom__covers=Point(lon, lat, srid=4326),
        )
        .order_by("code")
        .values_list("code", flat=True)
    )
    return (codes[0] if codes else None), len(codes)


def regions_for_listing(
    *, generation: Generation, level: str | None, parent_code: str | None
) -> Any:
    qs = Region.objects.filter(generation=generation)
    if level:
        qs = qs.filter(level=level)
    if parent_code:
        qs = qs.filter(parent__code=parent_code)
    return qs.select_related("parent").order_by("code")


def region_by_code(*, generation: Generation, code: str) -> Region | None:
    return (
        Region.objects.filter(generation=generation, code=code)
        .select_related("parent", "district", "street", "community")
        .first()
    )
