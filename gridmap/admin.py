"""Admin of the geography: boundary generations (validate, activate) and their regions.

Boundaries change by importing a new generation (manage.py gridmap_import), never by editing a
live one: regions of an active or retired generation are read-only here, and only a draft's
region can be corrected (name, outline, attributes) before the draft is validated and activated.
Validation and activation go through gridmap.services like every other change to the geography.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.gis.admin import GISModelAdmin
from django.db.models import QuerySet
from django.forms import Media
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from gridmap.models import Generation, Level, Region, ordered_counts
from gridmap.services import (
    GenerationInvalid,
    GeographyError,
    generation_activate,
    generation_validate,
    region_update_boundary,
)
from gridmap.widgets import OfflineOpenLayersWidget

# The report table shows at most this many findings; the rest are counted.
REPORT_ROWS = 500


def _level_label(level: str) -> str:
    try:
        return str(Level(level).label)
    except ValueError:
        return level


def _counts_text(counts: dict[str, int]) -> str:
    return " · ".join(f"{_level_label(level)} {count}" for level, count in ordered_counts(counts))


def _regions_html(codes: list[str], names: list[str]) -> SafeString | str:
    if not codes:
        return "—"
    return format_html_join(
        mark_safe("<br>"),
        "<code>{}</code> {}",
        ((code, names[i] if i < len(names) else "") for i, code in enumerate(codes)),
    )


def report_html(report: dict[str, Any] | None) -> SafeString:
    """A stored validation report (Report.as_dict()) as an HTML summary and table of findings."""
    if not report:
        return format_html(
            '<div class="gridmap-report" data-testid="validation-report">{}</div>',
            gettext("尚未校验：在版本列表中选中本版本，执行“校验 validate”。"),
        )
    errors: list[dict[str, Any]] = report.get("errors") or []
    warnings: list[dict[str, Any]] = report.get("warnings") or []
    if errors:
        verdict = format_html(
            '<span class="errors">{}</span>',
            gettext("校验未通过：%(errors)d 个错误，%(warnings)d 个警告")
            % {"errors": len(errors), "warnings": len(warnings)},
        )
    else:
        verdict = format_html(
            '<span class="ok">{}</span>',
            gettext("校验通过：无错误，%(warnings)d 个警告") % {"warnings": len(warnings)},
        )
    findings = errors + warnings
    rows = format_html_join(
        "\n",
        '<tr><td class="severity-{}">{}</td><td class="check">{}</td><td class="nowrap">{}</td>'
        '<td class="regions">{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="message">{}</td></tr>',
        (
            (
                finding.get("severity", ""),
                gettext("错误") if finding.get("severity") == "error" else gettext("警告"),
                finding.get("title") or finding.get("check", ""),
                _level_label(finding.get("level", "")),
                _regions_html(finding.get("codes") or [], finding.get("names") or []),
                "{:.6f}, {:.6f}".format(*finding["location"]) if finding.get("location") else "—",
                f"{finding['area_m2']:,.1f}" if finding.get("area_m2") is not None else "—",
                finding.get("message", ""),
            )
            for finding in findings[:REPORT_ROWS]
        ),
    )
    more = ""
    if len(findings) > REPORT_ROWS:
        more = format_html(
            "<p>{}</p>",
            gettext("另有 %(count)d 条未列出；完整报告：manage.py gridmap_validate")
            % {"count": len(findings) - REPORT_ROWS},
        )
    table: SafeString | str = ""
    if findings:
        table = format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>{}",
            gettext("级别"),
            gettext("检查项"),
            gettext("层级"),
            gettext("区域（代码 名称）"),
            gettext("位置（经度, 纬度）"),
            gettext("面积 (m²)"),
            gettext("说明"),
            rows,
            more,
        )
    return format_html(
        '<div class="gridmap-report" data-testid="validation-report"><p>{}</p><p>{}</p>{}</div>',
        verdict,
        _counts_text(report.get("counts") or {}),
        table,
    )


class _NoBulkDelete:
    """Deleting generations or regions one by one, with the permission checks, never in bulk."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        return actions  # type: ignore[no-any-return]


