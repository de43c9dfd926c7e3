"""A new password or a deactivated account ends the user's other sessions at once (their rows
deleted, one entry `accounts.sessions_revoked` with the reason and how many), through the user's
own 修改密码 page and the admin; and the worker does not call a session such a change had ended
a timeout (accounts.services)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from accounts.models import Role, User
from accounts.services import sessions_end_expired, user_save
from audit.models import AuditEntry
from tests.accounts.devices import OLD, signed_in, user_with_password
from tests.incidents.cases import COMMUNITY, STREET, make_user

pytestmark = pytest.mark.django_db

NEW = "Longhua-2026-new!"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _key(client: Client) -> str:
    return client.cookies["sessionid"].value


def _stored(client: Client) -> bool:
    return Session.objects.filter(session_key=_key(client)).exists()


def _signed_in_still(client: Client) -> bool:
    return client.get("/api/v1/incidents/").status_code == 200


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("sequence"))


def _change_own_password(client: Client) -> Any:
    return client.post(
        "/accounts/password_change/",
        {"old_password": OLD, "new_password1": NEW, "new_password2": NEW},
        REMOTE_ADDR="10.0.0.1",
    )


@pytest.fixture
def admin_client() -> tuple[Client, User]:
    admin = User.objects.create_superuser("root", password=OLD, role=Role.ADMIN)
    return signed_in(admin, ip="10.9.9.9"), admin


def test_changing_ones_own_password_signs_the_other_devices_out_at_once() -> None:
    worker = user_with_password()
    phone, tablet, laptop = signed_in(worker), signed_in(worker), signed_in(worker)
    someone_else = signed_in(user_with_password(Role.STREET_OPERATOR, STREET))

    response = _change_own_password(phone)

    assert response.status_code == 302
    # The other devices' rows are gone now, not when they would have expired.
    assert not _stored(tablet) and not _stored(laptop)
    assert not _signed_in_still(tablet) and not _signed_in_still(laptop)
    # The device that changed it stays signed in (under the new key Django gave it), and
    # nobody else is touched.
    assert _stored(phone) and _signed_in_still(phone)
    assert _stored(someone_else) and _signed_in_still(someone_else)
    (entry,) = _entries("accounts.sessions_revoked")
    assert (entry.actor, entry.object_type, entry.object_id, entry.ip) == (
        worker,
        "accounts.user",
        str(worker.pk),
        "10.0.0.1",
    )
    assert entry.before is None
    assert entry.after == {"username": worker.username, "reason": "password_changed", "sessions": 2}
    # In the trail right after the change that caused it.
    (change,) = _entries("accounts.user_password_change")
    assert entry.sequence == change.sequence + 1


def test_a_password_change_that_ends_no_other_session_writes_no_entry() -> None:
    worker = user_with_password()
    phone = signed_in(worker)

    assert _change_own_password(phone).status_code == 302

    assert _signed_in_still(phone)
    assert len(_entries("accounts.user_password_change")) == 1
    assert _entries("accounts.sessions_revoked") == []


def test_a_password_the_admin_sets_signs_out_every_session_of_the_user(admin_client) -> None:
    client, admin = admin_client
    worker = user_with_password()
    phone, tablet = signed_in(worker), signed_in(worker)

    response = client.post(
        f"/admin/accounts/user/{worker.pk}/password/",
        {"set_usable_password": "true", "password1": NEW, "password2": NEW},
    )

    assert response.status_code == 302
    assert not _stored(phone) and not _stored(tablet)
    assert client.get("/admin/").status_code == 200  # the administrator is still signed in
    (entry,) = _entries("accounts.sessions_revoked")
    assert (entry.actor, entry.object_id, entry.ip) == (admin, str(worker.pk), "10.9.9.9")
    assert entry.after == {"username": worker.username, "reason": "password_set", "sessions": 2}


def test_an_admin_setting_their_own_password_keeps_the_page_that_did_it(admin_client) -> None:
    client, admin = admin_client
    other_desk = signed_in(admin)

    response = client.post(
        f"/admin/accounts/user/{admin.pk}/password/",
        {"set_usable_password": "true", "password1": NEW, "password2": NEW},
    )

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert not _stored(other_desk)
    (entry,) = _entries("accounts.sessions_revoked")
    assert entry.actor == admin
    assert entry.after == {"username": "root", "reason": "password_changed", "sessions": 1}


def _change_data(user: User, **changes: Any) -> dict[str, Any]:
    """The admin's change form as the browser posts it, with `changes`."""
    data = {k: v for k, v in model_to_dict(user).items() if v is not None}
    for name in ("date_joined", "last_login", "password"):
        data.pop(name, None)
    data["groups"] = []
    data["user_permissions"] = []
    data["date_joined_0"] = user.date_joined.strftime("%Y-%m-%d")
    data["date_joined_1"] = user.date_joined.strftime("%H:%M:%S")
    data.update(changes)
    return data


