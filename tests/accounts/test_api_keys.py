"""API keys of integration accounts: issuing (shown once, only the hash kept), authenticating
over HTTP, revoking (the service and the admin's action), the admin that never shows a hash,
the issuing command, and the demo's sensor-gateway key."""

from __future__ import annotations

import hashlib
import stat
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role, User
from accounts.services import (
    KEY_PREFIX,
    ApiKeyError,
    api_key_authenticate,
    api_key_issue,
    api_key_revoke,
)
from audit.models import AuditEntry
from audit.selectors import chain_verify

pytestmark = pytest.mark.django_db

KEYS = "/admin/accounts/apikey/"
INCIDENTS = "/api/v1/incidents/"


def integration(username: str = "gateway") -> User:
    return User.objects.create_user(username, password=None, role=Role.INTEGRATION)


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


# --- issuing and authenticating -----------------------------------------------------------------


def test_a_key_is_returned_once_and_only_its_hash_is_stored():
    user = integration()

    key, raw = api_key_issue(user=user, name="水位传感网关", channels=["sensor", " sensor", ""])

    assert raw.startswith(KEY_PREFIX) and len(raw) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.key_hash, stored.prefix, stored.name}
    assert stored.prefix == raw[:10]
    assert stored.channel_list == ["sensor"]
    entry = AuditEntry.objects.get(action="accounts.api_key_issue")
    assert entry.after["channels"] == ["sensor"] and raw not in str(entry.after)
    assert api_key_authenticate(raw) == stored


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"channels": []}, "channels"),
        ({"channels": ["sensor", "Video AI"]}, "channels"),
    ],
)
def test_bad_key_requests_are_refused_naming_the_field(changes, field):
    arguments = {"user": integration(), "name": "网关", "channels": ["sensor"], **changes}

    with pytest.raises(ApiKeyError) as refused:
        api_key_issue(**arguments)

    assert refused.value.field == field
    assert not ApiKey.objects.exists()


def test_only_integration_accounts_get_keys():
    operator = User.objects.create_user(
        "operator", password=None, role=Role.DISTRICT_OPERATOR, place_code="440309"
    )

    with pytest.raises(ApiKeyError) as refused:
        api_key_issue(user=operator, name="x", channels=["sensor"])

    assert refused.value.field == "user"


def test_revoked_keys_and_inactive_accounts_do_not_authenticate():
    user = integration()
    revoked_key, revoked = api_key_issue(user=user, name="旧", channels=["sensor"])
    _, working = api_key_issue(user=user, name="新", channels=["sensor"])

    api_key_revoke(key=revoked_key)
    api_key_revoke(key=revoked_key)  # a second revoke changes nothing and audits nothing

    assert api_key_authenticate(revoked) is None
    assert api_key_authenticate(working) is not None
    assert AuditEntry.objects.filter(action="accounts.api_key_revoke").count() == 1
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert api_key_authenticate(working) is None
    assert api_key_authenticate("") is None
    assert api_key_authenticate("not-our-prefix") is None


def test_last_use_is_recorded_at_most_once_a_minute():
    key, raw = api_key_issue(user=integration(), name="网关", channels=["sensor"])

    first = api_key_authenticate(raw)
    assert first is not None and first.last_used_at is not None
    stamp = first.last_used_at
    again = api_key_authenticate(raw)
    assert again is not None and again.last_used_at == stamp  # no write within the minute
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=stamp - timedelta(minutes=2))
    later = api_key_authenticate(raw)
    assert later is not None and later.last_used_at > stamp - timedelta(minutes=2)


# --- over HTTP ---------------------------------------------------------------------------------


def test_the_api_key_header_signs_the_integration_in():
    user = integration()
    _, raw = api_key_issue(user=user, name="网关", channels=["sensor"])

    response = client_with(f"Api-Key {raw}").get(INCIDENTS)

    assert response.status_code == 200
    assert response.json()["count"] == 0  # it sees only what it reported: nothing yet


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Api-Key co_wrong", "接口密钥不存在或已停用。"),
        ("api-key co_unknown-key", "接口密钥不存在或已停用。"),
        ("Api-Key", "请按 Authorization: Api-Key <key> 发送一个密钥。"),
        ("Api-Key one two", "请按 Authorization: Api-Key <key> 发送一个密钥。"),
    ],
)
def test_a_bad_api_key_header_is_refused_saying_why(header, detail):
    response = client_with(header).get(INCIDENTS)

    # The general API's first authentication is the console's session, which sends no
    # challenge, so DRF answers 403 (docs/incidents.md); bulk intake, API keys only, says 401.
    assert response.status_code == 403
    assert response.json() == {"detail": detail}