@admin.register(Generation)
class GenerationAdmin(_NoBulkDelete, admin.ModelAdmin):
    list_display = (
        "number",
        "label",
        "status",
        "synthetic",
        "counts",
        "validation_state",
        "validated_at",
        "activated_at",
    )
    list_display_links = ("number", "label")
    list_filter = ("status", "synthetic")
    search_fields = ("label", "source")
    actions = ["validate", "activate"]
    fieldsets = (
        (None, {"fields": ("number", "label", "status", "synthetic", "source", "regions")}),
        (_("校验"), {"fields": ("validated_at", "report")}),
        (_("启用记录"), {"fields": ("created_at", "activated_at", "activated_by", "retired_at")}),
    )
    readonly_fields = (
        "number",
        "status",
        "synthetic",
        "source",
        "regions",
        "validated_at",
        "report",
        "created_at",
        "activated_at",
        "activated_by",
        "retired_at",
    )

    class Media:
        css = {"all": ("gridmap/admin.css",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A generation is created with its regions by gridmap_import (or gridmap_demo).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Generation | None = None) -> bool:
        # Active and retired generations are history (incidents keep the generation they were
        # routed under); only a draft may be thrown away.
        if obj is not None and not obj.is_draft:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("区/街道/社区/网格"))
    def counts(self, obj: Generation) -> SafeString | str:
        counts = obj.region_counts()
        if not counts:
            return "—"
        return format_html(
            '<span title="{}">{}</span>',
            _counts_text(dict(counts)),
            " / ".join(str(count) for _level, count in counts),
        )

    @admin.display(description=_("校验结果"))
    def validation_state(self, obj: Generation) -> SafeString | str:
        report: dict[str, Any] | None = obj.validation_report
        if not report:
            return gettext("未校验")
        errors = len(report.get("errors") or [])
        if errors:
            return format_html(
                '<span class="gridmap-errors">{}</span>',
                gettext("%(errors)d 个错误") % {"errors": errors},
            )
        return format_html('<span class="gridmap-ok">{}</span>', gettext("通过"))

    @admin.display(description=_("校验报告"))
    def report(self, obj: Generation) -> SafeString:
        return report_html(obj.validation_report)

    @admin.display(description=_("区域"))
    def regions(self, obj: Generation) -> SafeString:
        url = reverse("admin:gridmap_region_changelist") + f"?generation__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, gettext("查看本版本的区域"))

    @admin.action(description=_("校验 validate"), permissions=["change"])
    def validate(self, request: HttpRequest, queryset: QuerySet[Generation]) -> None:
        for generation in queryset.order_by("number"):
            report = generation_validate(generation=generation)
            values = {
                "number": generation.number,
                "errors": len(report.errors),
                "warnings": len(report.warnings),
            }
            if report.ok:
                self.message_user(
                    request,
                    gettext("版本 #%(number)d 校验通过：无错误，%(warnings)d 个警告。") % values,
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    gettext(
                        "版本 #%(number)d 校验未通过：%(errors)d 个错误，%(warnings)d 个警告；"
                        "详见该版本的校验报告。"
                    )
                    % values,
                    messages.ERROR,
                )

    @admin.action(description=_("启用 activate"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Generation]) -> None:
        generations = list(queryset[:2])
        if len(generations) != 1:
            self.message_user(
                request, gettext("一次只能启用一个版本，请只选择一个。"), messages.ERROR
            )
            return
        generation = generations[0]
        try:
            generation_activate(generation=generation, by=request.user)
        except GenerationInvalid as exc:
            self.message_user(
                request,
                gettext(
                    "版本 #%(number)d 未启用：校验发现 %(errors)d 个错误，"
                    "须先修正边界（导入新草稿）。"
                )
                % {"number": generation.number, "errors": len(exc.report.errors)},
                messages.ERROR,
            )
        except GeographyError as exc:
            self.message_user(
                request,
                gettext("版本 #%(number)d 未启用：%(reason)s")
                % {"number": generation.number, "reason": exc},
                messages.ERROR,
            )
        else:
            self.message_user(
                request,
                gettext("版本 #%(number)d 已启用，原启用版本已停用；定位服务已切换到新边界。")
                % {"number": generation.number},
                messages.SUCCESS,
            )


