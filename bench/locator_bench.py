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
3. times, per grid: GridIndex.locate_wgs84 (one call at a time, each timed with
   time.perf_counter_ns), the public gridmap.locator.locate() for the active demo grid, a bulk
   STRtree query for comparison, the ORM `covers` query (gridmap.selectors.locate_in_database)
   on SpatiaLite and on PostGIS over subsamples, and a naive Python loop over every polygon over
   a smaller subsample;
4. checks every point the references looked at against the locator (border rule: lowest code).
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
            sys.exit(f"database {alias!r} already holds generations; the benchmark needs empty ones")


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

    district = [RegionInput(DISTRICT_CODE, "龙华区 基准测试格网", box(0, 0, LATTICE_COLS, LATTICE_ROWS))]
    streets, communities, grids = [], [], []
    street_rows = STREET_BLOCK_ROWS * BLOCK_ROWS
    for s in range(LATTICE_ROWS // street_rows):
        street_code = f"{DISTRICT_CODE}{s + 1:03d}"
        r_s = s * street_rows
        streets.append(
            RegionInput(street_code, f"基准街道{s + 1}", box(0, r_s, LATTICE_COLS, r_s + street_rows))
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
    log(f"lattice of {len(inputs['grid']):,} cells stored as a draft in "
        f"{time.monotonic() - started:.1f}s")
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
            t = time.monotonic()
            rows = list(
                Region.objects.using("default").filter(generation_id__in=generation_ids, level=level)
            )
            t1 = time.monotonic()
            Region.objects.using("postgis").bulk_create(rows, batch_size=2000)
            log(f"{level}: read {t1 - t:.1f}s write {time.monotonic() - t1:.1f}s")
    for alias in ("default", "postgis"):
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE")  # planner statistics, as on a database in service
    counts = [Region.objects.using(a).filter(generation_id__in=generation_ids).count()
              for a in ("default", "postgis")]
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
    metric = shapely.get_coordinates(projector.to_metric(shapely.MultiPoint(to_move), densify=False))
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


def make_points(
    uniform: tuple[Any, Any], polygons: Any, n_border: int, rng: Any
) -> PointSet:
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
    note: str = ""


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


def timed_calls(
    call: Callable[[float, float], Any], lons: list[float], lats: list[float]
) -> tuple[list[Any], Any]:
    """Call once per point, each call timed on its own with perf_counter_ns."""
    import numpy as np

    from gridmap.locator import OutsideJurisdiction

    clock = time.perf_counter_ns
    n = len(lons)
    out: list[Any] = [None] * n
    times = [0] * n
    for i in range(n):
        x, y = lons[i], lats[i]
        t0 = clock()
        try:
            result = call(x, y)
        except OutsideJurisdiction as exc:
            result = exc
        t1 = clock()
        times[i] = t1 - t0
        out[i] = result
    return out, np.array(times, dtype=np.int64)


def row_from_times(grid: str, method: str, times: Any, note: str = "") -> Row:
    import numpy as np

    return Row(
        grid,
        method,
        len(times),
        len(times) / (float(times.sum()) / 1e9),
        float(np.percentile(times, 50)) / 1e3,
        float(np.percentile(times, 99)) / 1e3,
        note,
    )


def locator_answer(result: Any) -> Answer:
    from gridmap.locator import Location, Resolution

    if not isinstance(result, Location):
        return Answer(None, 0, "outside")
    if result.resolution is Resolution.NEAREST:
        return Answer(None, 0, "nearest")
    return Answer(result.path.grid.code, 2 if result.on_border else 1, str(result.resolution))


def timer_overhead_ns() -> float:
    import numpy as np

    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return float(np.median(samples))


def bench_locator(result: GridResult, index: Any) -> None:
    """The headline: GridIndex.locate_wgs84, one call at a time, over all points."""
    pts = result.points
    timed_calls(index.locate_wgs84, pts.lon[:2000], pts.lat[:2000])  # warm-up
    wall = time.perf_counter()
    out, times = timed_calls(index.locate_wgs84, pts.lon, pts.lat)
    wall = time.perf_counter() - wall
    result.locator = [locator_answer(r) for r in out]
    result.rows.append(
        row_from_times(
            result.name,
            "locator GridIndex.locate_wgs84",
            times,
            f"all points; loop wall clock incl. timers {len(times) / wall:,.0f}/s",
        )
    )


def bench_public_locate(result: GridResult) -> None:
    from gridmap.locator import locator

    pts = result.points
    timed_calls(locator.locate, pts.lon[:2000], pts.lat[:2000])
    out, times = timed_calls(locator.locate, pts.lon, pts.lat)
    mismatched = sum(
        1 for a, b in zip(out, result.locator, strict=True) if locator_answer(a) != b
    )
    assert mismatched == 0, f"locate() and locate_wgs84 differ on {mismatched} points"
    result.rows.append(
        row_from_times(
            result.name, "locator.locate() public entry", times,
            "all points; + input checks, CRS, freshness poll",
        )
    )


def bench_bulk(result: GridResult, index: Any) -> None:
    """For comparison only: one vectorised STRtree query for all points (no such gridmap API)."""
    import numpy as np
    import shapely

    pts = result.points
    started = time.perf_counter_ns()
    points = shapely.points(np.array(pts.lon), np.array(pts.lat))
    # STRtree.query tests predicate(input, tree geometry): the point is covered by the cell.
    point_i, cell_i = index.tree.query(points, predicate="covered_by")
    best = np.full(len(points), -1, dtype=np.int64)
    hits = np.bincount(point_i, minlength=len(points))
    # Lowest index (= lowest code, the index is sorted by code) per point.
    order = np.lexsort((cell_i, point_i))
    first = np.ones(len(order), dtype=bool)
    first[1:] = point_i[order][1:] != point_i[order][:-1]
    best[point_i[order][first]] = cell_i[order][first]
    elapsed = time.perf_counter_ns() - started
    disagree = 0
    for i, answer in enumerate(result.locator):
        code = index.paths[best[i]].grid.code if best[i] >= 0 else None
        if code != answer.code or (hits[i] > 1) != (answer.hits > 1):
            disagree += 1
    assert disagree == 0, f"bulk query and locator differ on {disagree} points"
    result.rows.append(
        Row(result.name, "bulk STRtree.query (not an API)", len(points),
            len(points) / (elapsed / 1e9), None, None, "all points in one call; for comparison")
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
    counts = {"checked": len(sample), "covered_by_several": 0, "covered_by_none": 0,
              "locator_fallback": 0, "border_flag_mismatch": 0}
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
    out, times = timed_calls(call, lons, lats)
    check(result, label, sample, [Answer(code, hits, "") for code, hits in out])
    result.rows.append(
        row_from_times(result.name, f"ORM covers query, {label}", times,
                       f"subsample of {len(sample):,} (incl. the {N_EXACT} on-border points)")
    )


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

    out, times = timed_calls(call, [pts.lon[i] for i in sample], [pts.lat[i] for i in sample])
    check(result, "naive loop", sample, [Answer(code, hits, "") for code, hits in out])
    result.rows.append(
        row_from_times(
            result.name, "naive loop, shapely covers × every cell", times,
            f"subsample of {len(sample):,}; rate extrapolated from it",
        )
    )


# --- report ---------------------------------------------------------------------------------------


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
    p()
    p("Locator benchmark — CityOps gridmap")
    p(f"Machine: {machine}")
    p(f"Seed {SEED}. Per grid {N_POINTS:,} points: "
      f"{int(N_POINTS * (1 - BORDER_FRACTION)):,} uniform in the district (same for both grids) "
      f"+ {int(N_POINTS * BORDER_FRACTION):,} within 1 m of a border shared by two of that grid's "
      f"cells ({N_EXACT} exactly on one).")
    p(f"Timing: every lookup timed alone with perf_counter_ns (timer overhead ≈{overhead_ns:.0f} ns,"
      " included); lookups/s = calls / sum of call times; one thread.")
    for r in results:
        p(f"  {r.name:<8} {r.cells:>7,} cells (generation id {r.generation_id})")
    p()
    header = f"{'grid':<8} {'method':<42} {'points':>8} {'lookups/s':>11} {'p50 µs':>9} " \
             f"{'p99 µs':>9}  note"
    p(header)
    p("-" * (len(header) + 44))
    for r in results:
        for row in r.rows:
            p(f"{row.grid:<8} {row.method:<42} {row.points:>8,} {row.rate:>11,.0f} "
              f"{fmt_us(row.p50_us):>9} {fmt_us(row.p99_us):>9}  {row.note}")
        p()
    p("Targets")
    for r in results:
        loc = next(row for row in r.rows if row.method.startswith("locator GridIndex"))
        ok = "met" if loc.rate >= 100_000 else "MISSED"
        p(f"  {r.name:<8} locator {loc.rate:>9,.0f} lookups/s on one core "
          f"(target ≥100,000/s): {ok}")
        for row in r.rows:
            if row.method.startswith("ORM"):
                ratio = loc.rate / row.rate
                verdict = "met" if ratio >= 50 else "MISSED"
                p(f"  {r.name:<8} locator / {row.method.removeprefix('ORM covers query, '):<10} "
                  f"= {ratio:>8,.0f}× (target ≥50×): {verdict}")
    p()
    p("Agreement with the references (border rule: lowest code wins in both)")
    for r in results:
        for label, n_dis, lines, counts in r.checks:
            p(f"  {r.name:<8} vs {label:<11} {counts['checked']:>6,} points checked: "
              f"{n_dis} disagreement(s); {counts['covered_by_several']:,} covered by several cells, "
              f"{counts['covered_by_none']:,} by none "
              f"({counts['locator_fallback']:,} answered by the locator's nearest-cell fallback)")
            for line in lines[:20]:
                p(f"      {line}")
            if len(lines) > 20:
                p(f"      … {len(lines) - 20} more")
    p()
    p("Locator resolutions over all points")
    for r in results:
        kinds = r.points.kind
        by: dict[tuple[str, str], int] = {}
        for answer, kind in zip(r.locator, kinds, strict=True):
            by[(answer.resolution, str(kind))] = by.get((answer.resolution, str(kind)), 0) + 1
        on_border = sum(v for (res, _), v in by.items() if res == "border")
        p(f"  {r.name:<8} on_border (border rule applied): {on_border:,} — "
          f"{by.get(('border', 'on'), 0)} of the {N_EXACT} on-border points, "
          f"{by.get(('border', 'near'), 0):,} of the "
          f"{int(N_POINTS * BORDER_FRACTION) - N_EXACT:,} within 1 m, "
          f"{by.get(('border', 'uniform'), 0):,} of the uniform ones; "
          f"inside one cell: {sum(v for (res, _), v in by.items() if res == 'inside'):,}; "
          f"nearest-cell fallback: {sum(v for (res, _), v in by.items() if res == 'nearest'):,}; "
          f"outside: {sum(v for (res, _), v in by.items() if res == 'outside'):,}")
    p()
    p(f"Total run time {elapsed:.0f}s.")


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgis-sample", type=int, default=5000,
                        help="points for the ORM query on PostGIS (each grid)")
    parser.add_argument("--spatialite-sample", type=int, default=2000,
                        help="points for the ORM query on SpatiaLite, demo grid")
    parser.add_argument("--spatialite-lattice-sample", type=int, default=500,
                        help="points for the ORM query on SpatiaLite, 100k lattice (slow: no index)")
    parser.add_argument("--naive-sample", type=int, default=1000, help="naive loop, demo grid")
    parser.add_argument("--naive-lattice-sample", type=int, default=200,
                        help="naive loop, 100k lattice")
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
        log(f"{name}: GridIndex of {len(index.paths):,} cells built in {time.monotonic() - t:.1f}s")
        t = time.monotonic()
        unprepared = shapely.from_wkb(shapely.to_wkb(index.polygons))
        points = make_points(uniform, unprepared, n_border, rng)
        log(f"{name}: {len(points.lon):,} points drawn in {time.monotonic() - t:.1f}s")
        result = GridResult(name, len(index.paths), ids[name], points)
        results.append(result)
        gc.collect()
        bench_locator(result, index)
        if name == "demo":  # the active generation: the public entry point answers from it
            bench_public_locate(result)
        bench_bulk(result, index)
        log(f"{name}: locator timed")
        for alias, label, n in (
            ("postgis", "PostGIS", args.postgis_sample),
            ("default", "SpatiaLite",
             args.spatialite_sample if name == "demo" else args.spatialite_lattice_sample),
        ):
            t = time.monotonic()
            bench_orm(result, alias, label, n)
            log(f"{name}: ORM on {label} timed ({time.monotonic() - t:.0f}s)")
        t = time.monotonic()
        bench_naive(result, index, args.naive_sample if name == "demo" else
                    args.naive_lattice_sample)
        log(f"{name}: naive loop timed ({time.monotonic() - t:.0f}s)")
        del index
    report(results, overhead, machine, time.monotonic() - started)


if __name__ == "__main__":
    main()
