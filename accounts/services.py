"""Changes to accounts: API keys for integrations (sensor gateways, the 12345 platform, video AI,
Open311 clients).

A key is shown once, when issued; the database keeps its SHA-256 only, so a leaked database
does not leak working keys. `api_key_authenticate` is what the API's authentication class
calls on every request that carries a key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Role, User
from audit.services import audit_record

KEY_PREFIX = "co_"
_CHANNEL = re.compile(r"^[a-z0-9_]{1,32}$")
# last_used_at is refreshed at most this often (not a write per request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """A refused key request: `field` names the parameter, `reason` says what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_issue(
    *, user: User, name: str, channels: Iterable[str], by: User | None = None
) -> tuple[ApiKey, str]:
    """A new key for an integration account; returns the row and the key (shown once)."""
    if user.role != Role.INTEGRATION:
        raise ApiKeyError("user", f"{user.username} is not an integration account")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApiKeyError("name", "is required, at most 100 characters")
    channel_list = sorted({c.strip() for c in channels if c.strip()})
    if not channel_list:
        raise ApiKeyError("channels", "name at least one intake channel")
    for channel in channel_list:
        if not _CHANNEL.match(channel):
            raise ApiKeyError("channels", f"{channel!r} is not a channel name")
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            user=user,
            name=name,
            prefix=raw_key[:10],
            key_hash=_digest(raw_key),
            channels=",".join(channel_list),
        )
        audit_record(
            actor=by,
            action="accounts.api_key_issue",
            obj_type="accounts.apikey",
            obj_id=key.pk,
            before=None,
            after={
                "user": user.username,
                "name": name,
                "prefix": key.prefix,
                "channels": channel_list,
            },
        )
    return key, raw_key


def api_key_revoke(*, key: ApiKey, by: User | None = None) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key.pk)
        if key.active:
            key.active = False
            key.save(update_fields=["active"])
            audit_record(
                actor=by,
                action="accounts.api_key_revoke",
                obj_type="accounts.apikey",
                obj_id=key.pk,
                before={"active": True},
                after={"active": False},
            )
    return key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` whose account is active, or None."""
    if not raw_key or not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 200:
        return None
    key = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=_digest(raw_key), active=True, user__is_active=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
