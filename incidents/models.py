"""Cases and what they are measured against: categories (事项), stage time limits (时限), the
working calendar (工作日历), and the incident (案件) itself with its readable timeline. The
workflow that moves an incident is data in incidents/workflow.py; every change goes through
incidents/services.py.

Categories — what kind of problem a case is
-------------------------------------------
GB/T 47678.5-2026《城市运行管理服务平台 第5部分：管理部件和事项》(in force 2026-07-01, replacing
GB/T 30428.2-2013) lists what a city-management platform handles, each with a 5-digit code: two
digits of major class (大类) and three of the item (小类).

* 部件 components (classes 01–05: 市政公用设施, 交通设施, 市容环卫设施, 园林绿化设施, 其他管理部件)
  are *things* on the street — a manhole cover, a street lamp, a tree. The standard's matter
  list (附录C) turns each into a matter with the same code: "<部件名>异常", e.g. 01001
  供水井盖 → 01001 供水井盖异常 (missing, broken, displaced…).
* 事件 events (classes 06–10: 市容环境类, 宣传广告类, 施工管理类, 街面秩序类, 其他事项类) are
  *situations* — exposed rubbish, a hawker on the pavement, dust from a building site.

Together they are the 250 事项 a case can be filed under. The standard has no class for
突发事件 (the legacy CJ/T 214 had one), yet a 一网统管 command centre runs emergencies — fire,
waterlogging, landslides, gas leaks — through the same loop. CityOps adds them as a **local**
class 90 (codes 90001…), flagged `is_local`, so they can never be mistaken for codes of the
standard. Emergencies carry a severity on the four levels of the Emergency Response Law
(《突发事件应对法》): 一般 Ⅳ, 较大 Ⅲ, 重大 Ⅱ, 特别重大 Ⅰ; each emergency category has a default
level that the operator raises as facts arrive.

Each category names a default handling department by its *code* (CGJ 城管, ZJJ 住建, SWJ 水务 …,
listed with their names in accounts/data/departments.csv). There is no department model: a
code is checked against that list, and a department handler's account carries its code.
The standard does not assign departments: the codes are inferred from Longhua's organisation and
flagged `department_inferred` until someone confirms them.

Stage time limits — 时限
-----------------------
Every stage of the closed loop has a clock: 立案 register, 派遣 dispatch, 签收 accept, 处置 handle,
核查 verify. A limit is an amount and a unit: 工作时 working hours and 工作日 working days follow
the working calendar below; 自然小时/分钟 calendar hours and minutes run day and night, holidays
included (emergencies, and hazards such as a missing manhole cover, are on the calendar clock).
Cities publish their limits in 立案结案标准 manuals; the shared data carries a few such figures
from other cities' manuals, so every limit records whether it is *sourced* (with the text it came
from) or a *local setting* chosen here. Limits are edited in the admin; an edited limit is marked
and survives a reload of the shipped defaults (incidents_load_categories) unless --reset.

The working calendar — 节假日与调休
----------------------------------
Working days are Monday–Friday, except public holidays, plus the make-up working days (调休上班):
each year the State Council's notice (国务院办公厅关于<年份>年部分节假日安排的通知; the one for
2026 was issued on 2025-11-04) joins holidays to weekends and moves the lost working days to
Saturdays or Sundays. Those dates are data —
`CalendarDay` rows loaded from incidents/data/holidays.csv and editable in the admin; rows that
were derived before the official notice appeared are marked `provisional`. Deadline arithmetic
is in incidents.calendar.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.gis.db.models import PointField
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Role
from accounts.models import mask_phone as mask_phone  # a reporter's phone as most roles see it
from config.languages import in_reader_language

# Roles that call reporters back (回访) and see their phone number in full; everyone else sees
# `masked_phone` (138****1234) unless they reported the case themselves (Incident.phone_for).
FULL_PHONE_ROLES = frozenset({Role.DISTRICT_OPERATOR, Role.STREET_OPERATOR, Role.COMMUNITY_STAFF})

# Local emergency class: outside the standard's 01–10 range, so a local code never collides
# with a future code of GB/T 47678.5.
EMERGENCY_MAJOR_CODE = "90"
EMERGENCY_MAJOR_NAME = "突发事件"


class CategoryKind(models.TextChoices):
    EVENT = "event", _("事件")
    COMPONENT = "component", _("部件")
    EMERGENCY = "emergency", _("突发事件")


class Severity(models.TextChoices):
    """The four levels of 《突发事件应对法》, least to most severe."""

    GENERAL = "IV", _("一般（Ⅳ级）")
    LARGER = "III", _("较大（Ⅲ级）")
    MAJOR = "II", _("重大（Ⅱ级）")
    GRAVEST = "I", _("特别重大（Ⅰ级）")


# Least to most severe: SEVERITY_ORDER.index(a) < SEVERITY_ORDER.index(b) means b is graver.
SEVERITY_ORDER: tuple[str, ...] = tuple(Severity.values)  # declared least to most severe


class Stage(models.TextChoices):
    """The stages of the closed loop that run against a time limit, in workflow order."""

    REGISTER = "register", _("立案")
    DISPATCH = "dispatch", _("派遣")
    ACCEPT = "accept", _("签收")
    HANDLE = "handle", _("处置")
    VERIFY = "verify", _("核查")


STAGE_ORDER: tuple[str, ...] = tuple(Stage.values)  # declared in workflow order


class TimeUnit(models.TextChoices):
    WORKING_HOURS = "working_hours", _("工作时")
    WORKING_DAYS = "working_days", _("工作日")
    CALENDAR_HOURS = "calendar_hours", _("小时（自然时间）")
    CALENDAR_MINUTES = "calendar_minutes", _("分钟（自然时间）")


WORKING_UNITS: frozenset[str] = frozenset({TimeUnit.WORKING_HOURS, TimeUnit.WORKING_DAYS})


class LimitBasis(models.TextChoices):
    SOURCED = "sourced", _("有出处")
    LOCAL = "local", _("本地设定")


class CategoryQuerySet(models.QuerySet["Category"]):
    def active(self) -> CategoryQuerySet:
        return self.filter(active=True)


class Category(models.Model):
    """One 事项 a case is filed under: an event, a component's "<部件>异常", or a local emergency.

    Code and name of the standard's matters come from the shipped CSVs and are not edited here;
    the department, default severity, active flag and the stage limits are local settings that
    the admin may change (`edited_at` records that they were, and a reload keeps them).

    Each name has an English spelling beside it (`name_en`, `major_name_en`,
    `component_name_en`), shipped in incidents/data/category_names_en.csv and stored by the
    same loader; pages show `label` and `major_label`, the name in the reader's language
    (ADR 0016). A blank English name reads as the Chinese.
    """

    code = models.CharField(
        _("事项代码"),
        max_length=5,
        unique=True,
        validators=[RegexValidator(r"^\d{5}$", _("事项代码为5位数字"))],
    )
    name = models.CharField(_("事项名称"), max_length=100)
    name_en = models.CharField(_("英文事项名称"), max_length=100, blank=True)
    kind = models.CharField(
        pgettext_lazy("field", "类型"), max_length=16, choices=CategoryKind.choices
    )
    major_code = models.CharField(_("大类代码"), max_length=2)
    major_name = models.CharField(_("大类名称"), max_length=50)
    major_name_en = models.CharField(_("英文大类名称"), max_length=100, blank=True)
    # For a component matter, the component (部件) whose abnormality it is: 01001 → 供水井盖.
    component_name = models.CharField(_("部件名称"), max_length=100, blank=True)
    component_name_en = models.CharField(_("英文部件名称"), max_length=100, blank=True)
    # True for CityOps' own categories (the emergency class 90), which are not in the standard.
    is_local = models.BooleanField(_("本地扩展"), default=False)
    # Where code and name come from (the standard via a transcription, or "local").
    source = models.TextField(_("来源"), blank=True)
    # Emergencies only: the level a new case starts at (blank for ordinary matters).
    default_severity = models.CharField(
        _("默认事件级别"), max_length=3, choices=Severity.choices, blank=True
    )
    # A dispatch.Department code (CGJ, ZJJ …); a code, because dispatch sits above incidents.
    department_code = models.CharField(_("默认处置部门代码"), max_length=32)
    # The department as written in the source (several departments, roles in brackets).
    department_text = models.CharField(_("处置部门（原文）"), max_length=200, blank=True)
    # True while the department is CityOps' inference rather than a confirmed local rule.
    department_inferred = models.BooleanField(_("部门为推定"), default=True)
    active = models.BooleanField(_("启用"), default=True)
    # Duplicate suggestions at intake (疑似重复): open cases of this category within this many
    # metres, reported within this many hours. Local settings, editable in the admin.
    duplicate_radius_m = models.PositiveIntegerField(_("疑似重复半径（米）"), default=100)
    duplicate_window_hours = models.PositiveIntegerField(_("疑似重复时间窗（小时）"), default=72)
    edited_at = models.DateTimeField(_("后台修改时间"), null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("修改人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = CategoryQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("model", "事项分类")
        verbose_name_plural = pgettext_lazy("models", "事项分类")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="emergency") | ~Q(default_severity=""),
                name="incidents_emergency_category_has_severity",
            ),
        ]
        indexes = [models.Index(fields=["kind", "major_code"], name="incidents_category_kind")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def label(self) -> str:
        """The name in the reader's language: "暴露垃圾" or "Exposed garbage"."""
        return in_reader_language(self.name, self.name_en)

    @property
    def major_label(self) -> str:
        """The major class's name in the reader's language: "市容环境类" or "City appearance
        and environment"."""
        return in_reader_language(self.major_name, self.major_name_en)

    @property
    def component_label(self) -> str:
        """A component matter's component in the reader's language ("" for other matters)."""
        return in_reader_language(self.component_name, self.component_name_en)

    @property
    def search_aliases(self) -> str:
        """What a category search matches besides the code, `label` and `major_label`: the
        Chinese names when those are English, so an operator reading English may still type
        "垃圾"; nothing when they are the Chinese already."""
        names = (self.name, self.major_name)
        return " ".join(names) if (self.label, self.major_label) != names else ""

    @property
    def is_emergency(self) -> bool:
        return self.kind == CategoryKind.EMERGENCY

    def limit_for(self, stage: str) -> StageLimit:
        """The limit of one stage (uses prefetched `limits` when present)."""
        for limit in self.limits.all():
            if limit.stage == stage:
                return limit
        raise StageLimit.DoesNotExist(f"{self.code} has no {stage} limit")

    def clean(self) -> None:
        if self.kind == CategoryKind.EMERGENCY and not self.default_severity:
            raise ValidationError({"default_severity": _("突发事件须有默认事件级别")})


