"""A user's own 修改密码: the password rules' reasons are said under 新密码, in the page's
language (Django 5.2's own Chinese catalogue lacks the "too short" message; locale/zh_Hans
fills that gap)."""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import django
import pytest
from django.test import Client

from accounts.models import Role, SignInFailure, User
from accounts.services import SIGN_IN_MAX_FAILURES
from audit.models import AuditEntry
from tests.incidents.cases import GRID, make_user

pytestmark = pytest.mark.django_db

OLD = "Longhua-2026-old"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def worker() -> User:
    user = make_user(Role.GRID_WORKER, GRID)
    user.set_password(OLD)
    user.save()
    return user


@pytest.fixture
def client(worker: User) -> Client:
    client = Client()
    client.force_login(worker)
    return client


def _errors(response: Any) -> dict[str, str]:
    """Each field's reason as the page shows it: the label's text → the error under it."""
    html = response.content.decode()
    return dict(
        re.findall(
            r'<label><span>([^<]+)</span>\s*<input name="\w+"[^>]*>\s*'
            r'<span class="form-error" role="alert">([^<]+)</span>',
            html,
        )
    )


def test_a_too_short_password_is_refused_under_the_new_password_in_chinese(client) -> None:
    response = client.post(
        "/accounts/password_change/",
        {"old_password": OLD, "new_password1": "Lh-26", "new_password2": "Lh-26"},
    )
    assert response.status_code == 200
    assert _errors(response) == {"新密码": "密码太短，至少需要 8 个字符。"}


def test_the_rules_reasons_follow_the_english_page(client) -> None:
    client.cookies["django_language"] = "en"
    response = client.post(
        "/accounts/password_change/",
        {"old_password": OLD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert _errors(response) == {
        "New password": "This password is too common. This password is entirely numeric."
    }


def test_a_mismatch_is_said_under_the_confirmation_and_the_rules_under_the_password(
    client,
) -> None:
    response = client.post(
        "/accounts/password_change/",
        {"old_password": OLD, "new_password1": "Lh-26", "new_password2": "Lh-27"},
    )
    errors = _errors(response)
    assert errors["新密码"] == "密码太短，至少需要 8 个字符。"
    assert errors["新密码确认"] == "输入的两个密码不一致。"


def test_the_chinese_gap_filled_here_is_still_a_gap_in_djangos_catalogue() -> None:
    # When Django's own zh_Hans catalogue gains the message, locale/zh_Hans can lose it.
    catalogue = Path(django.__file__).parent / "contrib/auth/locale/zh_Hans/LC_MESSAGES/django.mo"
    with catalogue.open("rb") as f:
        django_zh = gettext.GNUTranslations(f)
    ours = Path(__file__).resolve().parents[2] / "locale/zh_Hans/LC_MESSAGES/django.po"
    msgids = re.findall(r'^msgid "(.+)"$', ours.read_text(encoding="utf-8"), re.M)
    assert msgids
    for msgid in msgids:
        assert django_zh.ngettext(msgid, msgid, 2) == msgid, msgid


# --- the 旧密码 under the sign-in's lock ------------------------------------------------------


def _change(client: Client, old: str, new: str = "Longhua-2026-new!") -> Any:
    return client.post(
        "/accounts/password_change/",
        {"old_password": old, "new_password1": new, "new_password2": new},
        REMOTE_ADDR="10.0.0.9",
    )


def test_a_wrong_old_password_is_counted_and_audited_and_locks_the_form_as_signing_in_does(
    client, worker
) -> None:
    user = worker
    for _attempt in range(SIGN_IN_MAX_FAILURES - 1):
        assert _errors(_change(client, "guess"))["旧密码"].startswith("你的旧密码不正确")
    # The failure that reaches the limit locks, and the page says so at once.
    locked = _errors(_change(client, "guess"))["旧密码"]
    assert locked == "登录失败次数过多，请 15 分钟后再试。"
    # Locked: the right 旧密码 is not even checked, and nothing more is counted or audited.
    assert _errors(_change(client, OLD))["旧密码"] == locked
    user.refresh_from_db()
    assert user.check_password(OLD)
    entries = (
        AuditEntry.objects.filter(action__startswith="accounts.")
        .exclude(action="accounts.sign_in")  # the client's own, force_login's
        .order_by("sequence")
    )
    assert [(e.action, e.actor, e.object_id, e.ip) for e in entries] == [
        *[("accounts.old_password_failed", user, str(user.pk), "10.0.0.9")] * SIGN_IN_MAX_FAILURES,
        ("accounts.sign_in_locked", user, str(user.pk), "10.0.0.9"),
    ]
    # The same lock holds at the sign-in page from that address.
    page = Client(REMOTE_ADDR="10.0.0.9").post(
        "/accounts/login/", {"username": user.username, "password": OLD}
    )
    assert "登录失败次数过多" in page.content.decode()


def test_the_right_old_password_forgives_the_counted_failures(client, worker) -> None:
    user = worker
    for _attempt in range(SIGN_IN_MAX_FAILURES - 1):
        _change(client, "guess")
    assert SignInFailure.objects.filter(username=user.username).count() == 4
    assert _change(client, OLD).status_code == 302
    assert not SignInFailure.objects.exists()
    assert list(
        AuditEntry.objects.filter(action__startswith="accounts.")
        .order_by("-sequence")
        .values_list("action", flat=True)[:1]
    ) == ["accounts.user_password_change"]
