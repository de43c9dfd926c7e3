"""The demo geography of Longhua: the real district outline, a *synthetic* partition inside it.

No public source has Longhua's street (街道), community (社区) or grid (网格) boundaries, so the
demo draws them, deterministically, from what is public:

* the district outline (龙华区 440309), DataV's boundary converted from GCJ-02 to WGS-84
  (gridmap/data/longhua_440309_wgs84_derived.geojson);
* the six streets as Voronoi cells of one approximate centre per street
  (gridmap/data/longhua_street_seeds.csv), clipped to the outline;
* each street's communities — those named by two or more of the three source lists in
  gridmap/data/longhua_communities.csv (50 of them) — as the cells of a k-means (Lloyd)
  partition of the street;
* each community's grid cells, the same way, one cell per ~90,000 m² (≈ 300 m across), about
  2,000 in all.

Computation happens in metres (UTM 50N), the cells are brought back to WGS-84 and clipped to
their parent there, so every level partitions its parent exactly up to floating-point slivers.
Codes follow the national layout: street codes are the NBS 2023 统计用区划代码 street numbers
(001 龙华 … 006 福城, see SOURCES.md for the conflicting orders elsewhere); community and grid
numbers are assigned north to south, west to east. These lines are NOT official: replace them
with the district GIS office's boundaries through `manage.py gridmap_import`.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from gridmap.crs import MetricProjector
from gridmap.services import RegionInput

DATA = Path(__file__).resolve().parent / "data"
DISTRICT_CODE = "440309"
DISTRICT_NAME = "龙华区"
METRIC_SRID = 32650  # WGS 84 / UTM zone 50N, which holds Shenzhen
GRID_CELL_AREA_M2 = 90_000.0
MIN_PART_AREA_M2 = 1.0
# Overlays snap to a 1e-9° (≈0.1 mm) grid: fixed-precision overlay is robust, floating overlay
# can silently fall back to snapping and leave metre-wide gaps/overlaps along long edges.
PRECISION_DEG = 1e-9
DEMO_SOURCE = (
    "演示用合成划分 synthetic demo partition: real Longhua outline (DataV, GCJ-02→WGS-84); "
    "street, community and grid lines drawn by gridmap/demo.py — not official boundaries"
)


@dataclass
class DemoPartition:
    district: list[RegionInput]
    streets: list[RegionInput]
    communities: list[RegionInput]
    grids: list[RegionInput]


class _Projector(MetricProjector):
    def __init__(self) -> None:
        super().__init__(METRIC_SRID)


def _polygons_only(geom: Any, projector: _Projector) -> Any:
    """Keep the polygon parts of an overlay result, dropping sub-square-metre slivers."""
    parts = []
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon":
            candidates = [part]
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            candidates = [p for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
        else:
            candidates = []
        for polygon in candidates:
            if projector.area_m2(polygon) >= MIN_PART_AREA_M2:
                parts.append(polygon)
    return shapely.MultiPolygon(parts)


def _lattice(polygon_m: Any, target_points: int) -> np.ndarray:
    """Regular lattice points inside a metric polygon, about `target_points` of them."""
    area = shapely.area(polygon_m)
    spacing = max(np.sqrt(area / max(target_points, 1)), 5.0)
    minx, miny, maxx, maxy = shapely.bounds(polygon_m)
    xs = np.arange(minx + spacing / 2, maxx, spacing)
    ys = np.arange(miny + spacing / 2, maxy, spacing)
    mesh_x, mesh_y = np.meshgrid(xs, ys)
    gx, gy = mesh_x.ravel(), mesh_y.ravel()
    shapely.prepare(polygon_m)
    inside = shapely.contains_xy(polygon_m, gx, gy)
    points = np.column_stack([gx[inside], gy[inside]])
    if len(points) == 0:
        centre = shapely.point_on_surface(polygon_m)
        points = np.array([[centre.x, centre.y]])
    return points


def _kmeans(points: np.ndarray, k: int, iterations: int = 40) -> np.ndarray:
    """Deterministic Lloyd k-means: farthest-point initialisation from the north-west point."""
    k = min(k, len(points))
    first = int(np.argmin(points[:, 0] - points[:, 1]))
    centres = [points[first]]
    nearest = np.linalg.norm(points - points[first], axis=1)
    for _ in range(1, k):
        index = int(np.argmax(nearest))
        centres.append(points[index])
        nearest = np.minimum(nearest, np.linalg.norm(points - points[index], axis=1))
    c = np.array(centres, dtype=float)
    for _ in range(iterations):
        distances = ((points[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        labels = distances.argmin(axis=1)
        moved = c.copy()
        for j in range(k):
            members = points[labels == j]
            if len(members):
                moved[j] = members.mean(axis=0)
        if np.allclose(moved, c):
            break
        c = moved
    return c


def _voronoi_split(
    parent_wgs: Any, seeds_m: np.ndarray, projector: _Projector
) -> list[tuple[np.ndarray, Any]]:
    """Split a WGS-84 parent into the Voronoi cells of metric seeds, clipped to the parent."""
    if len(seeds_m) == 1:
        return [(seeds_m[0], parent_wgs)]
    parent_m = projector.to_metric(parent_wgs)
    minx, miny, maxx, maxy = shapely.bounds(parent_m)
    pad = max(maxx - minx, maxy - miny)
    envelope = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.MultiPoint(seeds_m.tolist()), extend_to=envelope)
    )
    out: list[tuple[np.ndarray, Any]] = []
    for seed in seeds_m:
        point = shapely.Point(seed)
        cell = next(c for c in cells if shapely.covers(c, point))
        clipped = _polygons_only(
            shapely.intersection(projector.to_wgs84(cell), parent_wgs, grid_size=PRECISION_DEG),
            projector,
        )
        out.append((seed, clipped))
    return out


def _north_to_south(items: list[tuple[np.ndarray, Any]]) -> list[tuple[np.ndarray, Any]]:
    # Rows of ~1 km, north first, then west to east within a row.
    return sorted(items, key=lambda it: (-round(float(it[0][1]) / 1000.0), float(it[0][0])))


def load_district() -> Any:
    data = json.loads((DATA / "longhua_440309_wgs84_derived.geojson").read_text("utf-8"))
    geom = shapely.set_precision(
        shapely.geometry.shape(data["features"][0]["geometry"]), PRECISION_DEG
    )
    return shapely.MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom


def load_streets() -> list[dict[str, Any]]:
    with (DATA / "longhua_street_seeds.csv").open(encoding="utf-8") as fh:
        seeds = {
            row["street"]: (float(row["lon_wgs84"]), float(row["lat_wgs84"]))
            for row in csv.DictReader(fh)
        }
    communities: dict[str, list[str]] = {}
    codes: dict[str, str] = {}
    with (DATA / "longhua_communities.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            codes[row["street"]] = row["street_code_nbs2023_areacity"]
            if int(row["n_sources"]) >= 2:
                communities.setdefault(row["street"], []).append(row["community"])
    return sorted(
        (
            {
                "name": name,
                "code": codes[name],
                "seed": seeds[name],
                "communities": communities[name],
            }
            for name in seeds
        ),
        key=lambda s: s["code"],
    )


@functools.cache
def build_demo_partition() -> DemoPartition:
    """Build the partition (deterministic; cached per process — the inputs are files)."""
    projector = _Projector()
    district = load_district()
    streets_meta = load_streets()
    result = DemoPartition(
        district=[
            RegionInput(
                DISTRICT_CODE,
                DISTRICT_NAME,
                district,
                attributes={"source": "DataV 440309, GCJ-02→WGS-84"},
            )
        ],
        streets=[],
        communities=[],
        grids=[],
    )
    seeds_m = np.array([projector.point(*meta["seed"]) for meta in streets_meta], dtype=float)
    street_cells = _voronoi_split(district, seeds_m, projector)
    for meta, (_, street_geom) in zip(streets_meta, street_cells, strict=True):
        street_code = meta["code"]
        result.streets.append(
            RegionInput(
                street_code,
                meta["name"],
                street_geom,
                attributes={"nbs2023_code": street_code, "synthetic": True},
            )
        )
        street_m = projector.to_metric(street_geom)
        names = meta["communities"]
        centres = _kmeans(_lattice(street_m, 150 * len(names)), len(names))
        community_cells = _north_to_south(_voronoi_split(street_geom, centres, projector))
        for c_index, ((_, community_geom), name) in enumerate(
            zip(community_cells, names, strict=True), start=1
        ):
            community_code = f"{street_code}{c_index:03d}"
            result.communities.append(
                RegionInput(community_code, name, community_geom, attributes={"synthetic": True})
            )
            area = projector.area_m2(community_geom)
            cells = max(1, round(area / GRID_CELL_AREA_M2))
            grid_centres = _kmeans(_lattice(projector.to_metric(community_geom), 30 * cells), cells)
            grid_cells = _north_to_south(_voronoi_split(community_geom, grid_centres, projector))
            for g_index, (_, grid_geom) in enumerate(grid_cells, start=1):
                result.grids.append(
                    RegionInput(
                        f"{community_code}{g_index:03d}",
                        f"{name}第{g_index:02d}网格",
                        grid_geom,
                        attributes={"synthetic": True},
                    )
                )
    return result
