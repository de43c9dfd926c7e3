"""Users with a role and a place.

A place is a region *code* (区 440309, 街道 440309001, 社区 440309001001, 网格 440309001001001),
not a foreign key to one region row: boundaries are redrawn in new generations, codes persist.
A department handler's place is their department's code instead.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.departments import known_departments
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level


class Role(models.TextChoices):
    DISTRICT_OPERATOR = "district_operator", _("区指挥中心值班员")
    STREET_OPERATOR = "street_operator", _("街道分中心操作员")
    COMMUNITY_STAFF = "community_staff", _("社区工作站人员")
    GRID_WORKER = "grid_worker", _("网格员")
    DEPARTMENT_HANDLER = "department_handler", _("职能部门处置人员")
    AUDITOR = "auditor", _("审计员")
    ADMIN = "admin", _("系统管理员")
    # A machine: a sensor gateway, the 12345 hotline platform, a video-AI platform, an Open311
    # client. It signs in with an API key (ApiKey), reports on the channels its key allows and
    # sees the cases it reported.
    INTEGRATION = "integration", _("系统接入")


class User(AbstractUser):
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices, blank=True)
    # Region code of the user's place (district/street/community/grid), empty for admin/auditor.
    place_code = models.CharField(_("所属区域代码"), max_length=15, blank=True, db_index=True)
    # Department code for department handlers: one of accounts.departments (the admin checks).
    department_code = models.CharField(_("所属部门代码"), max_length=32, blank=True)
    phone = models.CharField(_("手机号"), max_length=20, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "用户")
        verbose_name_plural = pgettext_lazy("models", "用户")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role="")
                | ~models.Q(
                    role__in=[
                        "district_operator",
                        "street_operator",
                        "community_staff",
                        "grid_worker",
                    ]
                )
                | ~models.Q(place_code=""),
                name="user_place_required_for_hierarchy_roles",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.get_role_display() or '-'})"

    @property
    def display_name(self) -> str:
        """The name pages show for the user: the full name, else the username."""
        return str(self.get_full_name() or self.get_username())

    def clean(self) -> None:
        """A role's place and a handler's department as the system will read them: a mistyped
        code would leave the account seeing no case at all (every form saving a user runs it;
        the admin's does)."""
        super().clean()
        problems = place_and_department_problems(
            self.role, (self.place_code or "").strip(), (self.department_code or "").strip()
        )
        if problems:
            raise ValidationError(problems)


def mask_phone(phone: str) -> str:
    """138****1234 for an 11-digit mobile number; for anything else, all but the first three and
    last four characters masked ("" stays "")."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


class ApiKey(models.Model):
    """A secret an integration sends instead of a password (`Authorization: Api-Key <key>`, or
    Open311's `api_key` parameter). Only its SHA-256 is stored; the key is shown once, when it
    is issued (accounts_issue_api_key). `channels` lists the intake channels (incidents.Channel
    values, comma-separated) the key may report on.
    """

    user = models.ForeignKey(
        User, verbose_name=_("接入账号"), on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(_("名称"), max_length=100)
    # The first characters of the key, to tell keys apart in lists and logs.
    prefix = models.CharField(_("前缀"), max_length=12)
    key_hash = models.CharField(_("密钥摘要"), max_length=64, unique=True)
    channels = models.CharField(_("允许的上报渠道"), max_length=200)
    active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "接口密钥")
        verbose_name_plural = pgettext_lazy("models", "接口密钥")
        ordering = ["user", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def channel_list(self) -> list[str]:
        return [c for c in self.channels.split(",") if c]


# The level of region a role's place is (a grid worker may cover a whole community).
PLACE_LEVELS: dict[str, tuple[str, ...]] = {
    Role.DISTRICT_OPERATOR: (Level.DISTRICT,),
    Role.STREET_OPERATOR: (Level.STREET,),
    Role.COMMUNITY_STAFF: (Level.COMMUNITY,),
    Role.GRID_WORKER: (Level.GRID, Level.COMMUNITY),
}


def place_and_department_problems(role: str, place: str, department: str) -> dict[str, str]:
    """What is wrong with a role's place and department, by field (empty when nothing)."""
    problems: dict[str, str] = {}
    if department and department not in known_departments():
        problems["department_code"] = gettext("“%(code)s”不是已知的部门代码。") % {
            "code": department
        }
    elif role == Role.DEPARTMENT_HANDLER and not department:
        problems["department_code"] = gettext("职能部门处置人员须填写所属部门代码。")
    levels = PLACE_LEVELS.get(role)
    if not levels:
        return problems
    if not place:
        problems["place_code"] = gettext("该角色须填写所属区域代码。")
        return problems
    generation = gridmap_selectors.active_generation()
    if generation is None:
        return problems  # nothing to check against until boundaries are imported
    region = gridmap_selectors.region_by_code(generation=generation, code=place)
    if region is None:
        problems["place_code"] = gettext("启用的边界版本中没有代码为 %(code)s 的区域。") % {
            "code": place
        }
    elif region.level not in levels:
        problems["place_code"] = gettext(
            "%(code)s 是%(level)s，该角色的所属区域应为%(expected)s。"
        ) % {
            "code": place,
            "level": Level(region.level).label,
            "expected": pgettext("list of alternatives", "或").join(
                str(Level(level).label) for level in levels
            ),
        }
    return problems


class SignInFailure(models.Model):
    """One failed sign-in (a wrong password or an unknown username), kept while it counts
    towards a lock (accounts.services.SIGN_IN_WINDOW): too many from one address for one
    username, or from one address in all, and that address may not try again for a while.
    A row per failure, not a counter in a cache, so every server process sees the same count.
    """

    # As typed (lower-cased), whether or not such a user exists.
    username = models.CharField(max_length=150)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["ip", "at"], name="signin_failure_ip_at")]

    def __str__(self) -> str:
        return f"{self.username} from {self.ip or '?'} at {self.at:%Y-%m-%d %H:%M:%S}"
