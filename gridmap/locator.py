"""The point locator: (lon, lat) → grid → community → street → district, in memory.

Every incident goes through here, so it answers from memory, not from the database: an STRtree
over the *prepared* grid polygons of the active generation (GEOS prepared geometries make the
point-in-polygon test after the bounding-box hit cheap). The database `covers` query
(`gridmap.selectors.locate_in_database`) is the reference it must agree with; the tests and the
benchmark in bench/ check that it does.

Rules (documented in docs/geodata.md):

* Border rule. A point covered by more than one grid cell — exactly on a shared edge or vertex —
  goes to the cell with the *lowest code*; `on_border` is true. The reference query applies the
  same rule (`ORDER BY code`), so the two agree on borders too.
* Locality fallback (属地兜底). A point covered by no grid cell but within
  GRIDMAP_OUTSIDE_BUFFER_M metres of the district (a sliver between cells, GPS scatter at the
  district edge) goes to the nearest grid cell (in metres; ties to the lowest code), flagged as
  resolved by `nearest`. Farther out it is outside the jurisdiction (OutsideJurisdiction, with the
  distance to the district in metres).
* Speed. An interior raster answers points that lie well inside one cell without a geometry
  test; the rest go through the STRtree and GEOS `covers` on the prepared candidates. Both give
  the same answer as the database reference (tests and bench/ check it).
* Every process holds its own index. It rebuilds when the active generation changes: at once in
  the process that activated it (on commit), and within GRIDMAP_LOCATOR_RECHECK_SECONDS in every
  other process, which polls the active generation's id with one indexed query.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.utils.translation import gettext as _
from shapely import STRtree

from gridmap import crs as crs_module


class Resolution(StrEnum):
    INSIDE = "inside"  # covered by exactly one grid cell
    BORDER = "border"  # covered by several; the lowest code won (the border rule)
    NEAREST = "nearest"  # covered by none, within the buffer: nearest grid cell (属地兜底)


class LocatorError(Exception):
    pass


class InvalidCoordinates(LocatorError, ValueError):
    """Input that is not a usable coordinate; `field` names the offending parameter."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OutsideJurisdiction(LocatorError):
    def __init__(self, distance_m: float, generation: int) -> None:
        super().__init__(f"point is {distance_m:.0f} m outside the district")
        self.distance_m = distance_m
        self.generation = generation


class NoActiveGeneration(LocatorError):
    pass


@dataclass(frozen=True, slots=True)
class RegionRef:
    id: int
    level: str
    code: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name}


@dataclass(frozen=True, slots=True)
class RegionPath:
    district: RegionRef
    street: RegionRef
    community: RegionRef
    grid: RegionRef


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 3x to construct, on the hot path
class Location:
    path: RegionPath
    generation: int  # generation number
    generation_id: int
    on_border: bool
    resolution: Resolution
    lon: float  # WGS-84, after conversion from the input CRS
    lat: float
    distance_m: float = 0.0  # > 0 only for Resolution.NEAREST

    def as_dict(self) -> dict[str, Any]:
        return {
            "district": self.path.district.as_dict(),
            "street": self.path.street.as_dict(),
            "community": self.path.community.as_dict(),
            "grid": self.path.grid.as_dict(),
            "generation": self.generation,
            "on_border": self.on_border,
            "resolution": str(self.resolution),
            "wgs84": [self.lon, self.lat],
            "distance_m": round(self.distance_m, 1),
        }


def check_lonlat(lon: Any, lat: Any) -> tuple[float, float]:
    """Turn raw input into finite, in-range floats or raise InvalidCoordinates naming the field.

    On the bulk intake's hot path: the reasons are translated only when one is raised."""
    values: dict[str, float] = {}
    for field, raw in (("lon", lon), ("lat", lat)):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidCoordinates(field, _("不能为空。"))
        if isinstance(raw, bool):
            raise InvalidCoordinates(field, _("必须是数字。"))
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise InvalidCoordinates(field, _("“%(value)s”不是数字。") % {"value": raw}) from None
        if math.isnan(value) or math.isinf(value):
            raise InvalidCoordinates(field, _("必须是有限的数字（收到的是 NaN 或无穷大）。"))
        values[field] = value
    x, y = values["lon"], values["lat"]
    if not -90.0 <= y <= 90.0:
        if -90.0 <= x <= 90.0 and -180.0 <= y <= 180.0:
            raise InvalidCoordinates(
                "lat",
                _(
                    "%(value)s 超出 −90…90 的范围；经度和纬度似乎填反了"
                    "（应为 lon=%(lon)s，lat=%(lat)s？）。"
                )
                % {"value": y, "lon": y, "lat": x},
            )
        raise InvalidCoordinates("lat", _("%(value)s 超出 −90…90 的范围。") % {"value": y})
    if not -180.0 <= x <= 180.0:
        raise InvalidCoordinates("lon", _("%(value)s 超出 −180…180 的范围。") % {"value": x})
    return x, y


