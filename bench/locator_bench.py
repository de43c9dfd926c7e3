"""Benchmark of the in-memory point locator against the database `covers` query and a naive scan.

Run it through scripts/bench.sh (`make bench`), which installs, starts a private PostGIS and sets
the environment. In one run it:

1. migrates two databases — `default` (SpatiaLite, DATABASE_URL) and `postgis` (POSTGIS_URL) —
   and loads into both the demo grid (gridmap.demo, ≈1,960 cells, activated) and a synthetic
   lattice of 100,000 square cells over Longhua's bounding box (a draft generation with a full
   district/street/community/grid hierarchy and 6+3+3+3-digit codes). Both go through
   gridmap.services on SpatiaLite; the rows are then copied to PostGIS with the same ids;
2. draws 100,000 points per grid with a fixed seed: 80,000 uniform inside the district (the same
   points for both grids) and 20,000 within one metre of a border shared by two cells of that
   grid (offsets computed in metres with gridmap.crs.MetricProjector), 200 of them on the border
   itself;
3. times, per grid: GridIndex.locate_wgs84 over all points, one call at a time, each call timed
   with time.perf_counter_ns (three passes, the median one reported); the public
   gridmap.locator.locate() likewise for the active demo grid; one vectorised pass over all
   points for comparison (not a gridmap API); the ORM `covers` query
   (gridmap.selectors.locate_in_database) on PostGIS and on SpatiaLite, and the same query as
   raw SQL on PostGIS, over subsamples; and a naive Python loop over every cell over a smaller
   subsample;
4. checks every point a reference looked at against the locator (border rule: lowest code) and
   prints the table, the targets, the disagreements (each with its point) and how the points
   resolved. bench/README.md explains the output.
"""

from __future__ import annotations

import argparse
import gc
import io
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20_240_611
N_POINTS = 100_000
BORDER_FRACTION = 0.2
PASSES = 3  # timed passes of the locator over all points; the median one is reported
N_EXACT = 200  # of the border points: 100 shared vertices + 100 points on a shared edge
LATTICE_COLS, LATTICE_ROWS = 250, 400  # 100,000 cells
BLOCK_COLS, BLOCK_ROWS = 25, 20  # grid cells per community: 500
STREET_BLOCK_ROWS = 4  # community rows per street: 5 streets of 4 × 10 = 40 communities


# --- set-up -------------------------------------------------------------------------------------


def setup_django() -> None:
    if not os.environ.get("POSTGIS_URL"):
        sys.exit("POSTGIS_URL is not set: run scripts/bench.sh (make bench), which starts PostGIS")
    if not os.environ.get("DATABASE_URL"):
        tmp = tempfile.mkdtemp(prefix="cityops-bench-")
        os.environ["DATABASE_URL"] = f"spatialite:///{tmp}/bench.sqlite3"
    if not os.environ["DATABASE_URL"].startswith("spatialite:"):
        sys.exit("DATABASE_URL must name a SpatiaLite file (the `default` side of the benchmark)")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def migrate_and_check_empty() -> None:
    from django.core.management import call_command

    from gridmap.models import Generation

    for alias in ("default", "postgis"):
        call_command("migrate", database=alias, verbosity=0, interactive=False)
        if Generation.objects.using(alias).exists():
            sys.exit(
                f"database {alias!r} already holds generations; the benchmark needs empty ones"
            )


