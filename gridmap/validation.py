"""Validation of a boundary generation before it may be activated.

A generation is usable only if its regions form a clean tree of partitions: one district; every
street, community and grid cell a valid polygon inside its parent; siblings that do not overlap;
children that together cover their parent with no gaps. The report names each problem with the
region codes and names, where it is (a point inside the problem area, WGS-84) and how big it is
(m², computed in the UTM zone of the district, never in degrees).

Floating-point overlay leaves slivers of ~1e-10 m² along shared edges; anything smaller than
GRIDMAP_AREA_TOLERANCE_M2 (default 1 m²) is not reported.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.db.models.functions import AsWKB

from gridmap.crs import MetricProjector
from gridmap.models import CODE_LENGTH, LEVEL_ORDER, Generation, Level, Region, parent_level

ERROR = "error"
WARNING = "warning"

CHECK_TITLES = {
    "empty": "空几何 empty geometry",
    "invalid_geometry": "无效几何 invalid geometry",
    "self_intersection": "自相交 self-intersection",
    "degenerate": "退化多边形 degenerate polygon",
    "oversized_vertices": "顶点过多 too many vertices",
    "oversized_bytes": "几何过大 geometry too large",
    "bad_code": "代码格式错误 malformed code",
    "missing_parent": "缺少上级 missing parent",
    "district_count": "区数量错误 not exactly one district",
    "gap": "缝隙 gap: children do not cover their parent",
    "overlap": "重叠 overlap between siblings",
    "outside_parent": "越界 child outside its parent",
}


@dataclass
class Finding:
    check: str
    severity: str
    level: str
    codes: list[str]
    names: list[str]
    message: str
    area_m2: float | None = None
    location: list[float] | None = None  # [lon, lat] of a point inside the problem

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.check, self.check)


@dataclass
class Report:
    generation: int
    counts: dict[str, int]
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, finding: Finding) -> None:
        (self.errors if finding.severity == ERROR else self.warnings).append(finding)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "ok": self.ok,
            "counts": self.counts,
            "errors": [asdict(f) | {"title": f.title} for f in self.errors],
            "warnings": [asdict(f) | {"title": f.title} for f in self.warnings],
        }

    def as_text(self, limit: int = 200) -> str:
        lines = [
            f"Generation {self.generation}: "
            + ", ".join(f"{count} {level}" for level, count in self.counts.items()),
            "OK: no errors" if self.ok else f"{len(self.errors)} error(s)",
        ]
        for finding in (self.errors + self.warnings)[:limit]:
            where = (
                f" at {finding.location[0]:.6f},{finding.location[1]:.6f}"
                if finding.location
                else ""
            )
            area = f" area {finding.area_m2:.1f} m²" if finding.area_m2 is not None else ""
            lines.append(
                f"  [{finding.severity}] {finding.title}: {', '.join(finding.codes)} "
                f"({', '.join(finding.names)}){where}{area} — {finding.message}"
            )
        extra = len(self.errors) + len(self.warnings) - limit
        if extra > 0:
            lines.append(f"  … and {extra} more")
        return "\n".join(lines)


@dataclass
class _Item:
    pk: int
    level: str
    code: str
    name: str
    parent_id: int | None
    geom: Any  # shapely geometry, WGS-84
    wkb_size: int


def _location(geom: Any) -> list[float] | None:
    if geom is None or geom.is_empty:
        return None
    point = shapely.point_on_surface(geom)
    return [round(point.x, 7), round(point.y, 7)]


def _polygon_parts(geom: Any) -> list[Any]:
    parts = shapely.get_parts(geom)
    out: list[Any] = []
    for part in parts:
        if part.geom_type == "Polygon":
            out.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(_polygon_parts(part))
    return out


def validate_generation(generation: Generation) -> Report:
    rows = (
        Region.objects.filter(generation=generation)
        .annotate(wkb=AsWKB("geom"))
        .values_list("id", "level", "code", "name", "parent_id", "wkb")
        .iterator(chunk_size=2000)
    )
    items: list[_Item] = []
    for pk, level, code, name, parent_id, wkb in rows:
        raw = bytes(wkb) if wkb is not None else b""
        geom = shapely.from_wkb(raw) if raw else shapely.MultiPolygon()
        items.append(_Item(pk, level, code, name, parent_id, geom, len(raw)))
    return validate_items(generation.number, items)


def validate_items(generation_number: int, items: list[_Item]) -> Report:
    tolerance = settings.GRIDMAP_AREA_TOLERANCE_M2
    by_id = {item.pk: item for item in items}
    counts = {level: sum(1 for i in items if i.level == level) for level in LEVEL_ORDER}
    report = Report(generation=generation_number, counts=counts)

    districts = [i for i in items if i.level == Level.DISTRICT]
    if len(districts) != 1:
        report.add(
            Finding(
                "district_count",
                ERROR,
                Level.DISTRICT,
                [d.code for d in districts],
                [d.name for d in districts],
                f"a generation needs exactly one district, found {len(districts)}",
            )
        )
    anchor = next((i.geom for i in items if not i.geom.is_empty), None)
    centre = shapely.centroid(anchor) if anchor is not None else shapely.Point(114.0, 22.7)
    metric = MetricProjector.around(centre.x, centre.y)

    # Per-region checks. `usable` holds geometries fit for the overlay checks below.
    usable: dict[int, Any] = {}
    for item in items:
        ref = ([item.code], [item.name])
        if item.geom.is_empty:
            report.add(Finding("empty", ERROR, item.level, *ref, "the boundary has no area at all"))
            continue
        vertices = int(shapely.get_num_coordinates(item.geom))
        if vertices > settings.GRIDMAP_MAX_VERTICES_PER_REGION:
            report.add(
                Finding(
                    "oversized_vertices",
                    ERROR,
                    item.level,
                    *ref,
                    f"{vertices} vertices (cap {settings.GRIDMAP_MAX_VERTICES_PER_REGION}); "
                    "simplify the source",
                    location=_location(item.geom),
                )
            )
        if item.wkb_size > settings.GRIDMAP_MAX_BYTES_PER_REGION:
            report.add(
                Finding(
                    "oversized_bytes",
                    ERROR,
                    item.level,
                    *ref,
                    f"{item.wkb_size} bytes as WKB (cap {settings.GRIDMAP_MAX_BYTES_PER_REGION})",
                    location=_location(item.geom),
                )
            )
        reason = shapely.is_valid_reason(item.geom)
        if reason != "Valid Geometry":
            check = "self_intersection" if "Self-intersection" in reason else "invalid_geometry"
            match = re.search(r"\[([-\d.eE]+) ([-\d.eE]+)\]", reason)
            location = [float(match.group(1)), float(match.group(2))] if match else None
            report.add(Finding(check, ERROR, item.level, *ref, reason, location=location))
            repaired = shapely.make_valid(item.geom)
            usable[item.pk] = shapely.union_all(_polygon_parts(repaired))
        else:
            usable[item.pk] = item.geom
        for part in _polygon_parts(item.geom):
            part_area = metric.area_m2(part)
            if part_area < tolerance:
                report.add(
                    Finding(
                        "degenerate",
                        ERROR,
                        item.level,
                        *ref,
                        f"a polygon part of {part_area:.3f} m² (below {tolerance} m²)",
                        area_m2=round(part_area, 3),
                        location=_location(part),
                    )
                )
        # Code format: digits, the level's length, and extending the parent's code.
        expected = CODE_LENGTH[item.level]
        if not (item.code.isdigit() and len(item.code) == expected):
            report.add(
                Finding(
                    "bad_code",
                    ERROR,
                    item.level,
                    *ref,
                    f"a {item.level} code has {expected} digits (6 district + 3 street + "
                    "3 community + 3 grid)",
                )
            )
        if item.level != Level.DISTRICT:
            parent = by_id.get(item.parent_id) if item.parent_id else None
            if parent is None or parent.level != parent_level(item.level):
                report.add(
                    Finding(
                        "missing_parent",
                        ERROR,
                        item.level,
                        *ref,
                        f"needs a parent at level {parent_level(item.level)}",
                    )
                )
            elif not item.code.startswith(parent.code):
                report.add(
                    Finding(
                        "bad_code",
                        ERROR,
                        item.level,
                        *ref,
                        f"code does not start with its parent's code {parent.code}",
                    )
                )

    # Overlay checks, parent by parent.
    children_of: dict[int, list[_Item]] = {}
    for item in items:
        if item.parent_id is not None:
            children_of.setdefault(item.parent_id, []).append(item)
    for parent in items:
        if parent.level == Level.GRID or parent.pk not in usable:
            continue
        children = [c for c in children_of.get(parent.pk, []) if c.pk in usable]
        parent_geom = usable[parent.pk]
        _check_cover(report, metric, tolerance, parent, parent_geom, children, usable)
        _check_overlaps(report, metric, tolerance, children, usable)
    return report


def _check_cover(
    report: Report,
    metric: MetricProjector,
    tolerance: float,
    parent: _Item,
    parent_geom: Any,
    children: list[_Item],
    usable: dict[int, Any],
) -> None:
    union = shapely.union_all([usable[c.pk] for c in children]) if children else None
    gap = parent_geom if union is None else shapely.difference(parent_geom, union)
    for part in _polygon_parts(gap):
        area = metric.area_m2(part)
        if area >= tolerance:
            report.add(
                Finding(
                    "gap",
                    ERROR,
                    parent.level,
                    [parent.code],
                    [parent.name],
                    "part of the parent is covered by none of its children"
                    + ("" if children else " (it has no children)"),
                    area_m2=round(area, 1),
                    location=_location(part),
                )
            )
    for child in children:
        outside = shapely.difference(usable[child.pk], parent_geom)
        area = metric.area_m2(outside)
        if area >= tolerance:
            report.add(
                Finding(
                    "outside_parent",
                    ERROR,
                    child.level,
                    [child.code, parent.code],
                    [child.name, parent.name],
                    f"part of {child.name} lies outside its parent {parent.name}",
                    area_m2=round(area, 1),
                    location=_location(outside),
                )
            )


def _check_overlaps(
    report: Report,
    metric: MetricProjector,
    tolerance: float,
    children: list[_Item],
    usable: dict[int, Any],
) -> None:
    if len(children) < 2:
        return
    geoms = np.array([usable[c.pk] for c in children], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        inter = shapely.intersection(geoms[i], geoms[j])
        area = metric.area_m2(inter)
        if area >= tolerance:
            a, b = children[i], children[j]
            report.add(
                Finding(
                    "overlap",
                    ERROR,
                    a.level,
                    [a.code, b.code],
                    [a.name, b.name],
                    f"{a.name} and {b.name} overlap",
                    area_m2=round(area, 1),
                    location=_location(inter),
                )
            )
