"""Every change to the geography goes through these functions.

Drafts are filled by `regions_add` (used by the import command and the demo builder), checked by
`generation_validate`, and switched live by `generation_activate`, which refuses a draft whose
report has errors and retires the previous generation in the same transaction.

Each change writes its audit entry in its own transaction; an activation also publishes
"gridmap.generation_activated" to the district through the outbox (docs/realtime.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record
from gridmap import events
from gridmap.crs import MetricProjector
from gridmap.locator import locator
from gridmap.models import (
    CODE_LENGTH,
    LEVEL_ORDER,
    Generation,
    GenerationStatus,
    Level,
    Region,
    parent_level,
)
from gridmap.validation import Report, validate_generation
from realtime.outbox import publish

log = logging.getLogger(__name__)


class GeographyError(Exception):
    """A refused change to the geography, with a message meant for the person who asked."""


class GenerationInvalid(GeographyError):
    def __init__(self, report: Report) -> None:
        super().__init__(
            f"generation {report.generation} has {len(report.errors)} validation error(s); "
            "it cannot be activated"
        )
        self.report = report


@dataclass
class RegionInput:
    code: str
    name: str
    geom: Any  # shapely (Multi)Polygon in WGS-84
    parent_code: str | None = None  # default: the code's prefix (national codes nest)
    attributes: dict[str, Any] = field(default_factory=dict)


def generation_create_draft(
    *, number: int | None = None, label: str = "", source: str = "", synthetic: bool = False
) -> Generation:
    with transaction.atomic():
        if number is None:
            number = (Generation.objects.aggregate(m=Max("number"))["m"] or 0) + 1
        if Generation.objects.filter(number=number).exists():
            raise GeographyError(f"generation {number} already exists")
        return Generation.objects.create(
            number=number, label=label, source=source, synthetic=synthetic
        )


def _to_multipolygon(geom: Any) -> Any:
    if geom is None:
        return shapely.MultiPolygon()
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom]) if not geom.is_empty else shapely.MultiPolygon()
    if geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
        polys: list[Any] = []
        for p in parts:
            polys.extend(shapely.get_parts(p) if p.geom_type == "MultiPolygon" else [p])
        return shapely.MultiPolygon(polys)
    raise GeographyError(f"a region must be a polygon, not {geom.geom_type}")


def regions_add(
    *,
    generation: Generation,
    level: str,
    regions: Sequence[RegionInput],
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
    by: Any = None,
) -> int:
    """Store regions of one level in a draft generation, all or nothing.

    Parents are found by code in the same generation (the code prefix unless parent_code is
    given); the ancestors district/street/community are filled from the parent. `by` is the
    user doing the import, for the audit trail (None: the system, e.g. the import command).
    """
    if level not in LEVEL_ORDER:
        raise GeographyError(f"unknown level {level!r}; use one of {', '.join(LEVEL_ORDER)}")
    with transaction.atomic():
        generation = _lock_draft(
            generation.pk,
            "only a draft accepts imports — create a new generation for new boundaries",
        )
        existing = Region.objects.filter(generation=generation, level=level)
        replaced = existing.count()
        if replaced:
            if not replace:
                raise GeographyError(
                    f"generation {generation.number} already has {replaced} {level} "
                    "region(s); pass --replace to replace them (and the levels below)"
                )
            below = LEVEL_ORDER[LEVEL_ORDER.index(level) :]
            Region.objects.filter(generation=generation, level__in=below).delete()

        seen: dict[str, int] = {}
        for number, region in enumerate(regions, start=1):
            if not region.code:
                raise GeographyError(f"feature {number} has an empty code")
            if len(region.code) > CODE_LENGTH[Level.GRID]:
                raise GeographyError(
                    f"feature {number}: code {region.code!r} is longer than 15 characters"
                )
            if region.code in seen:
                raise GeographyError(
                    f"duplicate code {region.code} in features {seen[region.code]} and {number}"
                )
            seen[region.code] = number
            if len(region.name) > 100:
                raise GeographyError(
                    f"feature {number} ({region.code}): the name has {len(region.name)} "
                    "characters; at most 100"
                )
            if region.geom is None or region.geom.is_empty:
                # SpatiaLite cannot store an empty geometry (it becomes NULL): refuse it clearly.
                raise GeographyError(
                    f"feature {number} ({region.code} {region.name}): the geometry is empty"
                )

        parents: dict[str, Region] = {}
        wanted_parent = parent_level(level)
        if wanted_parent is not None:
            parents = {
                r.code: r for r in Region.objects.filter(generation=generation, level=wanted_parent)
            }

        anchor = next((r.geom for r in regions if r.geom is not None and not r.geom.is_empty), None)
        centre = shapely.centroid(anchor) if anchor is not None else shapely.Point(114.0, 22.7)
        metric = MetricProjector.around(centre.x, centre.y)
        rows: list[Region] = []
        total = len(regions)
        for number, region in enumerate(regions, start=1):
            parent: Region | None = None
            if wanted_parent is not None:
                parent_code = region.parent_code or region.code[: CODE_LENGTH[wanted_parent]]
                parent = parents.get(parent_code)
                if parent is None:
                    raise GeographyError(
                        f"feature {number} ({region.code} {region.name}): parent {parent_code} "
                        f"not found at level {wanted_parent} in generation {generation.number}; "
                        f"import the {wanted_parent} level first"
                    )
            geom = _to_multipolygon(region.geom)
            rows.append(
                Region(
                    generation=generation,
                    level=level,
                    code=region.code,
                    name=region.name or region.code,  # unnamed cells are known by code
                    parent=parent,
                    district=_ancestor(parent, Level.DISTRICT),
                    street=_ancestor(parent, Level.STREET),
                    community=_ancestor(parent, Level.COMMUNITY),
                    geom=GEOSGeometry(memoryview(shapely.to_wkb(geom)), srid=4326),  # type: ignore[misc]
                    area_m2=metric.area_m2(geom),
                    vertex_count=int(shapely.get_num_coordinates(geom)),
                    attributes=region.attributes,
                )
            )
            if progress is not None and (number % 500 == 0 or number == total):
                progress(number, total)
        Region.objects.bulk_create(rows, batch_size=500)
        Generation.objects.filter(pk=generation.pk).update(
            validated_at=None, validation_report=None
        )
        audit_record(
            actor=by,
            action="gridmap.regions_add",
            obj_type="gridmap.generation",
            obj_id=generation.pk,
            before={"generation": generation.number, "level": level, "count": replaced},
            after={"generation": generation.number, "level": level, "count": len(rows)},
        )
        return len(rows)


def region_update_boundary(*, region: Region, geom: Any, by: Any = None) -> Region:
    """Correct the outline of a region in a draft generation (the admin's map editor).

    Keeps the derived figures right and drops the draft's validation report, which no longer
    describes its regions. Regions of active or retired generations are never edited.
    """
    with transaction.atomic():
        generation = _lock_draft(
            region.generation_id, "boundaries change by importing a new generation"
        )
        # The caller's instance may carry edits already (the admin form); the audit's "before"
        # is what is stored.
        before = _outline_facts(Region.objects.get(pk=region.pk), generation)
        shape = _to_multipolygon(
            shapely.from_wkb(bytes(geom.wkb)) if hasattr(geom, "wkb") else geom
        )
        if shape.is_empty:
            raise GeographyError(f"{region.code}: the geometry is empty")
        centre = shapely.centroid(shape)
        region.geom = GEOSGeometry(memoryview(shapely.to_wkb(shape)), srid=4326)  # type: ignore[assignment]
        region.area_m2 = MetricProjector.around(centre.x, centre.y).area_m2(shape)
        region.vertex_count = int(shapely.get_num_coordinates(shape))
        region.save(update_fields=["geom", "area_m2", "vertex_count", "name"])
        Generation.objects.filter(pk=generation.pk).update(
            validated_at=None, validation_report=None
        )
        audit_record(
            actor=by,
            action="gridmap.region_update_boundary",
            obj_type="gridmap.region",
            obj_id=region.pk,
            before=before,
            after=_outline_facts(region, generation),
        )
    return region


def _outline_facts(region: Region, generation: Generation) -> dict[str, Any]:
    """What an audit entry keeps of an outline: figures and extent, not the vertices."""
    return {
        "generation": generation.number,
        "code": region.code,
        "name": region.name,
        "area_m2": round(region.area_m2, 1),
        "vertex_count": region.vertex_count,
        "extent": [round(v, 7) for v in region.geom.extent],
    }


def _lock_draft(generation_id: int, refusal: str) -> Generation:
    """Lock a generation row for this transaction; refuse unless it is a draft."""
    generation = Generation.objects.select_for_update().get(pk=generation_id)
    if generation.status != GenerationStatus.DRAFT:
        raise GeographyError(f"generation {generation.number} is {generation.status}; {refusal}")
    return generation


def _ancestor(parent: Region | None, level: str) -> Region | None:
    if parent is None:
        return None
    if parent.level == level:
        return parent
    return getattr(parent, level)  # type: ignore[no-any-return]


def generation_validate(*, generation: Generation) -> Report:
    report = validate_generation(generation)
    Generation.objects.filter(pk=generation.pk).update(
        validated_at=timezone.now(), validation_report=report.as_dict()
    )
    generation.refresh_from_db()
    return report


def generation_activate(*, generation: Generation, by: Any = None) -> Generation:
    """Validate the draft and, if clean, make it the active generation in one transaction.

    The previously active generation is retired. Every process's locator switches: this one on
    commit, the others within GRIDMAP_LOCATOR_RECHECK_SECONDS.
    """
    with transaction.atomic():
        generation = _lock_draft(generation.pk, "only a draft can be activated")
        report = validate_generation(generation)
        now = timezone.now()
        if not report.ok:
            Generation.objects.filter(pk=generation.pk).update(
                validated_at=now, validation_report=report.as_dict()
            )
            # The report is stored (the transaction commits); the refusal is raised after it.
            refused = GenerationInvalid(report)
        else:
            refused = None
            previous = list(
                Generation.objects.select_for_update().filter(status=GenerationStatus.ACTIVE)
            )
            Generation.objects.filter(pk__in=[g.pk for g in previous]).update(
                status=GenerationStatus.RETIRED, retired_at=now
            )
            generation.status = GenerationStatus.ACTIVE
            generation.activated_at = now
            generation.activated_by = by if getattr(by, "pk", None) else None
            generation.validated_at = now
            generation.validation_report = report.as_dict()
            generation.save(
                update_fields=[
                    "status",
                    "activated_at",
                    "activated_by",
                    "validated_at",
                    "validation_report",
                ]
            )
            transaction.on_commit(locator.invalidate)
            retired = [g.number for g in previous]
            audit_record(
                actor=by,
                action="gridmap.generation_activate",
                obj_type="gridmap.generation",
                obj_id=generation.pk,
                before={"number": generation.number, "status": "draft", "active": retired},
                after={"number": generation.number, "status": "active", "retired": retired},
            )
            publish(
                type="gridmap.generation_activated",
                payload=events.generation_activated(generation=generation, retired=previous),
                scopes=events.district_scopes(generation),
            )
            log.info(
                "generation %s activated (retired %s)",
                generation.number,
                ", ".join(str(g.number) for g in previous) or "none",
            )
    if refused is not None:
        raise refused
    return generation