class GridIndex:
    """An immutable in-memory snapshot of one generation's grid cells."""

    def __init__(
        self,
        *,
        generation: int,
        generation_id: int,
        paths: list[RegionPath],
        polygons: list[Any],
        district_outline: Any,
        metric_srid: int,
        buffer_m: float,
    ) -> None:
        if not paths:
            raise NoActiveGeneration(_("启用的边界版本没有网格。"))
        # Sorted by grid code, so the lowest index among several hits is the lowest code.
        order = sorted(range(len(paths)), key=lambda i: paths[i].grid.code)
        self.paths = [paths[i] for i in order]
        self.polygons = np.array([polygons[i] for i in order], dtype=object)
        shapely.prepare(self.polygons)
        self.tree = STRtree(self.polygons)
        self._build_interior_raster()
        self.generation = generation
        self.generation_id = generation_id
        self.buffer_m = buffer_m
        self.metric_srid = metric_srid
        self._metric = crs_module.MetricProjector(metric_srid)
        self._district_metric = self._metric.to_metric(district_outline)
        shapely.prepare(self._district_metric)
        self._metric_polygons: np.ndarray | None = None
        self._metric_tree: STRtree | None = None

    def _metric_index(self) -> tuple[np.ndarray, STRtree]:
        # Built lazily: only points outside every cell need metric distances.
        if self._metric_tree is None:
            projected = np.array([self._metric.to_metric(p) for p in self.polygons], dtype=object)
            self._metric_polygons = projected
            self._metric_tree = STRtree(projected)
        assert self._metric_polygons is not None
        return self._metric_polygons, self._metric_tree

    def _build_interior_raster(self) -> None:
        """Precompute which raster boxes lie wholly inside exactly one grid cell.

        A regular raster is laid over the cells' extent. A box that is properly contained in a
        cell (interior, not touching its boundary) and intersects no other cell can only hold
        points that the exact test would give to that cell, so a lookup there needs no geometry
        test. Everything else — boxes crossing a border, outside the grid — takes the exact path
        through the STRtree. Adjacent boxes share their closed edges, so a point binned into the
        neighbouring box by floating-point rounding still gets the right answer.
        """
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(self.polygons))
        cells = int(min(max(len(self.polygons) * 128, 65_536), 2_097_152))
        width, height = max(maxx - minx, 1e-9), max(maxy - miny, 1e-9)
        nx = max(1, int(math.sqrt(cells * width / height)))
        ny = max(1, cells // nx)
        self._x0, self._y0, self._nx, self._ny = minx, miny, nx, ny
        self._sx, self._sy = nx / width, ny / height
        xs = minx + np.arange(nx + 1) * (width / nx)
        ys = miny + np.arange(ny + 1) * (height / ny)
        gx0, gy0 = np.meshgrid(xs[:-1], ys[:-1])
        gx1, gy1 = np.meshgrid(xs[1:], ys[1:])
        boxes = shapely.box(gx0.ravel(), gy0.ravel(), gx1.ravel(), gy1.ravel())
        box_index, poly_index = self.tree.query(boxes, predicate="intersects")
        hits = np.bincount(box_index, minlength=len(boxes))
        single = hits[box_index] == 1
        candidates_box, candidates_poly = box_index[single], poly_index[single]
        inside = shapely.contains_properly(self.polygons[candidates_poly], boxes[candidates_box])
        owners = np.full(len(boxes), -1, dtype=np.int32)
        owners[candidates_box[inside]] = candidates_poly[inside]
        self._owners = array("i", owners.tobytes())
        self.raster_coverage = float(np.count_nonzero(owners >= 0)) / len(boxes)

    def locate_wgs84(self, lon: float, lat: float) -> Location:
        ix = int((lon - self._x0) * self._sx)
        iy = int((lat - self._y0) * self._sy)
        if 0 <= ix < self._nx and 0 <= iy < self._ny:
            owner = self._owners[iy * self._nx + ix]
            if owner >= 0:
                return Location(
                    self.paths[owner],
                    self.generation,
                    self.generation_id,
                    False,
                    Resolution.INSIDE,
                    lon,
                    lat,
                )
        point = shapely.Point(lon, lat)
        candidates = self.tree.query(point)
        hits = candidates[shapely.covers(self.polygons[candidates], point)]
        if len(hits) == 1:
            return Location(
                self.paths[hits[0]],
                self.generation,
                self.generation_id,
                False,
                Resolution.INSIDE,
                lon,
                lat,
            )
        if len(hits) > 1:
            return Location(
                self.paths[int(hits.min())],
                self.generation,
                self.generation_id,
                True,
                Resolution.BORDER,
                lon,
                lat,
            )
        return self._fallback(lon, lat)

    def distance_to_district_m(self, lon: float, lat: float) -> float:
        x, y = self._metric.point(lon, lat)
        return float(shapely.distance(self._district_metric, shapely.Point(x, y)))

    def _fallback(self, lon: float, lat: float) -> Location:
        distance = self.distance_to_district_m(lon, lat)
        if distance > self.buffer_m:
            raise OutsideJurisdiction(distance, self.generation)
        polygons, tree = self._metric_index()
        x, y = self._metric.point(lon, lat)
        point = shapely.Point(x, y)
        candidates = tree.query(point, predicate="dwithin", distance=self.buffer_m + 1.0)
        if len(candidates) == 0:
            raise OutsideJurisdiction(distance, self.generation)
        distances = shapely.distance(polygons[candidates], point)
        best = min(range(len(candidates)), key=lambda i: (distances[i], candidates[i]))
        return Location(
            self.paths[int(candidates[best])],
            self.generation,
            self.generation_id,
            False,
            Resolution.NEAREST,
            lon,
            lat,
            float(distances[best]),
        )


class Locator:
    """Process-wide holder of the current GridIndex; rebuilds when the active generation changes."""

    def __init__(self) -> None:
        self._index: GridIndex | None = None
        self._key: tuple[int, Any] | None = None
        self._checked_at = -math.inf
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Make the next call re-read the active generation (called on commit of activation)."""
        self._checked_at = -math.inf

    def index(self) -> GridIndex:
        now = time.monotonic()
        if (
            self._index is None
            or now - self._checked_at >= settings.GRIDMAP_LOCATOR_RECHECK_SECONDS
        ):
            with self._lock:
                if self._index is None or now - self._checked_at >= (
                    settings.GRIDMAP_LOCATOR_RECHECK_SECONDS
                ):
                    self._refresh()
                    self._checked_at = time.monotonic()
        assert self._index is not None
        return self._index

    def _refresh(self) -> None:
        from gridmap.selectors import active_generation_key, build_grid_index

        key = active_generation_key()
        if key is None:
            self._index, self._key = None, None
            raise NoActiveGeneration(_("尚无启用的边界版本。"))
        if key != self._key or self._index is None:
            self._index = build_grid_index(generation_id=key[0])
            self._key = key

    def locate(self, lon: Any, lat: Any, crs: str = "wgs84") -> Location:
        try:
            source_crs = crs_module.CRS(crs)
        except ValueError:
            reason = _("“%(value)s”不在可选范围内（%(choices)s）。") % {
                "value": crs,
                "choices": ", ".join(c.value for c in crs_module.CRS),
            }
            raise InvalidCoordinates("crs", reason) from None
        x, y = check_lonlat(lon, lat)
        wx, wy = crs_module.to_wgs84(x, y, source_crs)
        index = self.index()
        try:
            return index.locate_wgs84(wx, wy)
        except OutsideJurisdiction:
            # A swapped pair that would land inside is a client bug, not a far-away incident.
            if -90.0 <= x <= 90.0 and -180.0 <= y <= 180.0:
                sx, sy = crs_module.to_wgs84(y, x, source_crs)
                try:
                    index.locate_wgs84(sx, sy)
                except OutsideJurisdiction:
                    pass
                else:
                    reason = _(
                        "lon=%(lon)s，lat=%(lat)s 似乎填反了：(%(lat)s, %(lon)s) 在辖区内。"
                    ) % {"lon": x, "lat": y}
                    raise InvalidCoordinates("lon", reason) from None
            raise


locator = Locator()


def locate(lon: Any, lat: Any, crs: str = "wgs84") -> Location:
    """Locate a point in the active generation. See the module docstring for the rules."""
    return locator.locate(lon, lat, crs)
