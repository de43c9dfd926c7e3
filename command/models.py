"""What the command centres own besides the pages: today the wall screens' access tokens.

Wall screens (大屏)
------------------
A district command centre shows the whole district on a wall: a map of every open case, the day's
figures, a ticker of new and escalated cases, the clocks that are running out. The wall is a
browser in kiosk mode on a machine nobody signs in to, often left running for months. It gets a
*screen token* instead of a user: a secret, issued once (`manage.py
command_issue_screen_token`), that opens the district's wall and nothing else — no console, no
case details, no API. Opening `/command/wall/?token=…` puts the token's id in the browser's
session and redirects to the wall without the token in the address bar; from then on every
request and every socket connect checks that the token is still active, so revoking it in the
admin shuts the screen out at its next snapshot reload or reconnect. Only the SHA-256 of the
token is stored: a leaked database opens no wall.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ScreenToken(models.Model):
    """A read-only wall-screen credential (大屏令牌) scoped to one district."""

    name = models.CharField(_("名称"), max_length=100)
    # The district (6-digit region code, e.g. 440309 龙华区) the screen shows; a code, not a
    # foreign key: boundaries are redrawn in new generations, codes persist.
    district_code = models.CharField(
        pgettext_lazy("field", "区代码"),
        max_length=6,
        validators=[RegexValidator(r"^\d{6}$", _("区代码为6位数字"))],
    )
    # The first characters of the token, to tell tokens apart in lists and logs.
    prefix = models.CharField(_("前缀"), max_length=12)
    token_hash = models.CharField(_("令牌摘要"), max_length=64, unique=True)
    active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("签发人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # When a screen last used it (refreshed at most every few minutes, not on every request).
    last_seen_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("停用时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "大屏令牌")
        verbose_name_plural = pgettext_lazy("models", "大屏令牌")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Revoked ⇔ has a revocation time.
            models.CheckConstraint(
                condition=models.Q(active=True, revoked_at__isnull=True)
                | models.Q(active=False, revoked_at__isnull=False),
                name="command_screentoken_revoked_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
