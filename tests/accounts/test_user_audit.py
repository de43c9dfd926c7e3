"""Changes to users are audit entries: who made an account, gave it which role, place and groups,
set its password or deleted it (accounts.services, through the admin and the user's own
修改密码 page)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.forms.models import model_to_dict
from django.test import Client

from accounts.models import Role, User
from audit.models import AuditEntry
from tests.incidents.cases import COMMUNITY, GRID, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client() -> tuple[Client, User]:
    admin = User.objects.create_superuser("root", password=None, role=Role.ADMIN)
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.force_login(admin)
    return client, admin


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("sequence"))


def _change_data(user: User, **changes: Any) -> dict[str, Any]:
    """The admin's change form as the browser posts it, with `changes`."""
    data = {k: v for k, v in model_to_dict(user).items() if v is not None}
    data.pop("date_joined", None)
    data.pop("last_login", None)
    data.pop("password", None)
    data["groups"] = [group.pk for group in user.groups.all()]
    data["user_permissions"] = []
    data["date_joined_0"] = user.date_joined.strftime("%Y-%m-%d")
    data["date_joined_1"] = user.date_joined.strftime("%H:%M:%S")
    data.update(changes)
    return data


def test_an_account_made_in_the_admin_is_audited_without_its_password(admin_client) -> None:
    client, admin = admin_client
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "wangwu",
            "usable_password": "true",
            "password1": "Longhua-2026-typhoon",
            "password2": "Longhua-2026-typhoon",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="wangwu")
    (entry,) = _entries("accounts.user_create")
    assert (entry.actor, entry.object_type, entry.object_id) == (
        admin,
        "accounts.user",
        str(user.pk),
    )
    assert entry.ip == "10.1.2.3"
    assert entry.before is None
    assert entry.after["username"] == "wangwu"
    assert entry.after["password"] == "set"
    assert entry.after["role"] == "" and entry.after["is_active"] is True
    # Neither the password nor its hash is anywhere in the entry.
    stored = json.dumps([entry.before, entry.after], ensure_ascii=False)
    assert "Longhua-2026-typhoon" not in stored and user.password not in stored


def test_a_role_place_and_group_change_is_one_entry_with_what_changed(admin_client) -> None:
    client, admin = admin_client
    duty = Group.objects.create(name="值班组")
    worker = make_user(Role.GRID_WORKER, GRID, phone="13812345678")
    response = client.post(
        f"/admin/accounts/user/{worker.pk}/change/",
        _change_data(worker, role=Role.COMMUNITY_STAFF, place_code=COMMUNITY, groups=[duty.pk]),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (entry,) = _entries("accounts.user_change")
    assert entry.actor == admin
    assert entry.before == {
        "username": worker.username,
        "role": "grid_worker",
        "place_code": GRID,
        "groups": [],
    }
    assert entry.after == {
        "username": worker.username,
        "role": "community_staff",
        "place_code": COMMUNITY,
        "groups": ["值班组"],
    }


def test_a_phone_change_is_audited_masked(admin_client) -> None:
    client, _ = admin_client
    worker = make_user(Role.GRID_WORKER, GRID, phone="13812345678")
    response = client.post(
        f"/admin/accounts/user/{worker.pk}/change/", _change_data(worker, phone="13998765432")
    )
    assert response.status_code == 302
    (entry,) = _entries("accounts.user_change")
    assert entry.before == {"username": worker.username, "phone": "138****5678"}
    assert entry.after == {"username": worker.username, "phone": "139****5432"}


def test_saving_a_user_unchanged_writes_no_entry_and_a_refused_change_none(admin_client) -> None:
    client, _ = admin_client
    worker = make_user(Role.GRID_WORKER, GRID)
    assert (
        client.post(f"/admin/accounts/user/{worker.pk}/change/", _change_data(worker)).status_code
        == 302
    )
    refused = client.post(
        f"/admin/accounts/user/{worker.pk}/change/", _change_data(worker, place_code="440309999")
    )
    assert refused.status_code == 200  # the form again, with the reason
    assert _entries("accounts.user_change") == []


def test_a_password_the_admin_sets_is_audited_and_a_refused_one_is_not(admin_client) -> None:
    client, admin = admin_client
    worker = make_user(Role.GRID_WORKER, GRID)
    url = f"/admin/accounts/user/{worker.pk}/password/"
    mismatch = client.post(
        url,
        {"set_usable_password": "true", "password1": "Longhua-2026-a", "password2": "other-2026-b"},
    )
    assert mismatch.status_code == 200
    assert _entries("accounts.user_password_change") == []
    done = client.post(
        url,
        {
            "set_usable_password": "true",
            "password1": "Longhua-2026-a",
            "password2": "Longhua-2026-a",
        },
    )
    assert done.status_code == 302
    worker.refresh_from_db()
    assert worker.check_password("Longhua-2026-a")
    (entry,) = _entries("accounts.user_password_change")
    assert (entry.actor, entry.object_id, entry.ip) == (admin, str(worker.pk), "10.1.2.3")
    assert entry.before == {"username": worker.username, "password": "none"}  # it had none
    assert entry.after == {"username": worker.username, "password": "changed"}
    assert worker.password not in json.dumps(entry.after)
    # A page for an id that is not a user is the admin's answer, not a server error.
    assert client.post("/admin/accounts/user/abc/password/", {}).status_code in (302, 404)


def test_an_account_that_never_acted_is_deleted_with_an_entry_one_that_acted_is_kept(
    admin_client,
) -> None:
    client, admin = admin_client
    unused = make_user(Role.GRID_WORKER, GRID)
    response = client.post(f"/admin/accounts/user/{unused.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=unused.pk).exists()
    (entry,) = _entries("accounts.user_delete")
    assert (entry.actor, entry.object_id) == (admin, str(unused.pk))
    assert entry.before["username"] == unused.username and entry.after is None

    # One who signed in is in the trail: the admin explains instead of deleting.
    acted = make_user(Role.GRID_WORKER, GRID)
    Client().force_login(acted)
    page = client.post(f"/admin/accounts/user/{acted.pk}/delete/", {"post": "yes"})
    assert page.status_code == 200
    assert User.objects.filter(pk=acted.pk).exists()
    assert len(_entries("accounts.user_delete")) == 1


def test_a_users_own_password_change_is_audited(settings) -> None:
    worker = make_user(Role.GRID_WORKER, GRID)
    worker.set_password("Longhua-2026-old")
    worker.save()
    client = Client()
    client.force_login(worker)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200 and "修改密码" in page.content.decode()
    wrong = client.post(
        "/accounts/password_change/",
        {
            "old_password": "nope",
            "new_password1": "Longhua-2026-new",
            "new_password2": "Longhua-2026-new",
        },
    )
    assert wrong.status_code == 200
    assert _entries("accounts.user_password_change") == []
    done = client.post(
        "/accounts/password_change/",
        {
            "old_password": "Longhua-2026-old",
            "new_password1": "Longhua-2026-new",
            "new_password2": "Longhua-2026-new",
        },
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/password_change/done/"
    (entry,) = _entries("accounts.user_password_change")
    assert entry.actor == worker and entry.object_id == str(worker.pk)
    assert client.get(done["Location"]).status_code == 200  # still signed in on this device


def test_the_admins_own_password_link_leads_to_the_audited_page(admin_client) -> None:
    client, _ = admin_client
    response = client.get("/admin/password_change/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/password_change/")


def test_there_is_no_password_reset_by_mail() -> None:
    # The system sends no mail: an administrator resets passwords (audited, above).
    assert Client().get("/accounts/password_reset/").status_code == 404
