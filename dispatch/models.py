"""Responders and where they are (the rest of dispatch — departments, rules, plans — is still
codes and services elsewhere: docs/architecture.md).

A responder is a user who works in the field: a grid worker (网格员) or a department handler.
While they choose to share it, their phone reports their position; the latest one is kept here
(one row per responder, replaced by each report) so that the wall and the consoles can show who
is where. It is telemetry, not a case record: the history of positions is not kept (ADR 0011).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ResponderPosition(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="responder_position",
        verbose_name=_("人员"),
    )
    point = models.PointField(_("位置"), srid=4326)
    accuracy_m = models.FloatField(_("定位精度（米）"), null=True, blank=True)
    # Where the position lies (the locator's path in the active generation): who may see it.
    district_code = models.CharField(_("区代码"), max_length=15, db_index=True)
    street_code = models.CharField(_("街道代码"), max_length=15, db_index=True)
    community_code = models.CharField(_("社区代码"), max_length=15, db_index=True)
    grid_code = models.CharField(_("网格代码"), max_length=32)
    grid_name = models.CharField(_("网格名称"), max_length=100)
    community_name = models.CharField(_("社区名称"), max_length=100)
    street_name = models.CharField(_("街道名称"), max_length=100)
    received_at = models.DateTimeField(_("接收时间"), db_index=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "人员位置")
        verbose_name_plural = pgettext_lazy("models", "人员位置")

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.grid_code}"
