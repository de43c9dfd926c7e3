"""Coordinate systems at the edge: WGS-84 in storage, GCJ-02 and BD-09 converted on the way in.

Chinese map SDKs do not give WGS-84. 高德/腾讯 (Amap, Tencent) and the DataV boundaries give
GCJ-02 ("Mars" coordinates), offset from WGS-84 by a deliberately obfuscating function — about
+0.0050° longitude and −0.0028° latitude (≈ 500–600 m) in Shenzhen. 百度 (Baidu) adds a second
offset on top of GCJ-02, giving BD-09. Neither is an EPSG system, so GDAL/PROJ cannot convert them;
we use the standard public formulas:

* WGS-84 → GCJ-02: the published (Krasovsky-ellipsoid) approximation used by every open-source
  implementation (eviltransform, coordtransform, gcoord). It reproduces the SDKs' offsets to
  about 1–2 m.
* GCJ-02 → WGS-84: no closed form exists; we invert the forward formula by fixed-point iteration
  until the forward image matches the input within 1e-9° (≈ 0.1 mm). The result is therefore
  exact *with respect to the forward formula*; the total error against true WGS-84 is that of the
  formula, ≈ 1–2 m, far below GPS error on a phone (5–10 m) and below grid-cell sizes.
* BD-09 ↔ GCJ-02: Baidu's published closed form, inverse exact to ≈ 1e-6° (≈ 0.1 m).

Outside China's bounding box the offsets are not applied (the SDKs return WGS-84 there).
All functions accept floats or NumPy arrays (the import command converts whole rings at once).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

Coord = TypeVar("Coord", float, npt.NDArray[np.float64])

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as used by the GCJ-02 formula
_EE = 0.00669342162296594323  # Krasovsky eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_ITERATIONS = 30


class CRS(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def out_of_china(lon: Coord, lat: Coord) -> Coord:
    """True where the point is outside the box in which the SDKs apply the GCJ-02 offset."""
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)  # type: ignore[return-value]


def _delta(
    lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _as_arrays(
    lon: Coord, lat: Coord
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], bool]:
    scalar = np.isscalar(lon) and np.isscalar(lat)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), scalar


def _back(
    lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], scalar: bool
) -> tuple[Coord, Coord]:
    if scalar:
        return float(lon), float(lat)  # type: ignore[return-value]
    return lon, lat  # type: ignore[return-value]


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    x, y, scalar = _as_arrays(lon, lat)
    dlon, dlat = _delta(x, y)
    outside = out_of_china(x, y)
    return _back(np.where(outside, x, x + dlon), np.where(outside, y, y + dlat), scalar)


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """Invert wgs84_to_gcj02 by fixed-point iteration (converges in 2–4 steps)."""
    gx, gy, scalar = _as_arrays(lon, lat)
    wx, wy = gx.copy(), gy.copy()
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fx, fy = wgs84_to_gcj02(wx, wy)
        ex, ey = np.asarray(fx) - gx, np.asarray(fy) - gy
        wx, wy = wx - ex, wy - ey
        if np.all(np.abs(ex) < _INVERSE_TOLERANCE_DEG) and np.all(
            np.abs(ey) < _INVERSE_TOLERANCE_DEG
        ):
            break
    return _back(wx, wy, scalar)


def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    x, y, scalar = _as_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return _back(z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006, scalar)


def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    x0, y0, scalar = _as_arrays(lon, lat)
    x = x0 - 0.0065
    y = y0 - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _back(z * np.cos(theta), z * np.sin(theta), scalar)


def wgs84_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: Coord, lat: Coord, crs: CRS | str) -> tuple[Coord, Coord]:
    """Convert from the named input CRS to WGS-84 (storage, SRID 4326)."""
    crs = CRS(crs)
    if crs is CRS.WGS84:
        return lon, lat
    if crs is CRS.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    return bd09_to_wgs84(lon, lat)


def from_wgs84(lon: Coord, lat: Coord, crs: CRS | str) -> tuple[Coord, Coord]:
    """Convert WGS-84 to the named CRS (for display on Amap/Baidu base maps)."""
    crs = CRS(crs)
    if crs is CRS.WGS84:
        return lon, lat
    if crs is CRS.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    return wgs84_to_bd09(lon, lat)


def utm_srid_for(lon: float, lat: float) -> int:
    """EPSG code of the WGS-84 / UTM zone holding the point: metres for areas and distances."""
    zone = int((lon + 180.0) // 6.0) + 1
    zone = min(max(zone, 1), 60)
    return (32600 if lat >= 0 else 32700) + zone


# Edges are straight lines in longitude/latitude (that is how GEOS, SpatiaLite and PostGIS treat
# SRID 4326 geometries). Projected vertex by vertex, a long straight edge would bend, and a
# degenerate sliver between collinear points would gain area, so geometries are densified to
# ~10 m segments before projecting.
DENSIFY_DEG = 1e-4


class MetricProjector:
    """Projects WGS-84 shapely geometries into a UTM zone: areas in m², distances in m.

    Uses GDAL/PROJ from the system (through django.contrib.gis.gdal), the same libraries the
    database drivers load, so that only one PROJ lives in the process.
    """

    def __init__(self, srid: int) -> None:
        from django.contrib.gis.gdal import CoordTransform, SpatialReference

        self.srid = srid
        wgs84, metric = SpatialReference(4326), SpatialReference(srid)
        self._to = CoordTransform(wgs84, metric)
        self._back = CoordTransform(metric, wgs84)

    @classmethod
    def around(cls, lon: float, lat: float) -> MetricProjector:
        return cls(utm_srid_for(lon, lat))

    @staticmethod
    def _apply(geom: object, transform: Any) -> object:
        import shapely
        from django.contrib.gis.gdal import OGRGeometry

        if shapely.is_empty(geom):
            return geom
        ogr = OGRGeometry(memoryview(shapely.to_wkb(geom)))
        ogr.transform(transform)
        return shapely.from_wkb(bytes(ogr.wkb))

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        import shapely

        projected = self._apply(shapely.Point(lon, lat), self._to)
        return float(projected.x), float(projected.y)  # type: ignore[attr-defined]

    def to_metric(self, geom: object, densify: bool = True) -> object:
        import shapely

        return self._apply(shapely.segmentize(geom, DENSIFY_DEG) if densify else geom, self._to)

    def to_wgs84(self, geom: object) -> object:
        return self._apply(geom, self._back)

    def area_m2(self, geom: object) -> float:
        import shapely

        if geom is None or shapely.is_empty(geom):
            return 0.0
        return float(shapely.area(self.to_metric(geom)))
