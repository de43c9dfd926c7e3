"""Signing in is audited, and an address that keeps failing is locked out for a while
(accounts.signin, accounts.services): on the site's sign-in page and on the admin's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role, SignInFailure, User
from accounts.services import (
    SIGN_IN_MAX_FAILURES,
    SIGN_IN_MAX_FAILURES_PER_ADDRESS,
    SIGN_IN_WINDOW,
)
from audit.models import AuditEntry
from tests.incidents.cases import GRID, make_user

pytestmark = pytest.mark.django_db

PASSWORD = "grid-Worker-2026"
LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def worker() -> User:
    user = make_user(Role.GRID_WORKER, GRID)
    user.set_password(PASSWORD)
    user.save()
    return user


def _browser(ip: str = "10.0.0.7") -> Client:
    return Client(REMOTE_ADDR=ip)


def _sign_in(browser: Client, username: str, password: str, url: str = LOGIN) -> Any:
    return browser.post(url, {"username": username, "password": password})


def _accounts_entries() -> Any:
    # The test database's geography has entries of its own before these.
    return AuditEntry.objects.filter(action__startswith="accounts.").order_by("sequence")


def test_signing_in_and_out_are_audited_with_the_address(worker) -> None:
    browser = _browser()
    assert _sign_in(browser, worker.username, PASSWORD).status_code == 302
    browser.post("/accounts/logout/")
    entries = list(_accounts_entries())
    assert [(e.action, e.actor, e.object_id, e.ip) for e in entries] == [
        ("accounts.sign_in", worker, str(worker.pk), "10.0.0.7"),
        ("accounts.sign_out", worker, str(worker.pk), "10.0.0.7"),
    ]


def test_a_failed_sign_in_is_audited_with_the_name_typed(worker) -> None:
    browser = _browser()
    wrong = _sign_in(browser, worker.username.upper(), "not-it")
    assert wrong.status_code == 200 and "_auth_user_id" not in browser.session
    _sign_in(browser, "nobody-here", "x")
    failed = list(AuditEntry.objects.filter(action="accounts.sign_in_failed").order_by("sequence"))
    assert [(e.actor, e.object_id, e.after) for e in failed] == [
        (None, str(worker.pk), {"username": worker.username, "known": True}),
        (None, "nobody-here", {"username": "nobody-here", "known": False}),
    ]
    # The password typed is nowhere in the trail.
    assert not AuditEntry.objects.filter(after__icontains="not-it").exists()


def test_a_very_long_name_typed_is_refused_and_audited_not_a_server_error() -> None:
    # Django's sign-in form does not limit the username's length on the server.
    browser = _browser()
    response = _sign_in(browser, "u" * 500, "x")
    assert response.status_code == 200 and "_auth_user_id" not in browser.session
    entry = AuditEntry.objects.get(action="accounts.sign_in_failed")
    assert entry.object_id == "u" * 100
    assert entry.after == {"username": "u" * 150, "known": False}


def test_an_empty_sign_in_names_the_empty_fields() -> None:
    page = _sign_in(_browser(), "", "").content.decode()
    assert page.count('class="form-error"') == 2 and "该字段是必填项。" in page
    assert not _accounts_entries().exists()


def test_too_many_failures_lock_the_address_out_even_with_the_right_password(worker) -> None:
    browser = _browser()
    for _ in range(SIGN_IN_MAX_FAILURES):
        assert _sign_in(browser, worker.username, "wrong").status_code == 200
    locked = _sign_in(browser, worker.username, PASSWORD)
    assert locked.status_code == 200
    assert "_auth_user_id" not in browser.session
    assert "登录失败次数过多，请 15 分钟后再试。" in locked.content.decode()
    elsewhere = _sign_in(_browser("10.0.0.8"), worker.username, PASSWORD)
    assert elsewhere.status_code == 302  # another address is not locked
    assert [entry.action for entry in _accounts_entries()] == [
        *["accounts.sign_in_failed"] * SIGN_IN_MAX_FAILURES,
        "accounts.sign_in_locked",
        "accounts.sign_in",
    ]
    lock = AuditEntry.objects.get(action="accounts.sign_in_locked")
    assert lock.ip == "10.0.0.7" and lock.after["username"] == worker.username
    # Attempts while locked are neither counted nor audited again.
    _sign_in(browser, worker.username, "wrong")
    assert SignInFailure.objects.count() == SIGN_IN_MAX_FAILURES
    assert _accounts_entries().count() == SIGN_IN_MAX_FAILURES + 2


def test_the_lock_speaks_english_too(worker) -> None:
    browser = _browser()
    for _ in range(SIGN_IN_MAX_FAILURES):
        _sign_in(browser, worker.username, "wrong")
    locked = browser.post(
        LOGIN, {"username": worker.username, "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.content.decode()


def test_the_lock_ends_when_the_failures_age_out(worker) -> None:
    browser = _browser()
    for _ in range(SIGN_IN_MAX_FAILURES):
        _sign_in(browser, worker.username, "wrong")
    SignInFailure.objects.update(at=timezone.now() - SIGN_IN_WINDOW - timedelta(seconds=1))
    assert _sign_in(browser, worker.username, PASSWORD).status_code == 302
    # A sign-in forgives that address's failures for that user.
    assert not SignInFailure.objects.filter(username=worker.username).exists()


def test_a_sign_in_forgives_earlier_failures(worker) -> None:
    browser = _browser()
    for _ in range(SIGN_IN_MAX_FAILURES - 1):
        _sign_in(browser, worker.username, "wrong")
    assert _sign_in(browser, worker.username, PASSWORD).status_code == 302
    browser.post("/accounts/logout/")
    for _ in range(SIGN_IN_MAX_FAILURES - 1):
        _sign_in(browser, worker.username, "wrong")
    assert _sign_in(browser, worker.username, PASSWORD).status_code == 302


def test_guessing_through_many_names_locks_the_address(worker) -> None:
    browser = _browser()
    for n in range(SIGN_IN_MAX_FAILURES_PER_ADDRESS):
        _sign_in(browser, f"guess-{n}", "wrong")
    locked = _sign_in(browser, worker.username, PASSWORD)
    assert locked.status_code == 200 and "_auth_user_id" not in browser.session
    assert "登录失败次数过多" in locked.content.decode()


def test_the_admins_sign_in_page_is_locked_and_audited_too() -> None:
    admin = User.objects.create_superuser("root", password=PASSWORD, role=Role.ADMIN)
    browser = _browser()
    for _ in range(SIGN_IN_MAX_FAILURES):
        _sign_in(browser, "root", "wrong", url="/admin/login/")
    locked = _sign_in(browser, "root", PASSWORD, url="/admin/login/")
    assert locked.status_code == 200 and "登录失败次数过多" in locked.content.decode()
    assert AuditEntry.objects.filter(action="accounts.sign_in_locked").count() == 1
    ok = _sign_in(_browser("10.0.0.8"), "root", PASSWORD, url="/admin/login/")
    assert ok.status_code == 302
    assert AuditEntry.objects.filter(action="accounts.sign_in", actor=admin).count() == 1
