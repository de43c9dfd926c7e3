"""Admin of the reference data — categories with their stage limits and duplicate-suggestion
settings, and the working calendar — and a read-only view of cases with their timelines and
photos.

Categories, their codes and their names (Chinese and English) come from the shipped catalogue
(incidents_load_categories) and are shown, not edited; here an administrator adjusts the local
settings — default department, default severity, active — and the time limit of each stage.
Holidays and make-up days are added, corrected or confirmed here (provisional rows are flagged
until someone checks them against the State Council notice).
Every save goes through incidents.services, which marks the row as edited so that reloading the
shipped data keeps it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.departments import department_names, known_departments
from audit.services import request_ip
from incidents.models import (
    AlarmSource,
    CalendarDay,
    Category,
    Channel,
    Incident,
    IncidentPhoto,
    IncidentTransition,
    StageLimit,
)
from incidents.services import (
    calendar_day_delete,
    calendar_day_save,
    category_save,
    stage_limit_save,
)
from incidents.services.bulk import BULK_CHANNELS

WEEKDAYS = (_("周一"), _("周二"), _("周三"), _("周四"), _("周五"), _("周六"), _("周日"))


class StageLimitInline(admin.TabularInline):
    model = StageLimit
    fields = ("stage", "amount", "unit", "basis", "source_text", "note", "edited_at")
    readonly_fields = ("stage", "edited_at")
    extra = 0
    max_num = len(StageLimit._meta.get_field("stage").choices or ())
    can_delete = False
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})},
    }

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # One limit per stage, created with the category by the loader.
        return False


class CategoryForm(ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Category
        fields = (
            "department_code",
            "department_text",
            "department_inferred",
            "default_severity",
            "active",
            "duplicate_radius_m",
            "duplicate_window_hours",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = " · ".join(f"{code} {name}" for code, name in department_names().items())
        self.fields["department_code"].help_text = gettext("已知部门代码：%(codes)s") % {
            "codes": known
        }

    def clean_department_code(self) -> str:
        # Cases of the category are dispatched to this code by default: one that no department
        # answers to would leave them with no handler.
        code = self.cleaned_data["department_code"].strip()
        if code not in known_departments():
            raise forms.ValidationError(
                gettext("“%(code)s”不是已知的部门代码。") % {"code": code}, code="unknown"
            )
        return code


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = (
        "code",
        "name",
        "kind",
        "major",
        "department_code",
        "default_severity",
        "handle_limit",
        "is_local",
        "active",
        "edited",
    )
    list_display_links = ("code", "name")
    list_filter = ("kind", "major_name", "department_code", "is_local", "active")
    search_fields = ("^code", "name", "name_en", "component_name", "department_code")
    list_per_page = 100
    inlines = [StageLimitInline]
    readonly_fields = (
        "code",
        "name",
        "name_en",
        "kind",
        "major",
        "major_name_en",
        "component_name",
        "component_name_en",
        "is_local",
        "source",
        "edited_at",
        "edited_by",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "code",
                    "name",
                    "name_en",
                    "kind",
                    "major",
                    "major_name_en",
                    "component_name",
                    "component_name_en",
                    "is_local",
                )
            },
        ),
        (
            _("本地设定"),
            {
                "fields": (
                    "department_code",
                    "department_text",
                    "department_inferred",
                    "default_severity",
                    "active",
                )
            },
        ),
        (
            _("疑似重复提示"),
            {
                "fields": ("duplicate_radius_m", "duplicate_window_hours"),
                "description": _(
                    "上报时提示同一事项、在此半径内、此时间窗内先上报且未办结的案件；"
                    "填 0 关闭提示。"
                ),
            },
        ),
        (_("来源与修改记录"), {"fields": ("source", "edited_at", "edited_by", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).prefetch_related("limits")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Categories come from the catalogue (manage.py incidents_load_categories).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Category | None = None) -> bool:
        # Cases refer to their category: switch one off with "启用" instead.
        return False

    @admin.display(description=_("大类"), ordering="major_code")
    def major(self, obj: Category) -> str:
        return f"{obj.major_code} {obj.major_name}"

    @admin.display(description=_("处置时限"))
    def handle_limit(self, obj: Category) -> str:
        try:
            limit = obj.limit_for("handle")
        except StageLimit.DoesNotExist:
            return "—"
        mark = "" if limit.basis == "local" else " *"
        return f"{limit.amount} {limit.get_unit_display()}{mark}"

    @admin.display(description=_("已修改"), boolean=True)
    def edited(self, obj: Category) -> bool:
        return obj.edited_at is not None or any(limit.edited_at for limit in obj.limits.all())

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        category_save(
            category=obj, by=request.user, changed=form.changed_data, ip=request_ip(request)
        )

    def save_formset(
        self,
        request: HttpRequest,
        form: Any,
        formset: BaseInlineFormSet,
        change: bool,  # type: ignore[type-arg]
    ) -> None:
        # save(commit=False) records what changed for the admin's history; the service saves.
        formset.save(commit=False)
        for limit_form in formset.forms:
            if limit_form.has_changed():
                stage_limit_save(
                    limit=limit_form.instance,
                    by=request.user,
                    changed=limit_form.changed_data,
                    ip=request_ip(request),
                )


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ("date", "weekday", "kind", "name", "provisional", "from_data", "edited_at")
    list_filter = ("kind", "provisional", "from_data", "name")
    date_hierarchy = "date"
    search_fields = ("name", "note", "source")
    list_per_page = 200
    actions = ["confirm"]
    fields = (
        "date",
        "kind",
        "name",
        "provisional",
        "source",
        "note",
        "from_data",
        "edited_at",
        "edited_by",
        "updated_at",
    )
    readonly_fields = ("from_data", "edited_at", "edited_by", "updated_at")

    @admin.display(description=_("星期"))
    def weekday(self, obj: CalendarDay) -> str:
        return str(WEEKDAYS[obj.date.weekday()])

    def save_model(self, request: HttpRequest, obj: CalendarDay, form: Any, change: bool) -> None:
        calendar_day_save(day=obj, by=request.user, ip=request_ip(request))

    def delete_model(self, request: HttpRequest, obj: CalendarDay) -> None:
        calendar_day_delete(day=obj, by=request.user, ip=request_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CalendarDay]) -> None:
        for day in queryset:
            calendar_day_delete(day=day, by=request.user, ip=request_ip(request))

    @admin.action(description=_("已与国务院通知核对（取消“暂定”）"), permissions=["change"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[CalendarDay]) -> None:
        count = 0
        for day in queryset.filter(provisional=True):
            day.provisional = False
            calendar_day_save(day=day, by=request.user, ip=request_ip(request))
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d 天已确认。", "%(count)d 天已确认。", count) % {"count": count},
            messages.SUCCESS,
        )


class IncidentTransitionInline(admin.TabularInline):
    model = IncidentTransition
    fields = ("created_at", "action", "from_status", "to_status", "actor", "reason_code", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IncidentPhotoInline(admin.TabularInline):
    """A case's photos, read-only. Images load through the API's scoped URLs (the admin's session
    signs them in), never from /media/: the admin sees what its role may see."""

    model = IncidentPhoto
    fields = (
        "thumbnail",
        "kind",
        "width",
        "height",
        "original_link",
        "original_format",
        "original_bytes",
        "sha256",
        "uploaded_by",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("照片"))
    def thumbnail(self, obj: IncidentPhoto) -> str:
        url = reverse("incident-photo", args=[obj.incident.number, obj.pk])
        return format_html(
            '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="{}" '
            'style="max-width:160px;max-height:120px;display:block"></a>',
            url,
            url,
            gettext("照片 %(id)s") % {"id": obj.pk},
        )

    @admin.display(description=_("原图SHA-256"))
    def sha256(self, obj: IncidentPhoto) -> str:
        return format_html(
            '<code style="word-break:break-all;display:inline-block;max-width:16em">{}</code>',
            obj.original_sha256,
        )

    @admin.display(description=_("原图"))
    def original_link(self, obj: IncidentPhoto) -> str:
        # The URL decides who gets the original (staff of the hierarchy, auditors, admins, the
        # uploader); anyone else is refused there.
        url = reverse("incident-photo-original", args=[obj.incident.number, obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("下载原图"))


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Cases, read-only: every change goes through incidents.services (audited, published), so
    the admin only looks. The reporter's phone number is shown masked."""

    list_display = (
        "number",
        "status",
        "category",
        "street_name",
        "community_name",
        "owner",
        "assigned_department_code",
        "stage",
        "stage_deadline",
        "created_at",
    )
    list_filter = ("status", "channel", "owner_level", "triage", "street_name", "severity")
    search_fields = ("^number", "description", "grid_code", "=assigned_department_code")
    date_hierarchy = "created_at"
    list_select_related = ("category",)
    inlines = [IncidentPhotoInline, IncidentTransitionInline]
    fieldsets = (
        (
            None,
            {"fields": ("number", "status", "channel", "category", "severity", "description")},
        ),
        (
            _("位置"),
            {
                "fields": (
                    "location_text",
                    "raw_input",
                    "path",
                    "generation_number",
                    "resolution",
                    "on_border",
                    "triage",
                )
            },
        ),
        (_("上报人"), {"fields": ("reporter", "reporter_name", "masked_phone")}),
        (
            _("办理"),
            {
                "fields": (
                    "owner",
                    "assigned_department_code",
                    "support_department_codes",
                    "support_arrived_codes",
                    "plan_code",
                    "assignee",
                    "handled_by",
                    "feedback",
                    "stage",
                    "stage_started_at",
                    "stage_deadline",
                    "stage_warned",
                    "extension_requested_until",
                    "extension_reason",
                    "send_backs",
                    "reworks",
                    "merged_into",
                    "satisfaction",
                )
            },
        ),
        (
            _("时间"),
            {"fields": ("client_reported_at", "created_at", "updated_at", "closed_at")},
        ),
    )
    readonly_fields = tuple(  # everything shown is read-only
        str(name) for _title, options in fieldsets for name in options["fields"]
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # cases come in through incidents.services.incident_report

    def has_change_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False  # a case is never deleted; the timeline and audit refer to it

    @admin.display(description=_("责任单位"), ordering="owner_code")
    def owner(self, obj: Incident) -> str:
        return f"{obj.get_owner_level_display()} {obj.owner_code}"

    @admin.display(description=_("位置（WGS-84）"))
    def location_text(self, obj: Incident) -> str:
        return f"{obj.location.x:.6f}, {obj.location.y:.6f}"

    @admin.display(description=_("原始输入"))
    def raw_input(self, obj: Incident) -> str:
        return f"{obj.raw_lon}, {obj.raw_lat} ({obj.raw_crs})"

    @admin.display(description=_("区域"))
    def path(self, obj: Incident) -> str:
        return " / ".join(
            f"{name} {code}"
            for name, code in (
                (obj.district_name, obj.district_code),
                (obj.street_name, obj.street_code),
                (obj.community_name, obj.community_code),
                (obj.grid_name, obj.grid_code),
            )
        )

    @admin.display(description=_("上报人电话"))
    def masked_phone(self, obj: Incident) -> str:
        return obj.masked_phone


class _AlarmChannelFilter(admin.SimpleListFilter):
    """The channels bulk intake takes alarms on, not every channel a case may come in on."""

    title = pgettext_lazy("field", "来源渠道")
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(channel, str(Channel(channel).label)) for channel in BULK_CHANNELS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AlarmSource]) -> Any:
        return queryset.filter(channel=self.value()) if self.value() else queryset


@admin.register(AlarmSource)
class AlarmSourceAdmin(admin.ModelAdmin):
    """The sensors and cameras integrations have sent alarms from, busiest first; read-only
    (bulk intake counts them, incidents.services.bulk)."""

    list_display = ("source_ref", "category", "channel", "account", "alarms", "first_alarm_at")
    list_filter = (_AlarmChannelFilter,)
    search_fields = ("^source_ref",)
    ordering = ("-alarms",)
    list_select_related = ("category", "account")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AlarmSource | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AlarmSource | None = None) -> bool:
        return False  # the sensor dedupe's lock rows: deleting one would restart its count