def test_a_revoked_key_is_refused_on_the_next_request():
    key, raw = api_key_issue(user=integration(), name="网关", channels=["sensor"])
    client = client_with(f"Api-Key {raw}")
    assert client.get(INCIDENTS).status_code == 200

    api_key_revoke(key=key)

    assert client.get(INCIDENTS).json() == {"detail": "接口密钥不存在或已停用。"}
    english = client.get(INCIDENTS, headers={"accept-language": "en"}).json()
    assert english == {"detail": "Unknown or revoked API key."}


# --- the admin ----------------------------------------------------------------------------------


def test_the_admin_lists_keys_without_their_hashes_and_says_how_to_issue_one(admin_client):
    key, raw = api_key_issue(user=integration(), name="视频智能识别平台", channels=["video_ai"])

    listing = admin_client.get(KEYS).content.decode()
    page = admin_client.get(f"{KEYS}{key.pk}/change/").content.decode()

    assert "视频智能识别平台" in listing and key.prefix in listing and "video_ai" in listing
    assert "accounts_issue_api_key" in listing
    for html in (listing, page):
        assert key.key_hash not in html and raw not in html
        assert "key_hash" not in html
    assert admin_client.get(f"{KEYS}add/").status_code == 403


def test_the_admin_revokes_through_the_service_and_audits(admin_client):
    user = integration()
    first, first_raw = api_key_issue(user=user, name="一号网关", channels=["sensor"])
    second, _ = api_key_issue(user=user, name="二号网关", channels=["sensor"])

    response = admin_client.post(
        KEYS,
        {"action": "revoke", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "已停用 2 个接口密钥" in response.content.decode()
    assert not ApiKey.objects.filter(active=True).exists()
    entries = AuditEntry.objects.filter(action="accounts.api_key_revoke")
    assert entries.count() == 2
    assert {entry.actor_username for entry in entries} == {"admin"}
    assert api_key_authenticate(first_raw) is None
    assert chain_verify().ok


def test_keys_are_not_edited_or_deleted_in_the_admin(admin_client):
    key, _ = api_key_issue(user=integration(), name="网关", channels=["sensor"])

    admin_client.post(f"{KEYS}{key.pk}/change/", {"channels": "sensor,hotline_12345"})
    deleted = admin_client.post(f"{KEYS}{key.pk}/delete/", {"post": "yes"})

    assert ApiKey.objects.get(pk=key.pk).channels == "sensor"
    assert deleted.status_code == 403


# --- commands -----------------------------------------------------------------------------------


def test_the_command_creates_the_integration_account_and_prints_the_key_once():
    out = StringIO()

    call_command(
        "accounts_issue_api_key",
        "hotline",
        "--name",
        "12345平台",
        "--channels",
        "hotline_12345",
        stdout=out,
    )

    raw = out.getvalue().strip()
    user = User.objects.get(username="hotline")
    assert user.role == Role.INTEGRATION and not user.has_usable_password()
    key = api_key_authenticate(raw)
    assert key is not None and key.user == user and key.channel_list == ["hotline_12345"]


def test_the_command_refuses_an_account_that_is_not_an_integration():
    User.objects.create_user(
        "district", password=None, role=Role.DISTRICT_OPERATOR, place_code="440309"
    )

    with pytest.raises(CommandError, match="not an integration account"):
        call_command("accounts_issue_api_key", "district", "--name", "x", "--channels", "sensor")


def test_the_demo_users_include_the_sensor_gateway_with_a_kept_key(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    out = StringIO()

    call_command("cityops_demo_users", stdout=out)

    key_file = tmp_path / "var" / "demo_api_key"
    raw = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert raw in out.getvalue()
    key = api_key_authenticate(raw)
    assert key is not None and key.user.username == "sensor-gateway"
    assert key.user.role == Role.INTEGRATION and not key.user.has_usable_password()
    assert sorted(key.channel_list) == ["sensor", "video_ai"]

    call_command("cityops_demo_users", stdout=StringIO())  # again: the same key, no new one
    assert key_file.read_text().strip() == raw
    assert ApiKey.objects.filter(user=key.user).count() == 1

    api_key_revoke(key=key)  # a key that no longer works is replaced
    call_command("cityops_demo_users", stdout=StringIO())
    replaced = key_file.read_text().strip()
    assert replaced != raw and api_key_authenticate(replaced) is not None
