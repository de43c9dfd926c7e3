"""The district's geography: regions of the 1+6+N hierarchy and their boundary generations.

一网统管 organises a district as a tree of regions, each owned by a command centre:

    区 district (1, 区指挥中心)
      └ 街道 street (6 in Longhua, 街道分中心)
          └ 社区 community (≈50–63, 社区工作站)
              └ 网格 grid cell (≈1–3k, each with its 网格员 grid workers)

Every region is a polygon with a parent. Codes follow the national layout: a district has the
6-digit administrative code (龙华区 = 440309), a street appends 3 digits (440309001), a
community 3 more (440309001001) and a grid cell 3 more, giving the 15-digit grid code. Because
the codes nest, a code's prefix names every ancestor.

Boundaries are redrawn from time to time (a community is split, grid cells are re-cut). As in
mySociety MapIt, each complete set of boundaries is a *generation* (版本): a new one is imported as
a draft, validated (valid geometry; children cover their parent with no gaps, overlaps or
spill-over), and activated in one atomic switch that retires the previous one. An incident keeps
the generation and region path it was routed under, so redrawing never rewrites history.

Storage is WGS-84 longitude/latitude (SRID 4326) everywhere; GCJ-02/BD-09 and projected inputs
are converted at the edge (gridmap.crs, the import command).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

STORAGE_SRID = 4326


class Level(models.TextChoices):
    DISTRICT = "district", _("区")
    STREET = "street", _("街道")
    COMMUNITY = "community", _("社区")
    GRID = "grid", _("网格")


LEVEL_ORDER: tuple[str, ...] = (Level.DISTRICT, Level.STREET, Level.COMMUNITY, Level.GRID)
# Length of the region code at each level: 6 + 3 + 3 + 3.
CODE_LENGTH: dict[str, int] = {
    Level.DISTRICT: 6,
    Level.STREET: 9,
    Level.COMMUNITY: 12,
    Level.GRID: 15,
}


def parent_level(level: str) -> str | None:
    index = LEVEL_ORDER.index(level)
    return LEVEL_ORDER[index - 1] if index > 0 else None


def ordered_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """A {level: count} mapping (a validation report's "counts") in hierarchy order."""
    return [(level, counts[level]) for level in LEVEL_ORDER if level in counts]


class GenerationStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    ACTIVE = "active", _("启用")
    RETIRED = "retired", _("停用")


class GenerationQuerySet(models.QuerySet["Generation"]):
    def active(self) -> GenerationQuerySet:
        return self.filter(status=GenerationStatus.ACTIVE)


class Generation(models.Model):
    """One complete set of boundaries (边界版本). Exactly one generation is active at a time.

    draft → active → retired; only a draft accepts imports, only a draft that passes validation
    can be activated (gridmap.services.generation_activate).
    """

    number = models.PositiveIntegerField(_("版本号"), unique=True)
    label = models.CharField(_("说明"), max_length=200, blank=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=GenerationStatus.choices, default=GenerationStatus.DRAFT
    )
    # Plain words on where the lines come from; the demo partition says it is synthetic.
    source = models.TextField(_("来源"), blank=True)
    # True for the demo partition: street/community/grid lines drawn by an algorithm, not official.
    synthetic = models.BooleanField(_("合成演示划分"), default=False)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    validated_at = models.DateTimeField(_("校验时间"), null=True, blank=True)
    # The last validation report (gridmap.validation.Report.as_dict()).
    validation_report = models.JSONField(_("校验报告"), null=True, blank=True)
    activated_at = models.DateTimeField(_("启用时间"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("启用人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    retired_at = models.DateTimeField(_("停用时间"), null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("model", "边界版本")
        verbose_name_plural = pgettext_lazy("models", "边界版本")
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="gridmap_one_active_generation",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.label} ({self.get_status_display()})"

    @property
    def is_draft(self) -> bool:
        return self.status == GenerationStatus.DRAFT

    def region_counts(self) -> list[tuple[str, int]]:
        """(level, count) in hierarchy order, as the last validation counted them."""
        return ordered_counts((self.validation_report or {}).get("counts") or {})

    @property
    def validation_passed(self) -> bool:
        report: dict[str, Any] | None = self.validation_report
        return bool(report) and not report.get("errors")  # type: ignore[union-attr]


class RegionQuerySet(models.QuerySet["Region"]):
    def active(self) -> RegionQuerySet:
        return self.filter(generation__status=GenerationStatus.ACTIVE)

    def at_level(self, level: str) -> RegionQuerySet:
        return self.filter(level=level)


class Region(models.Model):
    """A district, street, community or grid cell of one generation.

    The ancestors are stored as foreign keys (district/street/community) besides `parent`, so a
    grid cell answers "which community, street, district?" without another spatial query or a
    walk up the tree.
    """

    generation = models.ForeignKey(
        Generation, verbose_name=_("边界版本"), on_delete=models.CASCADE, related_name="regions"
    )
    level = models.CharField(_("层级"), max_length=16, choices=Level.choices)
    code = models.CharField(_("代码"), max_length=15)
    name = models.CharField(_("名称"), max_length=100)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="children",
    )
    district = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    street = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    community = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    geom = models.MultiPolygonField(_("边界"), srid=STORAGE_SRID)
    area_m2 = models.FloatField(_("面积(平方米)"), default=0.0)
    vertex_count = models.PositiveIntegerField(_("顶点数"), default=0)
    # Source attributes worth keeping (e.g. another code list's code for the same street).
    attributes = models.JSONField(_("属性"), default=dict, blank=True)

    objects = RegionQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("model", "区域")
        verbose_name_plural = pgettext_lazy("models", "区域")
        ordering = ["generation", "code"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "code"], name="gridmap_region_code"),
        ]
        indexes = [models.Index(fields=["generation", "level"], name="gridmap_region_gen_level")]

    def __str__(self) -> str:
        return f"{self.name} {self.code}"

    def path(self) -> dict[str, Region | None]:
        return {
            "district": self.district if self.level != Level.DISTRICT else self,
            "street": self.street if self.level != Level.STREET else self,
            "community": self.community if self.level != Level.COMMUNITY else self,
            "grid": self if self.level == Level.GRID else None,
        }
