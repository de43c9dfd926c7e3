"""Admin of accounts: users, and the API keys of integration accounts (接口密钥).

Keys are issued with `manage.py accounts_issue_api_key <account> --name … --channels …`, which
prints the key once; the database keeps only its SHA-256, which the admin never shows. Here an
administrator sees which keys exist, what each may report on and when it was last used, and
revokes keys with the "停用所选密钥" action (accounts.services.api_key_revoke, audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from accounts.departments import known_departments
from accounts.models import ApiKey, Role, User
from accounts.services import api_key_revoke
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level

# The level of region a role's place is (a grid worker may cover a whole community).
PLACE_LEVELS: dict[str, tuple[str, ...]] = {
    Role.DISTRICT_OPERATOR: (Level.DISTRICT,),
    Role.STREET_OPERATOR: (Level.STREET,),
    Role.COMMUNITY_STAFF: (Level.COMMUNITY,),
    Role.GRID_WORKER: (Level.GRID, Level.COMMUNITY),
}


class CityOpsUserChangeForm(UserChangeForm):  # type: ignore[type-arg]
    """A user's role, place and department checked as the system will read them: a mistyped
    place or department code would leave the account seeing no case at all, silently."""

    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "department_code" in self.fields:
            known = " · ".join(f"{code} {name}" for code, name in known_departments().items())
            hint = gettext("职能部门处置人员必填。已知部门：%(known)s")
            self.fields["department_code"].help_text = hint % {"known": known}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        role = data.get("role") or ""
        department = (data.get("department_code") or "").strip()
        place = (data.get("place_code") or "").strip()
        if department and department not in known_departments():
            self.add_error(
                "department_code",
                gettext("“%(code)s”不是已知的部门代码。") % {"code": department},
            )
        elif role == Role.DEPARTMENT_HANDLER and not department:
            self.add_error("department_code", gettext("职能部门处置人员须填写所属部门代码。"))
        levels = PLACE_LEVELS.get(role)
        if levels and not place:
            self.add_error("place_code", gettext("该角色须填写所属区域代码。"))
        elif levels:
            self._check_place(place, levels)
        return data

    def _check_place(self, place: str, levels: tuple[str, ...]) -> None:
        generation = gridmap_selectors.active_generation()
        if generation is None:
            return  # nothing to check against until boundaries are imported
        region = gridmap_selectors.region_by_code(generation=generation, code=place)
        if region is None:
            self.add_error(
                "place_code",
                gettext("启用的边界版本中没有代码为 %(code)s 的区域。") % {"code": place},
            )
        elif region.level not in levels:
            self.add_error(
                "place_code",
                gettext("%(code)s 是%(level)s，该角色的所属区域应为%(expected)s。")
                % {
                    "code": place,
                    "level": Level(region.level).label,
                    "expected": pgettext("list of alternatives", "或").join(
                        str(Level(level).label) for level in levels
                    ),
                },
            )


@admin.register(User)
class CityOpsUserAdmin(UserAdmin):
    form = CityOpsUserChangeForm
    list_display = ("username", "role", "place_code", "department_code", "is_active")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("CityOps", {"fields": ("role", "place_code", "department_code", "phone")}),
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # Created-at is on each key's page: the list stays narrow enough beside the filter.
    list_display = ("name", "user", "prefix", "channels_shown", "active", "last_used_at")
    list_filter = ("active",)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    # Everything but the hash, read-only: a key is issued by the command and only revoked here.
    fields = ("name", "user", "prefix", "channels", "active", "created_at", "last_used_at")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description=_("允许的上报渠道"))
    def channels_shown(self, key: ApiKey) -> str:
        return ", ".join(key.channel_list)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "subtitle": gettext(
                "新密钥用命令签发（只显示一次）：manage.py accounts_issue_api_key <账号> "
                "--name <用途> --channels sensor,video_ai"
            ),
        }
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key is shown once, by the command that issues it.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing is edited on one key's page (view only); the list's revoke action needs the
        # change permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoked keys stay listed: which integration had access, and what it could report on.
        return False

    @admin.action(description=_("停用所选密钥"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset.filter(active=True):
            api_key_revoke(key=key, by=request.user)  # type: ignore[arg-type]
            revoked += 1
        if revoked:
            self.message_user(
                request,
                ngettext("已停用 %(n)d 个接口密钥。", "已停用 %(n)d 个接口密钥。", revoked)
                % {"n": revoked},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, gettext("所选密钥均已停用。"), messages.WARNING)
