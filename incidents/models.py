"""Cases and what they are measured against: categories (事项), stage time limits (时限) and the
working calendar (工作日历). The incident itself, its intake and workflow arrive later in issue 3.

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
listed in incidents/data/departments.csv). Departments themselves are modelled by the dispatch
app, which sits above this one; a code, not a foreign key, keeps the dependency pointing down.
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
each year the State Council's notice (国务院办公厅关于XXXX年部分节假日安排的通知) joins holidays
to weekends and moves the lost working days to Saturdays or Sundays. Those dates are data —
`CalendarDay` rows loaded from incidents/data/holidays.csv and editable in the admin; rows that
were derived before the official notice appeared are marked `provisional`. Deadline arithmetic
is in incidents.calendar.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _

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

    def of_kind(self, kind: str) -> CategoryQuerySet:
        return self.filter(kind=kind)


class Category(models.Model):
    """One 事项 a case is filed under: an event, a component's "<部件>异常", or a local emergency.

    Code and name of the standard's matters come from the shipped CSVs and are not edited here;
    the department, default severity, active flag and the stage limits are local settings that
    the admin may change (`edited_at` records that they were, and a reload keeps them).
    """

    code = models.CharField(
        _("事项代码"),
        max_length=5,
        unique=True,
        validators=[RegexValidator(r"^\d{5}$", _("事项代码为5位数字"))],
    )
    name = models.CharField(_("事项名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=16, choices=CategoryKind.choices)
    major_code = models.CharField(_("大类代码"), max_length=2)
    major_name = models.CharField(_("大类名称"), max_length=50)
    # For a component matter, the component (部件) whose abnormality it is: 01001 → 供水井盖.
    component_name = models.CharField(_("部件名称"), max_length=100, blank=True)
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
        verbose_name = _("事项分类")
        verbose_name_plural = _("事项分类")
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
        verbose_name = _("环节时限")
        verbose_name_plural = _("环节时限")
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
    kind = models.CharField(_("类型"), max_length=16, choices=CalendarDayKind.choices)
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
        verbose_name = _("节假日/调休日")
        verbose_name_plural = _("节假日/调休日")
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