class StageLimit(models.Model):
    """The time limit (时限) of one stage for one category: amount + unit + where it comes from."""

    category = models.ForeignKey(
        Category, verbose_name=_("事项分类"), on_delete=models.CASCADE, related_name="limits"
    )
    stage = models.CharField(_("环节"), max_length=16, choices=Stage.choices)
    amount = models.PositiveIntegerField(_("时限"))
    unit = models.CharField(_("单位"), max_length=20, choices=TimeUnit.choices)
    basis = models.CharField(
        _("依据"), max_length=16, choices=LimitBasis.choices, default=LimitBasis.LOCAL
    )
    # For a sourced limit: the figures and the document they were taken from, as cited.
    source_text = models.TextField(_("出处原文"), blank=True)
    # Why this value (for a local setting: the rule that chose it).
    note = models.CharField(_("说明"), max_length=200, blank=True)
    edited_at = models.DateTimeField(_("后台修改时间"), null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("修改人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = pgettext_lazy("model", "环节时限")
        verbose_name_plural = pgettext_lazy("models", "环节时限")
        ordering = ["category", "id"]
        constraints = [
            models.UniqueConstraint(fields=["category", "stage"], name="incidents_limit_stage"),
            models.CheckConstraint(condition=Q(amount__gte=1), name="incidents_limit_positive"),
            models.CheckConstraint(
                condition=~Q(basis="sourced") | ~Q(source_text=""),
                name="incidents_sourced_limit_cites_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_stage_display()} {self.amount} {self.get_unit_display()}"

    @property
    def is_working_time(self) -> bool:
        return self.unit in WORKING_UNITS

    def clean(self) -> None:
        if self.amount is not None and self.amount < 1:
            raise ValidationError({"amount": _("时限至少为1")})
        if self.basis == LimitBasis.SOURCED and not self.source_text.strip():
            raise ValidationError({"source_text": _("“有出处”的时限须填写出处原文")})


class CalendarDayKind(models.TextChoices):
    HOLIDAY = "holiday", _("放假")
    MAKEUP_WORKDAY = "makeup_workday", _("调休上班")


class CalendarDay(models.Model):
    """A date whose working status differs from its weekday: a holiday, or a make-up workday.

    Every day of an official holiday span is a row (weekend days inside it too, so the span reads
    whole); a 调休上班 day is a Saturday or Sunday worked in exchange for a weekday off.
    """

    date = models.DateField(_("日期"), unique=True)
    kind = models.CharField(
        pgettext_lazy("field", "类型"), max_length=16, choices=CalendarDayKind.choices
    )
    name = models.CharField(_("节日"), max_length=50)
    # Derived before the official notice was published (or found): to be checked by an admin.
    provisional = models.BooleanField(_("暂定"), default=False)
    source = models.TextField(_("依据"), blank=True)
    note = models.TextField(_("备注"), blank=True)
    # Loaded from incidents/data/holidays.csv (a reload may update or remove it unless edited);
    # False for a day an admin added.
    from_data = models.BooleanField(_("来自数据文件"), default=False)
    edited_at = models.DateTimeField(_("后台修改时间"), null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("修改人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "节假日/调休日")
        verbose_name_plural = pgettext_lazy("models", "节假日/调休日")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date.isoformat()} {self.name} {self.get_kind_display()}"

    def clean(self) -> None:
        if (
            self.kind == CalendarDayKind.MAKEUP_WORKDAY
            and self.date is not None
            and self.date.weekday() < 5
        ):
            raise ValidationError({"date": _("调休上班日须为周六或周日")})


def _calendar_changed(**kwargs: Any) -> None:
    # Cache invalidation only (allowed for signals by the house style): any write to the
    # calendar, from the admin, a loader or a shell, drops this process's cached calendar.
    from incidents import calendar

    calendar.invalidate_on_commit()


post_save.connect(_calendar_changed, sender=CalendarDay, dispatch_uid="incidents_calendar_save")
post_delete.connect(_calendar_changed, sender=CalendarDay, dispatch_uid="incidents_calendar_delete")


# --- the incident ------------------------------------------------------------------------------


class Channel(models.TextChoices):
    """Where a report came in (来源渠道)."""

    GRID_WORKER = "grid_worker", _("网格员上报")
    HOTLINE_12345 = "hotline_12345", _("12345热线")
    CITIZEN = "citizen", _("市民上报")
    SENSOR = "sensor", _("物联感知")
    VIDEO_AI = "video_ai", _("视频智能识别")
    OPEN311 = "open311", _("Open311")
    CONSOLE = "console", _("指挥中心录入")


class IncidentStatus(models.TextChoices):
    """Where a case is in the closed loop. The moves between them are incidents.workflow."""

    REPORTED = "reported", _("已上报（待立案）")
    REGISTERED = "registered", _("已立案（待派遣）")
    # The same words as the actions (incidents.workflow), which English names as verbs.
    REJECTED = "rejected", pgettext_lazy("status", "不予立案")
    DISPATCHED = "dispatched", _("已派遣（待签收）")
    RETURNED = "returned", _("已退单（待重新派遣）")
    ACCEPTED = "accepted", _("已签收")
    HANDLING = "handling", _("处置中")
    FED_BACK = "fed_back", _("已反馈（待核查）")
    VERIFIED = "verified", _("核查通过（待结案）")
    CLOSED = "closed", _("已结案")
    EVALUATED = "evaluated", _("已评价")
    PARKED = "parked", pgettext_lazy("status", "挂账")
    MERGED = "merged", _("已合并")


# A case in one of these is finished: no clock runs, it is not in anybody's queue.
FINISHED_STATUSES: frozenset[str] = frozenset(
    {
        IncidentStatus.REJECTED,
        IncidentStatus.CLOSED,
        IncidentStatus.EVALUATED,
        IncidentStatus.MERGED,
    }
)
CLOSED_STATUSES: frozenset[str] = frozenset({IncidentStatus.CLOSED, IncidentStatus.EVALUATED})


class OwnerLevel(models.TextChoices):
    """The command centre that owns a case now. Escalation (督办) and arbitration raise it."""

    COMMUNITY = "community", _("社区工作站")
    STREET = "street", _("街道分中心")
    DISTRICT = "district", _("区指挥中心")


# Lowest to highest: an operator acts on a case owned at their level or below.
OWNER_LEVEL_ORDER: tuple[str, ...] = tuple(OwnerLevel.values)


class LocateResolution(models.TextChoices):
    """How the point was resolved to a grid cell (gridmap.locator.Resolution)."""

    INSIDE = "inside", _("网格内")
    BORDER = "border", _("网格边界（按最小代码归属）")
    NEAREST = "nearest", _("网格外，就近归属（属地兜底）")


class SendBackReason(models.TextChoices):
    """Why a department returns a dispatched case (退单原因)."""

    NOT_OUR_JURISDICTION = "not_our_jurisdiction", _("非本部门职责")
    WRONG_LOCATION = "wrong_location", _("地址不准")
    INSUFFICIENT_INFO = "insufficient_info", _("信息不全")
    DUPLICATE = "duplicate", _("重复案件")
    OTHER = "other", _("其他")


SATISFACTION_MIN, SATISFACTION_MAX = 1, 5


class IncidentQuerySet(models.QuerySet["Incident"]):
    def open(self) -> IncidentQuerySet:
        """Cases still in somebody's queue (parked ones included: 挂账 is outstanding work)."""
        return self.exclude(status__in=FINISHED_STATUSES)

    def visible_to(self, user: Any) -> IncidentQuerySet:
        """The cases a user's role and place let them see (docs/incidents.md, "Who sees what").

        District operators, auditors and admins see all; a street operator the cases whose
        street code is their place, community staff their community's; a grid worker the cases
        in their grid cell and those they reported; a department handler the cases assigned to
        their department; an integration (sensor gateway, hotline platform, Open311 client) the
        cases it reported. Everyone with a role also sees the cases assigned to them personally.
        A user without a role, inactive or anonymous, sees nothing.
        """
        if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        role = getattr(user, "role", "")
        place = getattr(user, "place_code", "") or ""
        if role in (Role.DISTRICT_OPERATOR, Role.AUDITOR, Role.ADMIN):
            return self.all()
        mine = Q(assignee_id=user.pk)
        if role == Role.STREET_OPERATOR and place:
            return self.filter(Q(street_code=place) | mine)
        if role == Role.COMMUNITY_STAFF and place:
            return self.filter(Q(community_code=place) | mine)
        if role == Role.GRID_WORKER and place:
            return self.filter(Q(grid_code=place) | Q(reporter_id=user.pk) | mine)
        if role == Role.INTEGRATION:
            return self.filter(Q(reporter_id=user.pk))
        if role == Role.DEPARTMENT_HANDLER:
            department = getattr(user, "department_code", "") or ""
            if department:
                return self.filter(for_department(department) | mine)
            return self.filter(mine)
        return self.none()


def for_department(code: str, share: str = "") -> Q:
    """The cases of a department: dispatched to it (`share` "lead", 承办), or on which it was
    called out beside the department dispatched ("support", 协办, IncidentSupport); "" both."""
    lead = Q(assigned_department_code=code)
    supported = Q(pk__in=IncidentSupport.objects.filter(department_code=code).values("incident_id"))
    if share == "lead":
        return lead
    if share == "support":
        return supported & ~lead
    return lead | supported


class Incident(models.Model):
    """A case (案件): one problem in the city, from the first report until it is closed.

    The closed loop (闭环)
    ---------------------
    A case is *reported* (上报) by a grid worker on patrol, a citizen, the 12345 hotline, a sensor
    or a video-analysis platform. The command centre that owns the place *registers* it (立案:
    yes, this is a case for the city) or *rejects* it (不予立案, with a reason). A registered case
    is *dispatched* (派遣) to the department responsible (城管, 水务, 住建 …) or a person; the
    department *accepts* it (签收) or *sends it back* (退单) with a reason code; after three
    send-backs the district command centre arbitrates. The department *handles* it (处置) and
    *feeds back* (反馈) what it did; someone else — never the handler — *verifies* on the spot
    (核查): a pass lets the centre *close* it (结案), a fail sends it back to the department as
    *rework* (返工, counted). The reporter then *evaluates* (评价, satisfaction 1–5). Along the
    way a department may ask for more time (延期, approved by the centre), the centre may *park* a
    case that cannot be solved now (挂账, e.g. it needs a budget), a closed case may be
    *reopened*, and a duplicate of an open case is *merged* into it (and can be unmerged).
    The moves, who may make them, and from which statuses, are data: incidents.workflow.

    Where and who owns it
    ---------------------
    The point is located once, at intake, by gridmap.locator: grid cell (网格) → community (社区)
    → street (街道) → district (区). The codes and names of that path and the boundary generation
    are copied onto the case, so a later redrawing of boundaries never moves an old case. The
    command centre of the community owns a new case; a point outside every cell but within the
    district's buffer goes to its nearest cell and is owned by the district's triage queue
    (属地兜底, `triage`). Escalation (督办) and arbitration raise the owner one tier: an operator
    acts on cases owned at their level or below.

    Clocks
    ------
    Every stage (立案, 派遣, 签收, 处置, 核查) runs against the category's time limit on the working
    calendar (incidents.calendar). `stage`, `stage_started_at` and `stage_deadline` describe the
    clock running now; `stage_warned` records the 80 % warning (the escalation worker sets it).

    Records
    -------
    `IncidentTransition` rows are the readable timeline shown to users; the audit trail
    (audit.AuditEntry, hash-chained) is the tamper-evident record of the same changes. The
    reporter's phone number is kept in full for call-backs (回访) and shown masked
    (`masked_phone`) to those without a need.
    """

    # LH-YYYYMMDD-NNNNNN: the day (Asia/Shanghai) the server received it and its place that day.
    # Unique by a constraint in Meta, not unique=True: on PostgreSQL that would also make a
    # `varchar_pattern_ops` index for LIKE 'prefix%', which no query here asks (the list's
    # search is icontains, which no btree serves), ≈2.5 ms per 1,000 cases written.
    number = models.CharField(_("案件编号"), max_length=24)
    channel = models.CharField(
        pgettext_lazy("field", "来源渠道"), max_length=16, choices=Channel.choices
    )
    category = models.ForeignKey(
        Category, verbose_name=_("事项分类"), on_delete=models.PROTECT, related_name="incidents"
    )
    description = models.TextField(_("问题描述"), blank=True)
    # Emergencies only (突发事件 levels Ⅳ…Ⅰ); blank for ordinary matters.
    severity = models.CharField(
        pgettext_lazy("field", "事件级别"), max_length=3, choices=Severity.choices, blank=True
    )

    # Where: the stored WGS-84 point, and the input exactly as received (before conversion).
    location = PointField(_("位置"), srid=4326)
    raw_lon = models.FloatField(_("原始经度"))
    raw_lat = models.FloatField(_("原始纬度"))
    raw_crs = models.CharField(_("原始坐标系"), max_length=8)
    # The address as the reporter gave it (hotline, Open311 address_string, the console form).
    address = models.CharField(_("地址描述"), max_length=200, blank=True)
    # The located path, copied (codes survive redrawing; names as they were then).
    district_code = models.CharField(pgettext_lazy("field", "区代码"), max_length=15)
    district_name = models.CharField(_("区"), max_length=100)
    street_code = models.CharField(_("街道代码"), max_length=15)
    street_name = models.CharField(pgettext_lazy("field", "街道"), max_length=100)
    community_code = models.CharField(_("社区代码"), max_length=15)
    community_name = models.CharField(_("社区"), max_length=100)
    grid_code = models.CharField(_("网格代码"), max_length=15)
    grid_name = models.CharField(_("网格"), max_length=100)
    generation = models.ForeignKey(
        "gridmap.Generation",
        verbose_name=_("边界版本"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    generation_number = models.PositiveIntegerField(_("边界版本号"))
    on_border = models.BooleanField(_("位于网格边界"), default=False)
    resolution = models.CharField(_("定位方式"), max_length=8, choices=LocateResolution.choices)
    # Located by the nearest-cell fallback: in the district's triage queue (属地兜底).
    triage = models.BooleanField(_("属地兜底待分拨"), default=False)

    # Who reported it: a user (grid worker, operator) or, for citizens and integrations, nobody.
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("上报人账号"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reported_incidents",
    )
    reporter_name = models.CharField(_("上报人"), max_length=50, blank=True)
    # Kept in full for call-backs; shown as masked_phone to roles without a need.
    reporter_phone = models.CharField(_("上报人电话"), max_length=20, blank=True)
    reporter_email = models.EmailField(_("上报人邮箱"), blank=True)
    # The integration's own identifier of what reported it: a sensor or camera id (bulk), an
    # Open311 client's token. With channel and category, the key of the sensor dedupe window.
    source_ref = models.CharField(_("来源标识"), max_length=100, blank=True)
    # Repeats of the same sensor alarm counted on this open case instead of new cases.
    repeat_count = models.PositiveIntegerField(_("重复报警次数"), default=0)
    last_repeated_at = models.DateTimeField(_("最近重复报警时间"), null=True, blank=True)

    status = models.CharField(
        _("状态"),
        max_length=16,
        choices=IncidentStatus.choices,
        default=IncidentStatus.REPORTED,
    )
    # The command centre that owns the case now.
    owner_level = models.CharField(_("责任层级"), max_length=16, choices=OwnerLevel.choices)
    owner_code = models.CharField(_("责任单位代码"), max_length=15)
    # Whom it is dispatched to: a department (dispatch.Department code) and/or a person.
    assigned_department_code = models.CharField(_("处置部门代码"), max_length=32, blank=True)
    # The departments a response plan called out beside it (协办部门), as codes: the case's
    # events reach them without a query (IncidentSupport has who called each and when).
    support_department_codes = models.JSONField(_("协办部门代码"), default=list, blank=True)
    # Those of them that have confirmed they are on the scene (确认到场), as codes: who still
    # owes a confirmation is known, and offered the step, without a query.
    support_arrived_codes = models.JSONField(_("已到场协办部门代码"), default=list, blank=True)
    # The response plan in force (应急预案, dispatch.plans): the last one started on the case.
    plan_code = models.CharField(_("应急预案"), max_length=32, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("处置人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_incidents",
        db_index=False,  # indexed where set (Meta.indexes)
    )
    # The last person who accepted, handled or fed back: never the one who verifies.
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("实际处置人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # indexed where set (Meta.indexes)
    )
    feedback = models.TextField(_("处置反馈"), blank=True)

    # The clock running now (blank/null when none runs: verified, parked, finished).
    stage = models.CharField(_("当前环节"), max_length=16, choices=Stage.choices, blank=True)
    stage_started_at = models.DateTimeField(_("环节开始时间"), null=True, blank=True)
    stage_deadline = models.DateTimeField(_("环节时限"), null=True, blank=True)
    # When 80 % of the running limit has passed (in the limit's own time: working time for
    # working-time limits); the escalation worker warns from then on.
    stage_warn_at = models.DateTimeField(_("预警时间"), null=True, blank=True)
    stage_warned = models.BooleanField(_("已预警"), default=False)
    # The running clock was breached and the breach escalated (督办): the escalation worker's
    # marker, so a re-run never escalates the same breach twice. Reset when a new clock starts.
    stage_breached = models.BooleanField(_("已超时督办"), default=False)
    escalations = models.PositiveIntegerField(_("督办次数"), default=0)
    # A pending request for more time (延期申请) and its reason.
    extension_requested_until = models.DateTimeField(_("申请延期至"), null=True, blank=True)
    extension_reason = models.CharField(_("延期理由"), max_length=500, blank=True)

    send_backs = models.PositiveIntegerField(_("退单次数"), default=0)
    reworks = models.PositiveIntegerField(_("返工次数"), default=0)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("合并至"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="duplicates",
        db_index=False,  # indexed where set (Meta.indexes)
    )
    # The device's clock (may be wrong or late: offline phones) and the server's.
    client_reported_at = models.DateTimeField(_("终端上报时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("受理时间"))
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    closed_at = models.DateTimeField(_("结案时间"), null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("满意度"), null=True, blank=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("model", "案件")
        verbose_name_plural = pgettext_lazy("models", "案件")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="incidents_number_unique"),
            models.CheckConstraint(
                condition=Q(status__in=IncidentStatus.values), name="incidents_incident_status"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="incidents_incident_channel"
            ),
            models.CheckConstraint(
                condition=Q(owner_level__in=OwnerLevel.values) & ~Q(owner_code=""),
                name="incidents_incident_owner",
            ),
            models.CheckConstraint(
                condition=Q(resolution__in=LocateResolution.values),
                name="incidents_incident_resolution",
            ),
            models.CheckConstraint(
                condition=Q(severity="") | Q(severity__in=Severity.values),
                name="incidents_incident_severity",
            ),
            models.CheckConstraint(
                condition=Q(send_backs__gte=0) & Q(reworks__gte=0),
                name="incidents_incident_counters",
            ),
            # A satisfaction score exists only once the case is evaluated, and is 1–5.
            models.CheckConstraint(
                condition=(
                    Q(satisfaction__isnull=True)
                    | Q(
                        status=IncidentStatus.EVALUATED,
                        satisfaction__gte=SATISFACTION_MIN,
                        satisfaction__lte=SATISFACTION_MAX,
                    )
                ),
                name="incidents_incident_satisfaction",
            ),
            # Merged ⇔ points to the case it was merged into, never itself.
            models.CheckConstraint(
                condition=(
                    Q(status=IncidentStatus.MERGED, merged_into__isnull=False)
                    & ~Q(merged_into=F("id"))
                )
                | (~Q(status=IncidentStatus.MERGED) & Q(merged_into__isnull=True)),
                name="incidents_incident_merged_into",
            ),
            models.CheckConstraint(
                condition=(Q(closed_at__isnull=False) & Q(status__in=sorted(CLOSED_STATUSES)))
                | (Q(closed_at__isnull=True) & ~Q(status__in=sorted(CLOSED_STATUSES))),
                name="incidents_incident_closed_at",
            ),
            # A clock is either fully described or not running at all.
            models.CheckConstraint(
                condition=(
                    Q(stage="") & Q(stage_started_at__isnull=True) & Q(stage_deadline__isnull=True)
                )
                | (
                    Q(stage__in=Stage.values)
                    & Q(stage_started_at__isnull=False)
                    & Q(stage_deadline__isnull=False)
                ),
                name="incidents_incident_stage_clock",
            ),
        ]
        indexes = [
            models.Index(fields=["street_code", "status"], name="incidents_street_status"),
            models.Index(fields=["community_code", "status"], name="incidents_community_status"),
            models.Index(fields=["grid_code"], name="incidents_grid"),
            models.Index(
                fields=["assigned_department_code", "status"], name="incidents_department_status"
            ),
            models.Index(fields=["status", "created_at"], name="incidents_status_created"),
            # The sensor dedupe window: the open case of one sensor and category.
            models.Index(
                fields=["source_ref", "category", "channel"],
                condition=~Q(source_ref=""),
                name="incidents_source_ref",
            ),
            # The escalation worker's question: which running clocks are (nearly) up?
            models.Index(
                fields=["stage_deadline"],
                condition=Q(stage_deadline__isnull=False),
                name="incidents_running_clock",
            ),
            # Breaches not yet escalated (督办): the escalation worker's other question.
            models.Index(
                fields=["stage_deadline"],
                condition=Q(stage_deadline__isnull=False, stage_breached=False),
                name="incidents_breach_due",
            ),
            models.Index(
                fields=["stage_warn_at"],
                condition=Q(stage_warn_at__isnull=False, stage_warned=False),
                name="incidents_warn_due",
            ),
            # References empty on most cases (every one a sensor reports, to begin with): only
            # the rows that have one are indexed, which is all a lookup by the referenced row
            # (a worker's cases, a case's duplicates, the PROTECT check) reads. A full btree
            # of NULLs cost ≈3 ms per 1,000 cases written, each.
            models.Index(
                fields=["assignee"], condition=Q(assignee__isnull=False), name="incidents_assignee"
            ),
            models.Index(
                fields=["handled_by"],
                condition=Q(handled_by__isnull=False),
                name="incidents_handled_by",
            ),
            models.Index(
                fields=["merged_into"],
                condition=Q(merged_into__isnull=False),
                name="incidents_merged_into",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.reporter_phone)

    def phone_for(self, user: Any) -> str:
        """The reporter's phone as `user` may read it: in full for the roles that call back
        (FULL_PHONE_ROLES) and for the reporter, masked for everyone else. The API, the case
        page and the export all show it this way."""
        if getattr(user, "role", "") in FULL_PHONE_ROLES or (
            self.reporter_id is not None and self.reporter_id == user.pk
        ):
            return self.reporter_phone
        return self.masked_phone

    @property
    def owner_label(self) -> str:
        """Who owns the case, as the consoles name it: "三联社区 社区" … "龙华区 区"."""
        names: dict[str, str] = {
            OwnerLevel.COMMUNITY: self.community_name,
            OwnerLevel.STREET: self.street_name,
            OwnerLevel.DISTRICT: self.district_name,
        }
        level = OwnerLevel(self.owner_level).label if self.owner_level else ""
        return f"{names.get(self.owner_level, '')} {level}".strip()

    @property
    def is_open(self) -> bool:
        return self.status not in FINISHED_STATUSES

    @property
    def extension_pending(self) -> bool:
        return self.extension_requested_until is not None


class IncidentNumberCounter(models.Model):
    """The last number given out on one day: LH-20261124-000123 is day 2026-11-24, number 123.

    A report or a bulk batch takes its numbers in one upsert that locks the day's row (SQLite's
    single writer lock) until it commits, so numbers are unique and, because a rolled-back report
    frees its number, gapless.
    """

    day = models.DateField(_("日期"), primary_key=True)
    last_number = models.PositiveIntegerField(_("当日最新序号"), default=0)

    class Meta:
        verbose_name = pgettext_lazy("model", "案件编号计数器")
        verbose_name_plural = pgettext_lazy("models", "案件编号计数器")

    def __str__(self) -> str:
        return f"{self.day.isoformat()} #{self.last_number}"


class AlarmSource(models.Model):
    """One sensor or camera of an integration account alarming on one category and channel: the
    key of the sensor dedupe window (incidents.services.bulk).

    A bulk batch upserts the rows of the keys it carries, in key order, adding its alarms to
    each (`config.db_backends.bulk.increment_counters`), before it looks for their open cases:
    the row locks serialise batches that name the same sensor, so two of them never both make
    a case for it, while batches of other sensors of the same account go on. The counts are
    the account's alarms since the table was made (migration 0006 counted the cases and
    repeats before it).
    """

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("接入账号"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # the first column of the key
    )
    source_ref = models.CharField(_("来源标识"), max_length=100)
    category = models.ForeignKey(
        Category,
        verbose_name=_("事项分类"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # categories are not deleted; the key serves the lookups
    )
    channel = models.CharField(
        pgettext_lazy("field", "来源渠道"), max_length=16, choices=Channel.choices
    )
    alarms = models.PositiveIntegerField(_("报警次数"), default=0)
    first_alarm_at = models.DateTimeField(_("首次报警时间"))

    class Meta:
        verbose_name = pgettext_lazy("model", "报警源")
        verbose_name_plural = pgettext_lazy("models", "报警源")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "source_ref", "category", "channel"],
                name="incidents_alarm_source_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_ref} ({self.channel})"


class IncidentSupport(models.Model):
    """A department called out on a case beside the one it was dispatched to (协办部门: 应急,
    消防, 交警 beside 水务 for a flood), by a response plan or by hand (增派协办). It sees the case
    and hears of it from then on, and confirms when it is on the scene (确认到场); the case's
    handling stays with the department dispatched. dispatch.plans has the plans."""

    incident = models.ForeignKey(
        Incident, verbose_name=_("案件"), on_delete=models.CASCADE, related_name="supports"
    )
    department_code = models.CharField(_("协办部门代码"), max_length=32)
    plan_code = models.CharField(_("应急预案"), max_length=32, blank=True)
    called_at = models.DateTimeField(_("调派时间"))
    called_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("调派人"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    # 确认到场: a handler of the department says it is on the scene (support_arrived_codes).
    arrived_at = models.DateTimeField(_("到场时间"), null=True, blank=True)
    arrived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("到场确认人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = pgettext_lazy("model", "协办部门")
        verbose_name_plural = pgettext_lazy("models", "协办部门")
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "department_code"], name="incidents_support_once"
            )
        ]
        indexes = [models.Index(fields=["department_code"], name="incidents_support_department")]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.department_code}"


class IncidentTransition(models.Model):
    """One step of a case's timeline (流转记录), in words for the people working the case.

    The audit trail records the same change tamper-evidently; this row is what the console's
    timeline shows: who did what, from which status to which, and why.
    """

    incident = models.ForeignKey(
        Incident, verbose_name=_("案件"), on_delete=models.CASCADE, related_name="transitions"
    )
    action = models.CharField(_("操作"), max_length=32)
    from_status = models.CharField(
        _("原状态"), max_length=16, choices=IncidentStatus.choices, blank=True
    )
    to_status = models.CharField(_("新状态"), max_length=16, choices=IncidentStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_role = models.CharField(_("操作人角色"), max_length=32, blank=True)
    reason_code = models.CharField(_("原因代码"), max_length=32, blank=True)
    reason = models.TextField(_("说明"), blank=True)
    # What else the step decided: department and assignee, new deadline, satisfaction …
    data = models.JSONField(_("详情"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("时间"))

    class Meta:
        verbose_name = pgettext_lazy("model", "流转记录")
        verbose_name_plural = pgettext_lazy("models", "流转记录")
        ordering = ["incident", "id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status or '-'} → {self.to_status}"


class PhotoKind(models.TextChoices):
    BEFORE = "before", _("处置前")
    AFTER = "after", _("处置后")


class IncidentPhoto(models.Model):
    """A photo of a case: `before` (with the report) or `after` (with the feedback).

    The bytes as uploaded are kept untouched as evidence (`original`, with their SHA-256); what
    pages show is `display`, re-encoded from the decoded pixels — no EXIF (GPS, device), at
    most PHOTO_DISPLAY_MAX_SIDE pixels on its long side. Only JPEG, PNG and WebP are accepted,
    judged by their bytes, never by the file name or the declared content type.
    """

    incident = models.ForeignKey(
        Incident, verbose_name=_("案件"), on_delete=models.CASCADE, related_name="photos"
    )
    kind = models.CharField(pgettext_lazy("field", "类型"), max_length=8, choices=PhotoKind.choices)
    original = models.FileField(_("原图"), upload_to="evidence/%Y/%m/")
    original_sha256 = models.CharField(_("原图SHA-256"), max_length=64)
    original_format = models.CharField(_("原图格式"), max_length=8)
    original_bytes = models.PositiveIntegerField(_("原图大小"))
    display = models.FileField(_("展示图"), upload_to="photos/%Y/%m/")
    width = models.PositiveIntegerField(_("宽"))
    height = models.PositiveIntegerField(_("高"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("上传人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("上传时间"))

    class Meta:
        verbose_name = pgettext_lazy("model", "案件照片")
        verbose_name_plural = pgettext_lazy("models", "案件照片")
        ordering = ["incident", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=PhotoKind.values), name="incidents_photo_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind} {self.original_sha256[:12]}"


class Supervision(models.Model):
    """督办: a stage limit was missed and the case was raised one tier (community → street →
    district). Written by the escalation worker; shown on the case and the wall screen."""

    incident = models.ForeignKey(
        Incident, verbose_name=_("案件"), on_delete=models.CASCADE, related_name="supervisions"
    )
    stage = models.CharField(_("超时环节"), max_length=16, choices=Stage.choices)
    stage_deadline = models.DateTimeField(_("环节时限"))
    from_level = models.CharField(_("原责任层级"), max_length=16, choices=OwnerLevel.choices)
    from_code = models.CharField(_("原责任单位代码"), max_length=15)
    to_level = models.CharField(_("督办层级"), max_length=16, choices=OwnerLevel.choices)
    to_code = models.CharField(_("督办单位代码"), max_length=15)
    created_at = models.DateTimeField(_("督办时间"))

    class Meta:
        verbose_name = pgettext_lazy("model", "督办记录")
        verbose_name_plural = pgettext_lazy("models", "督办记录")
        ordering = ["incident", "id"]
        constraints = [
            # One 督办 per missed deadline: the worker may run twice, the breach counts once.
            models.UniqueConstraint(
                fields=["incident", "stage", "stage_deadline"], name="incidents_supervision_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.stage} → {self.to_level} {self.to_code}"


# --- idempotent writes ---------------------------------------------------------------------------


class IdempotencyState(models.TextChoices):
    IN_FLIGHT = "in_flight", _("处理中")
    DONE = "done", _("已完成")


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` a user sent with a write (幂等键), and the answer it got.

    Phones on a patchy network retry: the first POST may have been stored although its answer
    never arrived. The client sends the same key with the retry; the API answers with the first
    response instead of creating a second case. The row is claimed (inserted, committed) before
    the work starts — the unique (user, key) pair makes a concurrent twin fail to insert and
    answer 409 — and completed in the same transaction as the work, so a case and the record of
    its answer are committed together or not at all. `fingerprint` is the SHA-256 of method,
    path and canonical body: the same key with another body is a client bug (422). Keys expire
    after `incidents.api.idempotency.KEY_TTL` (24 h). See docs/incidents.md, "REST API".
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("用户"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    key = models.CharField(_("幂等键"), max_length=255)
    fingerprint = models.CharField(_("请求指纹"), max_length=64)
    state = models.CharField(
        _("状态"),
        max_length=16,
        choices=IdempotencyState.choices,
        default=IdempotencyState.IN_FLIGHT,
    )
    response_status = models.PositiveSmallIntegerField(_("响应状态码"), null=True, blank=True)
    response_body = models.JSONField(
        _("响应内容"), null=True, blank=True, encoder=DjangoJSONEncoder
    )
    created_at = models.DateTimeField(_("创建时间"))
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "幂等记录")
        verbose_name_plural = pgettext_lazy("models", "幂等记录")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="incidents_idempotency_user_key"),
            models.CheckConstraint(
                condition=Q(state__in=IdempotencyState.values), name="incidents_idempotency_state"
            ),
            # A finished record always carries the answer to replay.
            models.CheckConstraint(
                condition=~Q(state="done") | Q(response_status__isnull=False),
                name="incidents_idempotency_done_has_response",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="incidents_idempotency_created")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} ({self.state})"
