"""Signing in: the lock after too many failures, the audit of sign-ins and sign-outs, and the
form of a user's own 修改密码.

Django's auth does the signing in (the site's sign-in page, the admin's, the test client);
this module is where CityOps joins it:

* `SignInBackend` (settings.AUTHENTICATION_BACKENDS) refuses, without checking the password,
  an address that failed too often (accounts.services.sign_in_locked_until), so no form and no
  other caller of `authenticate` can be used to go on guessing;
* `LockAwareSignInForm` tells the person at the form that they are locked out and for how
  long, instead of "wrong password";
* Django's auth signals are the seam for the audit: `user_logged_in`, `user_logged_out` and
  `user_login_failed` call the accounts services that write the entries.
"""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordChangeForm as DjangoPasswordChangeForm
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from accounts import services
from accounts.sessions import session_started
from audit.services import request_ip


def _ip(request: HttpRequest | None) -> str | None:
    return request_ip(request) if request is not None else None


class SignInBackend(ModelBackend):
    """Django's username-and-password check, refused while the address is locked out."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is not None and services.sign_in_locked_until(username, _ip(request)):
            # Stops every backend; Django sends user_login_failed, which counts nothing while
            # the lock holds.
            raise PermissionDenied
        return super().authenticate(request, username=username, password=password, **kwargs)


def _refuse_if_locked(username: Any, request: HttpRequest | None) -> None:
    """A ValidationError telling the person at a form that their address is locked out of
    `username`, and for how long, before any password is checked."""
    until = services.sign_in_locked_until(username, _ip(request)) if username else None
    if until is None:
        return
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    raise forms.ValidationError(
        ngettext(
            "登录失败次数过多，请 %(minutes)d 分钟后再试。",
            "登录失败次数过多，请 %(minutes)d 分钟后再试。",
            minutes,
        )
        % {"minutes": minutes},
        code="locked",
    )


class LockAwareSignInForm(forms.Form):
    """Mixed into a sign-in form (before Django's AuthenticationForm): a locked-out address is
    told so, and when it may try again, before its password is checked."""

    request: HttpRequest | None

    def clean(self) -> dict[str, Any]:
        _refuse_if_locked(self.cleaned_data.get("username"), self.request)
        return super().clean() or self.cleaned_data


def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    services.signed_in(user=user, ip=_ip(request))
    if request is not None:
        session_started(request, user)


def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:  # signing out without being signed in
        services.signed_out(user=user, ip=_ip(request))


def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    services.sign_in_failed(username=credentials.get("username"), ip=_ip(request))


def connect() -> None:
    user_logged_in.connect(_signed_in, dispatch_uid="accounts.signed_in")
    user_logged_out.connect(_signed_out, dispatch_uid="accounts.signed_out")
    user_login_failed.connect(_sign_in_failed, dispatch_uid="accounts.sign_in_failed")


class SignInForm(LockAwareSignInForm, AuthenticationForm):
    """The site's sign-in form (command.views.SignInView)."""


class AdminSignInForm(LockAwareSignInForm, AdminAuthenticationForm):
    """The admin's sign-in form (staff only), with the same lock."""


class PasswordChangeForm(DjangoPasswordChangeForm):
    """Django's form with the password rules' reasons under 新密码, the field they are about
    and where their help text is, instead of under 新密码确认 (Django puts them on the
    confirmation); and the 旧密码 under the sign-in's lock: a wrong one is counted and audited
    as a failed password check (services.old_password_failed), and a locked-out address is told
    so without its 旧密码 being checked."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest | None = None, **kwargs: Any):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        _refuse_if_locked(self.user.get_username(), self.request)
        old_password = self.cleaned_data["old_password"]
        if not self.user.check_password(old_password):
            services.old_password_failed(user=self.user, ip=_ip(self.request))
            _refuse_if_locked(self.user.get_username(), self.request)  # this one locked it
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        services.password_failures_forgiven(user=self.user, ip=_ip(self.request))
        return old_password

    def clean(self) -> dict[str, Any]:
        self.validate_passwords("new_password1", "new_password2")
        self.validate_password_for_user(self.user, "new_password1")
        return forms.Form.clean(self) or self.cleaned_data
