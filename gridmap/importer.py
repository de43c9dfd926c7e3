"""Reading boundary files (GeoJSON, Shapefile, GeoPackage, anything GDAL/OGR opens).

Coordinates are converted at the edge: an EPSG system through GDAL/PROJ, GCJ-02/BD-09 (which are
not EPSG systems) through gridmap.crs. The result is a list of RegionInput in WGS-84 ready for
gridmap.services.regions_add; nothing is stored here, so a bad file stores nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.gdal import CoordTransform, DataSource, GDALException, SpatialReference

from gridmap import crs as crs_module
from gridmap.services import RegionInput


class ImportFailed(Exception):
    """The file cannot be imported; the message says why in terms of the file."""


@dataclass
class SourceCRS:
    label: str
    epsg: int | None  # None for GCJ-02 / BD-09
    mars: crs_module.CRS | None = None


def parse_crs(value: str | None) -> SourceCRS | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("wgs84", "epsg:4326", "4326", "crs84"):
        return SourceCRS("WGS-84", 4326)
    if lowered == "gcj02":
        return SourceCRS("GCJ-02", None, crs_module.CRS.GCJ02)
    if lowered == "bd09":
        return SourceCRS("BD-09", None, crs_module.CRS.BD09)
    match = re.fullmatch(r"epsg:(\d{4,6})", lowered)
    if match:
        code = int(match.group(1))
        try:
            SpatialReference(code)
        except (GDALException, Exception) as exc:
            raise ImportFailed(f"--crs {value}: unknown EPSG code ({exc})") from None
        return SourceCRS(f"EPSG:{code}", code)
    raise ImportFailed(f"--crs {value!r}: use wgs84, gcj02, bd09 or EPSG:nnnn")


def _field_value(feature: Any, name: str) -> str:
    value = feature.get(name)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read_regions(
    path: str | os.PathLike[str],
    *,
    name_field: str,
    code_field: str,
    parent_field: str | None = None,
    crs: str | None = None,
    layer: int | str = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[RegionInput], str]:
    """Read polygons from a file into RegionInputs in WGS-84; returns them and a CRS note."""
    file = Path(path)
    if not file.exists():
        raise ImportFailed(f"{file}: no such file")
    size = file.stat().st_size if file.is_file() else 0
    if size > settings.GRIDMAP_MAX_IMPORT_BYTES:
        raise ImportFailed(
            f"{file}: {size} bytes is over the import cap of {settings.GRIDMAP_MAX_IMPORT_BYTES} "
            "bytes (GRIDMAP_MAX_IMPORT_BYTES)"
        )
    if file.is_file() and size == 0:
        raise ImportFailed(f"{file}: the file is empty")
    try:
        source = DataSource(str(file))
    except GDALException as exc:
        raise ImportFailed(
            f"{file}: GDAL cannot read this as a geometry file (GeoJSON, Shapefile, "
            f"GeoPackage…): {exc}"
        ) from None
    try:
        ogr_layer = source[layer]
    except (IndexError, KeyError, GDALException) as exc:
        raise ImportFailed(f"{file}: no layer {layer!r} ({exc})") from None

    if ogr_layer.geom_type.name == "None":
        raise ImportFailed(
            f"{file}: layer {ogr_layer.name!r} has no geometry column; this is a table (a CSV?), "
            "not a boundary file"
        )
    fields = list(ogr_layer.fields)
    for option, wanted in (
        ("--name-field", name_field),
        ("--code-field", code_field),
        ("--parent-field", parent_field),
    ):
        if wanted and wanted not in fields:
            raise ImportFailed(
                f"{file}: {option} {wanted!r} is not a field of layer {ogr_layer.name!r}; "
                f"fields are: {', '.join(fields) or '(none)'}"
            )

    declared = parse_crs(crs)
    layer_srs = ogr_layer.srs
    if declared is None:
        if layer_srs is None:
            raise ImportFailed(
                f"{file}: the file does not say which coordinate system it uses; "
                "pass --crs (wgs84, gcj02, bd09 or EPSG:nnnn)"
            )
        transform = CoordTransform(layer_srs, SpatialReference(4326))
        note = f"file CRS {layer_srs.name}"
        mars = None
    elif declared.mars is not None:
        if layer_srs is not None and not layer_srs.geographic:
            raise ImportFailed(
                f"{file}: --crs {crs} says longitude/latitude, but the file declares the "
                f"projected system {layer_srs.name!r}"
            )
        transform, mars, note = None, declared.mars, f"converted from {declared.label}"
    else:
        assert declared.epsg is not None
        target = SpatialReference(declared.epsg)
        if layer_srs is not None and not _same_crs(layer_srs, target):
            raise ImportFailed(
                f"{file}: --crs {crs} disagrees with the file, which declares "
                f"{layer_srs.name!r}; check which one is right"
            )
        transform = (
            None if declared.epsg == 4326 else CoordTransform(target, SpatialReference(4326))
        )
        mars, note = None, f"converted from {declared.label}"

    total = len(ogr_layer)
    regions: list[RegionInput] = []
    try:
        for number, feature in enumerate(ogr_layer, start=1):
            try:
                ogr_geom = feature.geom
            except GDALException:  # Django raises on a NULL geometry rather than returning None
                ogr_geom = None
            if ogr_geom is None:
                raise ImportFailed(
                    f"{file}: feature {number} has no geometry (is the file truncated?)"
                )
            if ogr_geom.geom_type.name not in (
                "Polygon",
                "MultiPolygon",
                "Polygon25D",
                "MultiPolygon25D",
            ):
                raise ImportFailed(
                    f"{file}: feature {number} is a {ogr_geom.geom_type.name}, not a polygon"
                )
            if transform is not None:
                ogr_geom.transform(transform)
            geom = shapely.from_wkb(bytes(ogr_geom.wkb))
            geom = shapely.force_2d(geom)
            if mars is not None:
                geom = shapely.transform(geom, _mars_to_wgs84(mars))
            _check_lonlat(file, number, geom, note)
            regions.append(
                RegionInput(
                    code=_field_value(feature, code_field),
                    name=_field_value(feature, name_field),
                    geom=geom,
                    parent_code=_field_value(feature, parent_field) if parent_field else None,
                    attributes={"source_fid": feature.fid},
                )
            )
            if progress is not None and (number % 500 == 0 or number == total):
                progress(number, total)
    except GDALException as exc:
        raise ImportFailed(
            f"{file}: GDAL failed while reading features (truncated?): {exc}"
        ) from None
    if not regions:
        raise ImportFailed(f"{file}: layer {ogr_layer.name!r} has no features")
    return regions, note


def _same_crs(a: SpatialReference, b: SpatialReference) -> bool:
    try:
        a_code, b_code = a.srid, b.srid
    except GDALException:
        a_code = b_code = None
    if a_code and b_code:
        if a.geographic and b.geographic:
            # EPSG:4979 (WGS 84 3D, 3D GeoJSON) is EPSG:4326 for longitude/latitude.
            return bool(
                a.attr_value("DATUM") == b.attr_value("DATUM")
                and a.angular_units == b.angular_units
            )
        return bool(a_code == b_code)
    return bool(a.wkt == b.wkt)


def _mars_to_wgs84(mars: crs_module.CRS) -> Callable[[np.ndarray], np.ndarray]:
    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = crs_module.to_wgs84(coords[:, 0], coords[:, 1], mars)
        return np.column_stack([x, y])

    return convert


def _check_lonlat(file: Path, number: int, geom: Any, note: str) -> None:
    if geom.is_empty:
        return
    minx, miny, maxx, maxy = shapely.bounds(geom)
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ImportFailed(
            f"{file}: feature {number} has coordinates ({minx:.1f}, {miny:.1f}) … "
            f"({maxx:.1f}, {maxy:.1f}) after conversion ({note}) that are not longitude/"
            "latitude — wrong CRS? Projected files need --crs EPSG:nnnn"
        )
