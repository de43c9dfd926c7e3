"""Users with a role and a place.

A place is a region *code* (区 440309, 街道 440309001, 社区 440309001001, 网格 440309001001001),
not a foreign key to one region row: boundaries are redrawn in new generations, codes persist.
A department handler's place is their department's code instead.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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