def build_lattice_inputs() -> dict[str, list[Any]]:
    """100,000 square cells (≈60 m) over the district's bounding box, with the full hierarchy.

    Every level is a rectangle cut from the same coordinate arrays, so the cells partition their
    community, the communities their street and the streets the district exactly.
    """
    import numpy as np
    import shapely

    from gridmap.crs import MetricProjector
    from gridmap.demo import DISTRICT_CODE, load_district
    from gridmap.services import RegionInput

    minx, miny, maxx, maxy = shapely.bounds(load_district()).tolist()
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    projector = MetricProjector.around(cx, cy)
    w0, w1 = projector.point(minx, cy), projector.point(maxx, cy)
    h0, h1 = projector.point(cx, miny), projector.point(cx, maxy)
    width_m, height_m = math.dist(w0, w1), math.dist(h0, h1)
    side_m = max(width_m / LATTICE_COLS, height_m / LATTICE_ROWS)
    dlon = (maxx - minx) / width_m * side_m
    dlat = (maxy - miny) / height_m * side_m
    west = cx - LATTICE_COLS * dlon / 2
    north = cy + LATTICE_ROWS * dlat / 2
    xs = np.round(west + dlon * np.arange(LATTICE_COLS + 1), 9)
    ys = np.round(north - dlat * np.arange(LATTICE_ROWS + 1), 9)  # north to south

    def box(c0: int, r0: int, c1: int, r1: int) -> Any:
        return shapely.box(xs[c0], ys[r1], xs[c1], ys[r0])

    district = [
        RegionInput(DISTRICT_CODE, "龙华区 基准测试格网", box(0, 0, LATTICE_COLS, LATTICE_ROWS))
    ]
    streets, communities, grids = [], [], []
    street_rows = STREET_BLOCK_ROWS * BLOCK_ROWS
    for s in range(LATTICE_ROWS // street_rows):
        street_code = f"{DISTRICT_CODE}{s + 1:03d}"
        r_s = s * street_rows
        streets.append(
            RegionInput(
                street_code, f"基准街道{s + 1}", box(0, r_s, LATTICE_COLS, r_s + street_rows)
            )
        )
        number = 0
        for br in range(STREET_BLOCK_ROWS):
            for bc in range(LATTICE_COLS // BLOCK_COLS):
                number += 1
                community_code = f"{street_code}{number:03d}"
                r0, c0 = r_s + br * BLOCK_ROWS, bc * BLOCK_COLS
                communities.append(
                    RegionInput(
                        community_code,
                        f"基准社区{s + 1}-{number}",
                        box(c0, r0, c0 + BLOCK_COLS, r0 + BLOCK_ROWS),
                    )
                )
                cells = 0
                for r in range(r0, r0 + BLOCK_ROWS):
                    for c in range(c0, c0 + BLOCK_COLS):
                        cells += 1
                        grids.append(
                            RegionInput(
                                f"{community_code}{cells:03d}",
                                f"基准社区{s + 1}-{number}第{cells}网格",
                                box(c, r, c + 1, r + 1),
                            )
                        )
    assert len(grids) == LATTICE_COLS * LATTICE_ROWS
    return {"district": district, "street": streets, "community": communities, "grid": grids}


def load_geography() -> dict[str, int]:
    """Demo grid (activated) and lattice (draft) on SpatiaLite; returns generation ids by name."""
    from django.core.management import call_command
    from django.db import transaction

    from gridmap.models import LEVEL_ORDER, Generation
    from gridmap.services import generation_create_draft, regions_add

    started = time.monotonic()
    call_command("gridmap_demo", verbosity=0, stdout=io.StringIO())
    demo = Generation.objects.get(synthetic=True)
    log(f"demo grid loaded and activated on SpatiaLite in {time.monotonic() - started:.1f}s")

    started = time.monotonic()
    inputs = build_lattice_inputs()
    with transaction.atomic():
        lattice = generation_create_draft(
            label="基准测试 100,000-cell lattice (benchmark only)",
            source="bench/locator_bench.py: regular lattice over the Longhua bounding box",
            synthetic=True,
        )
        for level in LEVEL_ORDER:
            regions_add(generation=lattice, level=level, regions=inputs[level])
    log(
        f"lattice of {len(inputs['grid']):,} cells stored as a draft in "
        f"{time.monotonic() - started:.1f}s"
    )
    return {"demo": demo.pk, "lattice": lattice.pk}


def copy_to_postgis(generation_ids: list[int]) -> None:
    """Copy the generations and their regions, same primary keys, from SpatiaLite to PostGIS."""
    from django.db import connections, transaction

    from gridmap.models import LEVEL_ORDER, Generation, Region

    started = time.monotonic()
    with transaction.atomic(using="postgis"):
        Generation.objects.using("postgis").bulk_create(
            list(Generation.objects.using("default").filter(pk__in=generation_ids))
        )
        for level in LEVEL_ORDER:  # parents first
            rows = list(
                Region.objects.using("default").filter(
                    generation_id__in=generation_ids, level=level
                )
            )
            Region.objects.using("postgis").bulk_create(rows, batch_size=2000)
    for alias in ("default", "postgis"):
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE")  # planner statistics, as on a database in service
    counts = [
        Region.objects.using(a).filter(generation_id__in=generation_ids).count()
        for a in ("default", "postgis")
    ]
    assert counts[0] == counts[1], counts
    log(f"{counts[1]:,} regions copied to PostGIS in {time.monotonic() - started:.1f}s")


# --- points ---------------------------------------------------------------------------------------


def shared_edges(polygons: Any) -> Any:
    """Line parts of the borders shared by two cells (pairs found with an STRtree)."""
    import numpy as np
    import shapely

    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    boundaries = shapely.boundary(polygons)
    common = shapely.intersection(boundaries[left], boundaries[right])
    parts = shapely.get_parts(shapely.line_merge(common[~shapely.is_empty(common)]))
    lines = parts[np.isin(shapely.get_type_id(parts), (1, 2))]  # LineString, LinearRing
    return lines[shapely.length(lines) > 0]


@dataclass
class PointSet:
    lon: list[float]
    lat: list[float]
    kind: Any  # numpy array of str: "uniform", "near" (< 1 m of a border), "on" (on a border)


def uniform_points(district: Any, n: int, rng: Any) -> tuple[Any, Any]:
    import numpy as np
    import shapely

    minx, miny, maxx, maxy = shapely.bounds(district).tolist()
    shapely.prepare(district)
    xs: list[Any] = []
    ys: list[Any] = []
    got = 0
    while got < n:
        x = rng.uniform(minx, maxx, 2 * n)
        y = rng.uniform(miny, maxy, 2 * n)
        inside = shapely.contains_xy(district, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        got += int(inside.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def border_points(polygons: Any, n: int, rng: Any) -> tuple[Any, Any, Any]:
    """n points within 1 m of shared borders: N_EXACT on the border, the rest offset < 1 m."""
    import numpy as np
    import shapely

    from gridmap.crs import MetricProjector

    lines = shared_edges(polygons)
    lengths = shapely.length(lines)
    n_vertices = N_EXACT // 2
    n_on_edge = N_EXACT - n_vertices
    n_offset = n - N_EXACT

    # Exactly on a border: vertices shared by two or more cells.
    per_cell = [set(map(tuple, shapely.get_coordinates(p).tolist())) for p in polygons]
    seen: dict[tuple[float, float], int] = {}
    for vertices in per_cell:
        for v in vertices:
            seen[v] = seen.get(v, 0) + 1
    shared = np.array(sorted(v for v, count in seen.items() if count >= 2))
    vertices = shared[rng.choice(len(shared), n_vertices, replace=False)]

    # On an edge (to floating-point rounding) and within 1 m of one: a random point of a shared
    # edge, chosen with probability proportional to length, then moved < 1 m in a random direction.
    picks = rng.choice(len(lines), n_on_edge + n_offset, p=lengths / lengths.sum())
    on_line = shapely.line_interpolate_point(
        lines[picks], rng.uniform(0, 1, len(picks)), normalized=True
    )
    on_edge = shapely.get_coordinates(on_line[:n_on_edge])
    to_move = on_line[n_on_edge:]
    centre = shapely.centroid(shapely.union_all(shapely.envelope(polygons)))
    projector = MetricProjector.around(centre.x, centre.y)
    metric = shapely.get_coordinates(
        projector.to_metric(shapely.MultiPoint(to_move), densify=False)
    )
    distance = rng.uniform(0.0, 1.0, n_offset)  # metres, < 1
    angle = rng.uniform(0.0, 2 * math.pi, n_offset)
    moved = metric + np.column_stack([distance * np.cos(angle), distance * np.sin(angle)])
    back = shapely.get_coordinates(projector.to_wgs84(shapely.MultiPoint(moved)))
    # Check the offsets in metres after the round trip.
    again = shapely.get_coordinates(projector.to_metric(shapely.MultiPoint(back), densify=False))
    assert float(np.max(np.hypot(*(again - metric).T))) < 1.0

    xy = np.vstack([vertices, on_edge, back])
    kind = np.array(["on"] * N_EXACT + ["near"] * n_offset)
    return xy[:, 0], xy[:, 1], kind


def make_points(uniform: tuple[Any, Any], polygons: Any, n_border: int, rng: Any) -> PointSet:
    import numpy as np

    bx, by, bkind = border_points(polygons, n_border, rng)
    lon = np.concatenate([uniform[0], bx])
    lat = np.concatenate([uniform[1], by])
    kind = np.concatenate([np.array(["uniform"] * len(uniform[0])), bkind])
    order = rng.permutation(len(lon))  # interleave, so no timing run sees one kind at a time
    return PointSet(lon[order].tolist(), lat[order].tolist(), kind[order])


# --- timing ---------------------------------------------------------------------------------------


@dataclass
class Row:
    grid: str
    method: str
    points: int
    rate: float  # lookups per second
    p50_us: float | None
    p99_us: float | None
    stalls: tuple[int, float] = (0, 0.0)  # calls over 1 ms, and their share of the time


@dataclass
class Answer:
    code: str | None  # None: no cell covers the point (or outside)
    hits: int  # cells covering the point (the locator: 1, 2 = "several", 0)
    resolution: str


@dataclass
class GridResult:
    name: str
    cells: int
    generation_id: int
    points: PointSet
    locator: list[Answer] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, int, list[str], dict[str, int]]] = field(default_factory=list)
    description: str = ""
    loop_rate: float = 0.0  # the whole timed locator loop, timer calls and bookkeeping included
    plans: list[tuple[str, str]] = field(default_factory=list)
    pass_rates: dict[str, list[float]] = field(default_factory=dict)
    load: float = 0.0  # 1-minute load average before the locator passes


def timed_calls(
    call: Callable[[float, float], Any],
    lons: list[float],
    lats: list[float],
    keep: Callable[[Any], Any] = lambda result: result,
) -> tuple[list[Any], Any, int]:
    """Call once per point, each call timed on its own with perf_counter_ns.

    `keep` turns each result into what is stored, outside the timed region: the locator's
    Location objects are reduced to (code, on_border, resolution) so that 100,000 of them kept
    alive do not make the garbage collector's full passes part of the measurement (a server drops
    each Location after answering).
    """
    import numpy as np

    from gridmap.locator import OutsideJurisdiction

    gc.collect()  # start every timed loop from the same collector state
    clock = time.perf_counter_ns
    n = len(lons)
    out: list[Any] = [None] * n
    times = [0] * n
    started = clock()
    for i in range(n):
        x, y = lons[i], lats[i]
        t0 = clock()
        try:
            result = call(x, y)
        except OutsideJurisdiction as exc:
            result = exc
        t1 = clock()
        times[i] = t1 - t0
        out[i] = keep(result)
    wall_ns = clock() - started
    return out, np.array(times, dtype=np.int64), wall_ns


def row_from_times(grid: str, method: str, times: Any) -> Row:
    import numpy as np

    slow = times > 1_000_000
    log(
        f"{grid}: {method}: p99.9 {np.percentile(times, 99.9) / 1e3:,.1f} µs, max "
        f"{times.max() / 1e3:,.0f} µs (call {int(times.argmax()):,})"
    )
    return Row(
        grid,
        method,
        len(times),
        len(times) / (float(times.sum()) / 1e9),
        float(np.percentile(times, 50)) / 1e3,
        float(np.percentile(times, 99)) / 1e3,
        (int(slow.sum()), float(times[slow].sum() / times.sum())),
    )


def compact(result: Any) -> tuple[str | None, bool, str]:
    """A locator result as (grid code or None, on_border, resolution)."""
    if isinstance(result, Exception):  # OutsideJurisdiction
        return (None, False, "outside")
    return (result.path.grid.code, result.on_border, result.resolution.value)


def locator_answer(kept: tuple[str | None, bool, str]) -> Answer:
    code, on_border, resolution = kept
    if resolution in ("nearest", "outside"):
        return Answer(None, 0, resolution)
    return Answer(code, 2 if on_border else 1, resolution)


def timer_overhead_ns() -> float:
    import numpy as np

    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return float(np.median(samples))


def median_pass(
    call: Callable[[float, float], Any], lons: list[float], lats: list[float]
) -> tuple[list[Any], Any, int, list[float]]:
    """PASSES timed passes over all points; the median one by rate, and every pass's rate.

    The machine may be shared: a pass during which another process held the core shows up as
    calls of milliseconds. The median of three passes is less at the mercy of one such burst;
    all three rates are printed.
    """
    timed_calls(call, lons[:5000], lats[:5000], compact)  # warm-up
    passes = [timed_calls(call, lons, lats, compact) for _ in range(PASSES)]
    for out, _, _ in passes[1:]:
        assert out == passes[0][0], "passes over the same points gave different answers"
    rates = [len(times) / float(times.sum()) * 1e9 for _, times, _ in passes]
    median = sorted(range(PASSES), key=lambda k: rates[k])[PASSES // 2]
    out, times, wall_ns = passes[median]
    return out, times, wall_ns, rates


def bench_locator(result: GridResult, index: Any) -> None:
    """The headline: GridIndex.locate_wgs84, one call at a time, over all points."""
    pts = result.points
    result.load = os.getloadavg()[0]
    out, times, wall_ns, rates = median_pass(index.locate_wgs84, pts.lon, pts.lat)
    result.locator = [locator_answer(r) for r in out]
    result.loop_rate = len(times) / wall_ns * 1e9
    method = "locator GridIndex.locate_wgs84 [a]"
    result.pass_rates[method] = rates
    result.rows.append(row_from_times(result.name, method, times))


def bench_public_locate(result: GridResult) -> None:
    from gridmap.locator import locator

    pts = result.points
    out, times, _, rates = median_pass(locator.locate, pts.lon, pts.lat)
    mismatched = sum(1 for a, b in zip(out, result.locator, strict=True) if locator_answer(a) != b)
    assert mismatched == 0, f"locate() and locate_wgs84 differ on {mismatched} points"
    method = "locator.locate(), public entry [b]"
    result.pass_rates[method] = rates
    result.rows.append(row_from_times(result.name, method, times))


def bench_bulk(result: GridResult, index: Any) -> None:
    """For comparison only: all points in one vectorised pass (gridmap has no batch API).

    The same two steps as a single lookup's exact path — STRtree bounding-box candidates, then
    `covers` by the index's prepared polygons — done for every point at once in C.
    """
    import numpy as np
    import shapely

    pts = result.points
    started = time.perf_counter_ns()
    points = shapely.points(np.array(pts.lon), np.array(pts.lat))
    point_i, cell_i = index.tree.query(points)
    covered = shapely.covers(index.polygons[cell_i], points[point_i])
    point_i, cell_i = point_i[covered], cell_i[covered]
    hits = np.bincount(point_i, minlength=len(points))
    # Lowest cell index per point = lowest code (the index is sorted by code).
    best = np.full(len(points), len(index.paths), dtype=np.int64)
    np.minimum.at(best, point_i, cell_i)
    elapsed = time.perf_counter_ns() - started
    disagree = 0
    for i, answer in enumerate(result.locator):
        code = index.paths[best[i]].grid.code if hits[i] else None
        if code != answer.code or (hits[i] > 1) != (answer.hits > 1):
            disagree += 1
    assert disagree == 0, f"the batch pass and the locator differ on {disagree} points"
    result.rows.append(
        Row(
            result.name,
            "batch: all points in one pass, not an API [c]",
            len(points),
            len(points) / (elapsed / 1e9),
            None,
            None,
        )
    )


def subsample(points: PointSet, n: int, rng_seed: int) -> list[int]:
    """All points on a border, then a fixed random order of the others, n in all."""
    import numpy as np

    on = [int(i) for i in np.flatnonzero(points.kind == "on")]
    others = np.flatnonzero(points.kind != "on")
    rest = np.random.default_rng(rng_seed).permutation(others)
    return on + [int(i) for i in rest[: max(n - len(on), 0)]]


def check(result: GridResult, label: str, sample: list[int], answers: list[Answer]) -> None:
    """Compare a reference's answers with the locator's; record counts and disagreements."""
    disagreements: list[str] = []
    counts = {
        "checked": len(sample),
        "covered_by_several": 0,
        "covered_by_none": 0,
        "locator_fallback": 0,
        "border_flag_mismatch": 0,
    }
    pts = result.points
    for i, ref in zip(sample, answers, strict=True):
        mine = result.locator[i]
        if ref.hits > 1:
            counts["covered_by_several"] += 1
        if ref.code is None:
            counts["covered_by_none"] += 1
            if mine.resolution == "nearest":
                counts["locator_fallback"] += 1  # the locality fallback; the reference has none
                continue
        if mine.code != ref.code:
            disagreements.append(
                f"({pts.lon[i]!r}, {pts.lat[i]!r}) [{pts.kind[i]}]: locator {mine.code} "
                f"({mine.resolution}), {label} {ref.code} ({ref.hits} cell(s))"
            )
        elif (mine.hits > 1) != (ref.hits > 1):
            counts["border_flag_mismatch"] += 1
            disagreements.append(
                f"({pts.lon[i]!r}, {pts.lat[i]!r}) [{pts.kind[i]}]: same cell {ref.code} but "
                f"on_border={mine.hits > 1} vs {ref.hits} covering cell(s) in {label}"
            )
    result.checks.append((label, len(disagreements), disagreements, counts))


def bench_orm(result: GridResult, alias: str, label: str, n: int) -> None:
    from django.db import connections

    from gridmap.selectors import locate_in_database

    pts = result.points
    sample = subsample(pts, n, SEED + 1)
    lons, lats = [pts.lon[i] for i in sample], [pts.lat[i] for i in sample]
    gid = result.generation_id

    def call(lon: float, lat: float) -> tuple[str | None, int]:
        return locate_in_database(lon=lon, lat=lat, generation_id=gid, using=alias)

    connections[alias].ensure_connection()
    timed_calls(call, lons[:50], lats[:50])  # warm-up (connection, caches)
    out, times, _ = timed_calls(call, lons, lats)
    check(result, label, sample, [Answer(code, hits, "") for code, hits in out])
    result.rows.append(row_from_times(result.name, f"ORM covers query, {label} [d]", times))


def bench_raw_sql(result: GridResult, n: int) -> None:
    """Context for [d]: the same query on PostGIS as hand-written SQL, without the ORM."""
    from django.db import connections

    pts = result.points
    sample = subsample(pts, n, SEED + 1)  # the same points as the ORM query on PostGIS
    lons, lats = [pts.lon[i] for i in sample], [pts.lat[i] for i in sample]
    sql = (
        "SELECT code FROM gridmap_region WHERE generation_id = %s AND level = 'grid' "
        "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code"
    )
    gid = result.generation_id
    with connections["postgis"].cursor() as cursor:

        def call(lon: float, lat: float) -> tuple[str | None, int]:
            cursor.execute(sql, (gid, lon, lat))
            codes = [row[0] for row in cursor.fetchall()]
            return (codes[0] if codes else None), len(codes)

        timed_calls(call, lons[:50], lats[:50])
        out, times, _ = timed_calls(call, lons, lats)
    check(result, "PostGIS SQL", sample, [Answer(code, hits, "") for code, hits in out])
    result.rows.append(row_from_times(result.name, "same query as raw SQL, PostGIS [f]", times))


def query_plan(alias: str, generation_id: int, lon: float, lat: float) -> str:
    """The database's plan for one reference query, reduced to its scan and sort steps."""
    import re

    from django.contrib.gis.geos import Point

    from gridmap.models import Level, Region

    plan = (
        Region.objects.using(alias)
        .filter(
            generation_id=generation_id, level=Level.GRID, geom__covers=Point(lon, lat, srid=4326)
        )
        .order_by("code")
        .values_list("code", flat=True)
        .explain()
    )
    steps = []
    for line in plan.splitlines():
        line = re.sub(r"\s+\(cost=.*?\)", "", line).strip().removeprefix("->").strip()
        line = re.sub(r"^\d+ \d+ \d+ ", "", line)  # SQLite: id, parent, unused
        if re.search(r"Scan|Sort$|^SCAN|^SEARCH|B-TREE", line):
            steps.append(line)
    return " → ".join(reversed(steps))


def bench_naive(result: GridResult, index: Any, n: int) -> None:
    """shapely covers over every (unprepared) polygon, in a Python loop, no index."""
    import shapely

    polygons = shapely.from_wkb(shapely.to_wkb(index.polygons)).tolist()  # unprepared copies
    codes = [p.grid.code for p in index.paths]
    pts = result.points
    sample = subsample(pts, n, SEED + 2)

    def call(lon: float, lat: float) -> tuple[str | None, int]:
        point = shapely.Point(lon, lat)
        hits = [codes[j] for j, polygon in enumerate(polygons) if polygon.covers(point)]
        return (min(hits) if hits else None), len(hits)

    out, times, _ = timed_calls(call, [pts.lon[i] for i in sample], [pts.lat[i] for i in sample])
    check(result, "naive loop", sample, [Answer(code, hits, "") for code, hits in out])
    result.rows.append(
        row_from_times(result.name, "naive loop over every cell, no index [e]", times)
    )


# --- report -------------------------------------------------------------------------------------

NOTES = """\
[a] GridIndex.locate_wgs84, one call at a time over all points, each call timed alone with
    time.perf_counter_ns (timer overhead ≈{overhead:.0f} ns per call, included).
    lookups/s = calls / sum of the call times. One thread. {passes} passes over all points; the
    table shows the median pass (all passes' rates below).
[b] gridmap.locator.locate(): input checks, CRS handling and the active-generation poll on
    top of [a]. Only for the active generation (the demo grid). Median of {passes} passes.
[c] All points at once: one STRtree bounding-box query, `covers` by the prepared cells and the
    lowest-code pick, vectorised (shapely/NumPy). Not a gridmap API: what a batch entry point
    could reach. No per-call latency.
[d] gridmap.selectors.locate_in_database (GeoDjango `covers` filter + ORDER BY code, MapIt's
    approach) on a SUBSAMPLE: the {exact} on-border points + random others. SpatiaLite runs in
    process; GeoDjango's SpatiaLite lookups do not use the R*Tree spatial index, so every query
    tests every grid cell of the generation. PostGIS (local TCP) uses its GiST index.
[e] A Python loop of shapely `covers` over every (unprepared) cell, no index, on a SUBSAMPLE;
    the rate is extrapolated from it.
[f] Context for [d], not a target: the same points and query on PostGIS as hand-written SQL
    through the same connection (no queryset building, no model layer).
"""


def versions() -> str:
    import shapely
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT spatialite_version(), sqlite_version()")
        spatialite, sqlite = cursor.fetchone()
    with connections["postgis"].cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), postgis_lib_version()")
        pg, postgis = cursor.fetchone()
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    geos = ".".join(map(str, shapely.geos_version))
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, shapely "
        f"{shapely.__version__}, GEOS {geos}; SQLite {sqlite} + SpatiaLite {spatialite} "
        f"(in process); PostgreSQL {pg.split()[0]} + PostGIS {postgis} (local TCP)"
    )


def fmt_us(value: float | None) -> str:
    return "—" if value is None else (f"{value:,.1f}" if value < 1000 else f"{value:,.0f}")


def report(results: list[GridResult], overhead_ns: float, machine: str, elapsed: float) -> None:
    p = print
    n_border = int(N_POINTS * BORDER_FRACTION)
    p()
    p("CityOps locator benchmark")
    p(f"Machine: {machine}")
    p(
        f"Points, per grid: {N_POINTS:,} = {N_POINTS - n_border:,} uniform in the district (the "
        f"same for both grids) + {n_border:,} within 1 m of a border shared by two of that grid's "
        f"cells, {N_EXACT} of them exactly on it; seed {SEED}."
    )
    for r in results:
        p(f"Grid {r.name}: {r.cells:,} cells (generation id {r.generation_id}). {r.description}")
    p()
    header = (
        f"{'grid':<8} {'method':<45} {'points':>7} {'lookups/s':>10} {'p50 µs':>8} {'p99 µs':>8}"
    )
    p(header)
    p("-" * len(header))
    for r in results:
        for row in r.rows:
            p(
                f"{row.grid:<8} {row.method:<45} {row.points:>7,} {row.rate:>10,.0f} "
                f"{fmt_us(row.p50_us):>8} {fmt_us(row.p99_us):>8}"
            )
        p()
    p(NOTES.format(overhead=overhead_ns, exact=N_EXACT, passes=PASSES))
    p("Passes and interference (another process holding the core shows as calls over 1 ms)")
    for r in results:
        for row in r.rows:
            rates = r.pass_rates.get(row.method)
            if rates is None:
                continue
            n_stalls, share = row.stalls
            p(
                f"  {r.name:<8} {row.method.removesuffix(' [a]').removesuffix(' [b]'):<34} "
                f"passes {', '.join(f'{x:,.0f}' for x in rates)} /s; median pass: "
                f"{n_stalls} call(s) over 1 ms, {share:.1%} of its time"
            )
        p(
            f"  {'':<8} 1-minute load average before the passes: {r.load:.2f} "
            f"({os.cpu_count()} cores)"
        )
    p()
    p("Query plans of the reference query (EXPLAIN, scan and sort steps)")
    for r in results:
        for label, plan in r.plans:
            p(f"  {r.name:<8} {label:<10} {plan}")
    p()
    p("Targets")
    for r in results:
        loc = next(row for row in r.rows if row.method.startswith("locator GridIndex"))
        verdict = "met" if loc.rate >= 100_000 else "MISSED"
        p(
            f"  {r.name:<8} locator {loc.rate:,.0f} lookups/s on one core, target ≥100,000/s: "
            f"{verdict} (whole timed loop incl. timer calls and bookkeeping: {r.loop_rate:,.0f}/s)"
        )
        for row in r.rows:
            if row.method.startswith("ORM"):
                ratio = loc.rate / row.rate
                verdict = "met" if ratio >= 50 else "MISSED"
                db = row.method.split(",")[-1].split("[")[0].strip()
                p(
                    f"  {r.name:<8} locator / ORM on {db:<10} = {ratio:,.0f}×, "
                    f"target ≥50×: {verdict}"
                )
    p()
    p("Agreement with the references over the points they checked (border rule: lowest code)")
    for r in results:
        for label, n_dis, lines, counts in r.checks:
            p(
                f"  {r.name:<8} vs {label:<11} {counts['checked']:>5,} points: "
                f"{n_dis} disagreement(s); "
                f"{counts['covered_by_several']:,} covered by several cells, "
                f"{counts['covered_by_none']:,} by none"
                + (
                    f" ({counts['locator_fallback']:,} sent to the nearest cell by the locator)"
                    if counts["covered_by_none"]
                    else ""
                )
            )
            for line in lines[:20]:
                p(f"      {line}")
            if len(lines) > 20:
                p(f"      … {len(lines) - 20} more")
    p()
    p(f"Locator answers over all {N_POINTS:,} points")
    for r in results:
        by: dict[tuple[str, str], int] = {}
        for answer, kind in zip(r.locator, r.points.kind, strict=True):
            key = (answer.resolution, str(kind))
            by[key] = by.get(key, 0) + 1

        def total(resolution: str, by: dict[tuple[str, str], int] = by) -> int:
            return sum(v for (res, _), v in by.items() if res == resolution)

        p(
            f"  {r.name:<8} on_border (border rule applied) {total('border'):,}: "
            f"{by.get(('border', 'on'), 0)} of the {N_EXACT} points on a border, "
            f"{by.get(('border', 'near'), 0):,} of the {n_border - N_EXACT:,} within 1 m, "
            f"{by.get(('border', 'uniform'), 0):,} of the uniform ones"
        )
        p(
            f"  {'':<8} inside one cell {total('inside'):,}; nearest-cell fallback "
            f"{total('nearest'):,}; outside the district {total('outside'):,}"
        )
    p()
    p(f"Total run time {elapsed:.0f} s (most of it loading 100,000 cells into two databases).")


def describe(name: str, generation_id: int, index: Any, built_s: float) -> str:
    from gridmap.models import Level, Region

    areas = Region.objects.filter(generation_id=generation_id, level=Level.GRID).values_list(
        "area_m2", flat=True
    )
    median_m2 = sorted(areas)[len(areas) // 2]
    if name == "demo":
        what = "The synthetic demo partition (gridmap.demo), the active generation"
    else:
        what = (
            f"A {LATTICE_COLS} × {LATTICE_ROWS} lattice of square cells over the district's "
            f"bounding box, {LATTICE_ROWS // (BLOCK_ROWS * STREET_BLOCK_ROWS)} streets × "
            f"{STREET_BLOCK_ROWS * LATTICE_COLS // BLOCK_COLS} communities × "
            f"{BLOCK_ROWS * BLOCK_COLS} cells, a draft generation"
        )
    coverage = getattr(index, "raster_coverage", None)
    raster = "" if coverage is None else f"; interior raster covers {coverage:.0%} of its boxes"
    return (
        f"{what}; median cell {median_m2:,.0f} m² (≈{math.sqrt(median_m2):,.0f} m across). "
        f"Index built in {built_s:.1f} s{raster}."
    )


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgis-sample",
        type=int,
        default=5000,
        help="points for the ORM query on PostGIS (each grid)",
    )
    parser.add_argument(
        "--spatialite-sample",
        type=int,
        default=2000,
        help="points for the ORM query on SpatiaLite, demo grid",
    )
    parser.add_argument(
        "--spatialite-lattice-sample",
        type=int,
        default=500,
        help="points for the ORM query on SpatiaLite, 100k lattice (slow: no index)",
    )
    parser.add_argument("--naive-sample", type=int, default=2000, help="naive loop, demo grid")
    parser.add_argument(
        "--naive-lattice-sample", type=int, default=1000, help="naive loop, 100k lattice"
    )
    args = parser.parse_args()

    started = time.monotonic()
    setup_django()
    import numpy as np
    import shapely

    from gridmap.demo import load_district
    from gridmap.selectors import build_grid_index

    log("migrating SpatiaLite (default) and PostGIS (postgis)")
    migrate_and_check_empty()
    ids = load_geography()
    copy_to_postgis(list(ids.values()))

    rng = np.random.default_rng(SEED)
    n_border = int(N_POINTS * BORDER_FRACTION)
    uniform = uniform_points(load_district(), N_POINTS - n_border, rng)
    overhead = timer_overhead_ns()
    machine = versions()

    results = []
    for name in ("demo", "lattice"):
        t = time.monotonic()
        index = build_grid_index(generation_id=ids[name])
        built = time.monotonic() - t
        log(f"{name}: GridIndex of {len(index.paths):,} cells built in {built:.1f}s")
        t = time.monotonic()
        unprepared = shapely.from_wkb(shapely.to_wkb(index.polygons))
        points = make_points(uniform, unprepared, n_border, rng)
        log(f"{name}: {len(points.lon):,} points drawn in {time.monotonic() - t:.1f}s")
        result = GridResult(name, len(index.paths), ids[name], points)
        result.description = describe(name, ids[name], index, built)
        results.append(result)
        gc.collect()
        bench_locator(result, index)
        if name == "demo":  # the active generation: the public entry point answers from it
            bench_public_locate(result)
        bench_bulk(result, index)
        log(f"{name}: locator timed")
        spatialite_n = args.spatialite_sample if name == "demo" else args.spatialite_lattice_sample
        for alias, label, n in (
            ("postgis", "PostGIS", args.postgis_sample),
            ("default", "SpatiaLite", spatialite_n),
        ):
            t = time.monotonic()
            bench_orm(result, alias, label, n)
            result.plans.append((label, query_plan(alias, ids[name], points.lon[0], points.lat[0])))
            if alias == "postgis":
                bench_raw_sql(result, n)
            log(f"{name}: ORM on {label} timed ({time.monotonic() - t:.0f}s)")
        t = time.monotonic()
        bench_naive(
            result, index, args.naive_sample if name == "demo" else args.naive_lattice_sample
        )
        log(f"{name}: naive loop timed ({time.monotonic() - t:.0f}s)")
        del index
    report(results, overhead, machine, time.monotonic() - started)


if __name__ == "__main__":
    main()
