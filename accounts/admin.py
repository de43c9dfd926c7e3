"""Admin of accounts: users, and the API keys of integration accounts (接口密钥).

Keys are issued with `manage.py accounts_issue_api_key <account> --name … --channels …`, which
prints the key once; the database keeps only its SHA-256, which the admin never shows. Here an
administrator sees which keys exist, what each may report on and when it was last used, and
revokes keys with the "停用所选密钥" action (accounts.services.api_key_revoke, audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.departments import department_names
from accounts.models import ApiKey, User
from accounts.services import api_key_revoke, user_delete, user_password_changed, user_save
from accounts.signin import AdminSignInForm
from audit.services import request_ip

# The admin's own sign-in page locks out and is audited as the site's is (accounts.signin).
admin.site.login_form = AdminSignInForm


class CityOpsUserChangeForm(UserChangeForm):  # type: ignore[type-arg]
    """The user admin's form: a handler's department field lists the known departments; the
    place and department are checked by the model (User.clean)."""

    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "department_code" in self.fields:
            known = " · ".join(f"{code} {name}" for code, name in department_names().items())
            hint = gettext("职能部门处置人员必填。已知部门：%(known)s")
            self.fields["department_code"].help_text = hint % {"known": known}


@admin.register(User)
class CityOpsUserAdmin(UserAdmin):
    form = CityOpsUserChangeForm
    list_display = ("username", "role", "place_code", "department_code", "is_active")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("CityOps", {"fields": ("role", "place_code", "department_code", "phone")}),
    )

    # Every change to a user is audited (accounts.services): the row, its groups and its
    # permissions are saved by user_save in save_related, so one entry covers them all.
    # Deactivating an account ends its sessions there too (accounts.sessions_revoked).
    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        user_save(
            user=form.instance,
            by=request.user,
            ip=request_ip(request),
            save_related=lambda: super(CityOpsUserAdmin, self).save_related(
                request, form, formsets, change
            ),
            session_key=request.session.session_key,
        )

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_delete(user=obj, by=request.user, ip=request_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            user_delete(user=user, by=request.user, ip=request_ip(request))

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # Django's page sets the password; its audit entry is written, and the user's sessions
        # ended (but the administrator's own, when it is their password: Django has just given
        # that session a new key), in the same transaction.
        with transaction.atomic():
            user = self.get_object(request, unquote(id)) if request.method == "POST" else None
            response = super().user_change_password(request, id, form_url)
            if user is not None:
                user_password_changed(
                    user=user,
                    by=request.user,
                    ip=request_ip(request),
                    previous_hash=user.password,
                    session_key=request.session.session_key,
                )
        return response


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