def test_deactivating_an_account_signs_it_out_everywhere(admin_client) -> None:
    client, admin = admin_client
    staff = user_with_password(Role.COMMUNITY_STAFF, COMMUNITY)
    desk, phone = signed_in(staff), signed_in(staff)
    data = _change_data(staff)
    data.pop("is_active")  # an unticked box is not posted

    response = client.post(f"/admin/accounts/user/{staff.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not _stored(desk) and not _stored(phone)
    change, revoked = _entries("accounts.user_change") + _entries("accounts.sessions_revoked")
    assert change.after == {"username": staff.username, "is_active": False}
    assert (revoked.actor, revoked.sequence) == (admin, change.sequence + 1)
    assert revoked.after == {"username": staff.username, "reason": "deactivated", "sessions": 2}


def test_a_change_that_neither_deactivates_nor_sets_a_password_signs_nobody_out(
    admin_client,
) -> None:
    client, _ = admin_client
    staff = user_with_password(Role.COMMUNITY_STAFF, COMMUNITY)
    desk = signed_in(staff)

    response = client.post(
        f"/admin/accounts/user/{staff.pk}/change/", _change_data(staff, first_name="王五")
    )

    assert response.status_code == 302
    assert _stored(desk) and _signed_in_still(desk)
    assert _entries("accounts.sessions_revoked") == []


def test_a_password_saved_through_user_save_signs_the_user_out_too(admin_client) -> None:
    # Any caller of the service that sets a password (a command, a future page) ends the
    # sessions as the admin's password page does.
    _, admin = admin_client
    worker = user_with_password()
    phone = signed_in(worker)
    worker.set_password(NEW)

    user_save(user=worker, by=admin)

    assert not _stored(phone)
    (entry,) = _entries("accounts.sessions_revoked")
    assert (entry.actor, entry.after["reason"], entry.after["sessions"]) == (
        admin,
        "password_set",
        1,
    )


def _expire(client: Client, ago: timedelta = timedelta(seconds=1)) -> None:
    Session.objects.filter(session_key=_key(client)).update(expire_date=timezone.now() - ago)


def test_a_session_that_had_already_timed_out_is_audited_as_a_timeout() -> None:
    # The worker had not yet deleted it when the password changed: it ended by its limit.
    worker = user_with_password()
    phone, forgotten, tablet = signed_in(worker), signed_in(worker), signed_in(worker)
    _expire(forgotten, timedelta(minutes=5))

    assert _change_own_password(phone).status_code == 302

    assert not _stored(forgotten) and not _stored(tablet)
    (expired,) = _entries("accounts.session_expired")
    assert expired.actor == worker
    (revoked,) = _entries("accounts.sessions_revoked")
    assert revoked.after["sessions"] == 1


# --- the worker and sessions a change had ended before this (sessions_end_expired) -----------


def test_the_worker_does_not_call_a_session_a_new_password_ended_a_timeout() -> None:
    # A password set past the services (as before sessions were ended at the change, or with
    # Django's changepassword command) leaves the old sessions' rows, no longer signed in
    # (until the device comes back: Django then deletes the row as it signs it out).
    worker = user_with_password()
    tablet = signed_in(worker)
    worker.set_password(NEW)
    worker.save()
    _expire(tablet)

    assert sessions_end_expired(now=timezone.now()) == 1

    assert not _stored(tablet)
    assert _entries("accounts.session_expired") == []
    (entry,) = _entries("accounts.sessions_revoked")
    assert (entry.actor, entry.object_id, entry.ip) == (worker, str(worker.pk), None)
    assert entry.after["username"] == worker.username
    assert (entry.after["reason"], entry.after["sessions"]) == ("stale", 1)
    assert entry.after["expired_at"] and entry.after["last_active"]


def test_the_worker_does_not_call_a_deactivated_accounts_session_a_timeout() -> None:
    staff = user_with_password(Role.COMMUNITY_STAFF, COMMUNITY)
    desk = signed_in(staff)
    User.objects.filter(pk=staff.pk).update(is_active=False)
    _expire(desk)

    assert sessions_end_expired(now=timezone.now()) == 1

    assert _entries("accounts.session_expired") == []
    assert [e.after["reason"] for e in _entries("accounts.sessions_revoked")] == ["stale"]


def test_a_session_signed_under_a_fallback_secret_key_still_timed_out(settings: Any) -> None:
    # Rotating SECRET_KEY with the old one in SECRET_KEY_FALLBACKS keeps sessions signed in
    # (Django checks their hash under the fallbacks too): such a one ends as a timeout.
    worker = user_with_password()
    tablet = signed_in(worker)
    _expire(tablet)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "rotated-" + settings.SECRET_KEY

    assert sessions_end_expired(now=timezone.now()) == 1

    assert [e.actor for e in _entries("accounts.session_expired")] == [worker]
    assert _entries("accounts.sessions_revoked") == []


# --- the audit page -----------------------------------------------------------------------


def test_the_audit_page_names_the_entry_and_its_reason_in_words() -> None:
    worker = user_with_password()
    phone = signed_in(worker)
    signed_in(worker)
    _change_own_password(phone)
    auditor = make_user(Role.AUDITOR)
    client = Client()
    client.force_login(auditor)

    page = client.get("/command/audit/?action=accounts.sessions_revoked")

    assert page.status_code == 200
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.content.decode())))
    assert "强制下线" in text and f"用户 {worker.username}" in text
    assert "原因 reason — 本人修改密码 password_changed" in text
    assert "退出的会话数 sessions — 1" in text