@admin.register(Region)
class RegionAdmin(_NoBulkDelete, GISModelAdmin):
    # django-stubs types gis_widget as OSMWidget; any OpenLayersWidget subclass works.
    gis_widget = OfflineOpenLayersWidget  # type: ignore[assignment]
    list_display = ("code", "name", "level", "parent_name", "generation_number")
    list_filter = ("generation", "level")
    search_fields = ("^code", "name")
    list_select_related = ("generation", "parent")
    list_per_page = 100
    readonly_fields = (
        "generation",
        "level",
        "code",
        "path",
        "area",
        "vertex_count",
        "boundary_map",
    )

    class Media:
        css = {"all": ("gridmap/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Region]:
        # The list does not need the outlines (a street's is tens of kilobytes).
        return (
            super()
            .get_queryset(request)
            .defer("geom", "attributes", "parent__geom", "parent__attributes")
        )

    @staticmethod
    def _is_locked(obj: Region | None) -> bool:
        return obj is not None and not obj.generation.is_draft

    def get_fieldsets(self, request: HttpRequest, obj: Region | None = None) -> Any:
        locked = self._is_locked(obj)
        return (
            (
                None,
                {
                    "fields": ("generation", "level", "code", "name", "path"),
                    "description": gettext(
                        "本区域属于已启用或已停用的边界版本，只读。修改边界请导入新版本"
                        "（manage.py gridmap_import），校验通过后启用。"
                    )
                    if locked
                    else None,
                },
            ),
            (
                _("边界"),
                {"fields": ("boundary_map" if locked else "geom", "area", "vertex_count")},
            ),
            (_("属性"), {"fields": ("attributes",)}),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Regions arrive with their generation (gridmap_import fills codes, parents, ancestors).
        return False

    def has_change_permission(self, request: HttpRequest, obj: Region | None = None) -> bool:
        if self._is_locked(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Region | None = None) -> bool:
        if self._is_locked(obj):
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("上级"), ordering="parent__code")
    def parent_name(self, obj: Region) -> str:
        return f"{obj.parent.name} {obj.parent.code}" if obj.parent else "—"

    @admin.display(description=_("边界版本"), ordering="generation__number")
    def generation_number(self, obj: Region) -> str:
        return f"#{obj.generation.number} {obj.generation.get_status_display()}"

    @admin.display(description=_("面积"))
    def area(self, obj: Region) -> str:
        return f"{obj.area_m2 / 1e6:,.3f} km² ({obj.area_m2:,.0f} m²)"

    @admin.display(description=_("所属"))
    def path(self, obj: Region) -> str:
        names = [r.name for r in (obj.district, obj.street, obj.community) if r is not None]
        return " › ".join(names) or "—"

    @admin.display(description=_("边界"))
    def boundary_map(self, obj: Region) -> SafeString:
        widget = self.gis_widget(attrs={"disabled": True})
        return widget.render("geom", obj.geom, attrs={"id": "id_geom"})

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Region | None = None,
    ) -> HttpResponse:
        if self._is_locked(obj):
            # The read-only map is not a form field, so the form does not bring its media.
            context["media"] = context.get("media", Media()) + self.gis_widget().media
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: Region, form: Any, change: bool) -> None:
        # A corrected outline (or name) of a draft region goes through the service, which keeps
        # the derived figures right and drops the draft's now stale validation report.
        region_update_boundary(region=obj, geom=obj.geom, by=request.user)
