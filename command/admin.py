"""Admin of the command app: wall-screen tokens (大屏令牌), listed read-only and revoked here.

Tokens are issued with `manage.py command_issue_screen_token` (which prints the wall's address
once); the admin shows which screens exist, when each was last seen, and stops one with the
"停用所选令牌" action (command.services.screen_token_revoke, audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from command.models import ScreenToken
from command.services import screen_token_revoke


@admin.register(ScreenToken)
class ScreenTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "district_code",
        "prefix",
        "active",
        "created_at",
        "last_seen_at",
        "revoked_at",
    )
    list_filter = ("active", "district_code")
    search_fields = ("name", "prefix")
    readonly_fields = (
        "name",
        "district_code",
        "prefix",
        "active",
        "created_at",
        "created_by",
        "last_seen_at",
        "revoked_at",
    )
    exclude = ("token_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A token is shown once, by the command that issues it.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing is edited on one token's page (view only); the list's revoke action needs the
        # change permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoked tokens stay listed: who had a screen, and until when.
        return False

    @admin.action(description=_("停用所选令牌"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ScreenToken]) -> None:
        revoked = 0
        for token in queryset.filter(active=True):
            screen_token_revoke(token=token, by=request.user)
            revoked += 1
        if revoked:
            self.message_user(
                request, gettext("已停用 %(n)d 个大屏令牌。") % {"n": revoked}, messages.SUCCESS
            )
        else:
            self.message_user(request, gettext("所选令牌均已停用。"), messages.WARNING)
