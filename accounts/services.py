"""Changes to accounts: users as administrators create and change them, sign-ins, and API keys
for integrations (sensor gateways, the 12345 platform, video AI, Open311 clients).

Every change to a user is an audit entry: who created or changed which account, its role, place
and rights before and after, a password set (never its hash), an account deleted. Sign-ins,
sign-outs and failed sign-ins are audit entries too (who could see what, from where, and when),
and too many failures from one address lock it out for a while (`sign_in_locked_until`).
Django's auth sends the sign-in signals; accounts.signin connects them to the functions here.

A key is shown once, when issued; the database keeps its SHA-256 only, so a leaked database
does not leak working keys. `api_key_authenticate` is what the API's authentication class
calls on every request that carries a key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import is_password_usable
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, Role, SignInFailure, User, mask_phone
from accounts.selectors import user_id_for_username
from accounts.sessions import ACTIVE_AT
from audit.models import AuditEntry
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


# --- users ---------------------------------------------------------------------------------------

# What an audit entry records of a user: never the password's hash; the phone masked.
USER_AUDIT_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "role",
    "place_code",
    "department_code",
    "phone",
    "is_active",
    "is_staff",
    "is_superuser",
)

# What an entry says of a password: one is set, there is none (signs in otherwise, or not at
# all), it was changed.
PASSWORD_SET, PASSWORD_NONE, PASSWORD_CHANGED = "set", "none", "changed"


def user_facts(user: User) -> dict[str, Any]:
    """A user as their audit entries show them: the fields above, whether a password is set,
    the groups and the permissions given to the user directly."""
    facts: dict[str, Any] = {name: getattr(user, name) for name in USER_AUDIT_FIELDS}
    facts["phone"] = mask_phone(user.phone or "")
    facts["password"] = PASSWORD_SET if user.has_usable_password() else PASSWORD_NONE
    facts["groups"] = sorted(user.groups.values_list("name", flat=True)) if user.pk else []
    facts["user_permissions"] = (
        sorted(
            f"{app_label}.{codename}"
            for app_label, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        )
        if user.pk
        else []
    )
    return facts


def user_save(
    *,
    user: User,
    by: Any = None,
    ip: str | None = None,
    save_related: Callable[[], None] | None = None,
) -> User:
    """Create or change a user as an administrator does, audited: `accounts.user_create` with
    the new account, or `accounts.user_change` with the fields that changed, before and after.

    `save_related` saves what the form holds beside the row (groups, permissions) after the row
    is saved, so one entry covers both. The caller has run the form's checks (User.clean). A
    save that changes nothing writes no entry.
    """
    with transaction.atomic():
        stored = User.objects.filter(pk=user.pk).first() if user.pk else None
        before = user_facts(stored) if stored is not None else None
        user.save()
        if save_related is not None:
            save_related()
        after = user_facts(user)
        if before is None:
            _audit_user(user, "accounts.user_create", None, after, by=by, ip=ip)
            return user
        changed = [name for name in after if after[name] != before[name]]
        if stored is not None and stored.password != user.password and "password" not in changed:
            changed.append("password")
            after["password"] = PASSWORD_CHANGED
        if changed:
            _audit_user(
                user,
                "accounts.user_change",
                {name: before[name] for name in changed},
                {name: after[name] for name in changed},
                by=by,
                ip=ip,
            )
    return user


def user_password_changed(
    *, user: User, by: Any = None, ip: str | None = None, previous_hash: str
) -> None:
    """Audit a password Django's password forms have just set (the admin's 修改密码 page, the
    user's own): `accounts.user_password_change`, in the form's transaction. The entry says
    whether the user now has a password, never what it is or its hash. Nothing is written when
    the stored hash is still `previous_hash`."""
    stored = User.objects.filter(pk=user.pk).first()
    if stored is None or stored.password == previous_hash:
        return
    _audit_user(
        stored,
        "accounts.user_password_change",
        {"password": PASSWORD_SET if is_password_usable(previous_hash) else PASSWORD_NONE},
        {"password": PASSWORD_CHANGED if stored.has_usable_password() else PASSWORD_NONE},
        by=by,
        ip=ip,
    )


def user_delete(*, user: User, by: Any = None, ip: str | None = None) -> None:
    """Delete an account that never acted (one that did is referred to by the audit trail and
    cannot be deleted: deactivate it instead). Audited with what the account was."""
    with transaction.atomic():
        before = user_facts(user)
        pk = user.pk
        user.delete()
        audit_record(
            actor=by,
            action="accounts.user_delete",
            obj_type="accounts.user",
            obj_id=pk,
            before=before,
            after=None,
            ip=ip,
        )


def _audit_user(
    user: User,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    by: Any,
    ip: str | None,
) -> None:
    """An entry about a user, naming them by username on both sides (the id alone says little to
    whoever reads the trail; a renamed user's `before` keeps the old name)."""
    which = {"username": user.username}
    audit_record(
        actor=by,
        action=action,
        obj_type="accounts.user",
        obj_id=user.pk,
        before={**which, **before} if before is not None else None,
        after={**which, **after} if after is not None else None,
        ip=ip,
    )


# --- signing in ----------------------------------------------------------------------------------

# Failed sign-ins count for this long; an address with too many is refused until its oldest
# counted failure is this old.
SIGN_IN_WINDOW = timedelta(minutes=15)
# Failures from one address for one username (a guessed password) …
SIGN_IN_MAX_FAILURES = 5
# … and from one address for any usernames (guessing through a list of accounts). Grid workers
# on one mobile network can share an address, so this one is higher.
SIGN_IN_MAX_FAILURES_PER_ADDRESS = 50


def _username_key(username: Any) -> str:
    return str(username or "").strip().lower()[:150]


def sign_in_locked_until(username: Any, ip: str | None) -> datetime | None:
    """When `ip` may try to sign in as `username` again, or None if it may now."""
    since = timezone.now() - SIGN_IN_WINDOW
    recent = SignInFailure.objects.filter(ip=ip, at__gte=since)
    for failures, limit in (
        (recent.filter(username=_username_key(username)), SIGN_IN_MAX_FAILURES),
        (recent, SIGN_IN_MAX_FAILURES_PER_ADDRESS),
    ):
        # The limit-th most recent failure: the lock ends when it leaves the window.
        oldest_counted = (
            failures.order_by("-at").values_list("at", flat=True)[limit - 1 : limit].first()
        )
        if oldest_counted is not None:
            return oldest_counted + SIGN_IN_WINDOW
    return None


def sign_in_failed(*, username: Any, ip: str | None) -> None:
    """Count and audit a failed sign-in (`accounts.sign_in_failed`, the username as typed), and
    when it is the one that locks the address, `accounts.sign_in_locked` with the time it
    ends. An attempt refused because the address is already locked is neither counted nor
    audited again (the lock would never end, and a flood would fill the trail)."""
    _count_failure(username, ip, action="accounts.sign_in_failed", actor=None)


def old_password_failed(*, user: User, ip: str | None) -> None:
    """Count and audit a wrong 旧密码 on a signed-in user's own 修改密码
    (`accounts.old_password_failed`, by the user): it is a guess at the password as much as a
    failed sign-in is, so it counts towards the same lock (`accounts.sign_in_locked`), which
    then refuses the form as it refuses the sign-in page. Otherwise a session left open, or
    taken, could be used to go on guessing the password, unlimited and unrecorded."""
    _count_failure(user.get_username(), ip, action="accounts.old_password_failed", actor=user)


def _count_failure(username: Any, ip: str | None, *, action: str, actor: User | None) -> None:
    """A failed password check of `username` from `ip`: counted and audited as `action`, and
    `accounts.sign_in_locked` when it is the one that locks the address; nothing while the
    address is already locked."""
    key = _username_key(username)
    now = timezone.now()
    with transaction.atomic():
        if sign_in_locked_until(key, ip) is not None:
            return
        SignInFailure.objects.filter(at__lt=now - SIGN_IN_WINDOW).delete()
        SignInFailure.objects.create(username=key, ip=ip, at=now)
        # The account's id when the username names one (its entries then read together), else
        # the name as typed.
        account = user_id_for_username(key)
        facts = {"username": key, "known": account is not None}
        # A name typed longer than an entry's object id holds is cut there (the whole of it, up
        # to a username's length, is in `after`).
        obj_id = account or key[: AuditEntry._meta.get_field("object_id").max_length]
        audit_record(
            actor=actor,
            action=action,
            obj_type="accounts.user",
            obj_id=obj_id,
            before=None,
            after=facts,
            ip=ip,
        )
        until = sign_in_locked_until(key, ip)
        if until is not None:
            audit_record(
                actor=actor,
                action="accounts.sign_in_locked",
                obj_type="accounts.user",
                obj_id=obj_id,
                before=None,
                after={**facts, "until": until},
                ip=ip,
            )


def password_failures_forgiven(*, user: User, ip: str | None) -> None:
    """The address's counted failures for `user` are forgiven: it has just given the right
    password (a sign-in, or the 旧密码 of 修改密码)."""
    SignInFailure.objects.filter(username=_username_key(user.get_username()), ip=ip).delete()


def signed_in(*, user: User, ip: str | None) -> None:
    """Audit a sign-in (`accounts.sign_in`); the address's failures for this user are forgiven."""
    with transaction.atomic():
        password_failures_forgiven(user=user, ip=ip)
        audit_record(
            actor=user,
            action="accounts.sign_in",
            obj_type="accounts.user",
            obj_id=user.pk,
            before=None,
            after=None,
            ip=ip,
        )


def signed_out(*, user: User, ip: str | None) -> None:
    with transaction.atomic():
        audit_record(
            actor=user,
            action="accounts.sign_out",
            obj_type="accounts.user",
            obj_id=user.pk,
            before=None,
            after=None,
            ip=ip,
        )


# --- sessions that ended on their own ------------------------------------------------------------

# Most expired sessions one call ends; each chunk is one transaction.
SESSIONS_BATCH = 500
_SESSIONS_CHUNK = 100


def sessions_end_expired(*, now: datetime, batch: int = SESSIONS_BATCH) -> int:
    """Delete the stored sessions that expired by `now` (at most `batch`, the earliest first)
    and audit each one that was a user's as `accounts.session_expired` (by that user, with when
    it expired and when it was last used): a sign-out nobody asked for, 登录连接超时自动退出,
    is in the trail beside the sign-in it ends. Returns how many were deleted.

    Django keeps an expired session's row (it only reads as empty) until something deletes it;
    this is that something (Django's `clearsessions`, with the audit). Several callers may run at
    once: a session is audited by the one whose delete removed it."""
    ended = 0
    while ended < batch:
        with transaction.atomic():
            rows = Session.objects.filter(expire_date__lte=now).order_by("expire_date")
            if connection.features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True)
            chunk = list(rows[: min(_SESSIONS_CHUNK, batch - ended)])
            if not chunk:
                break
            decoded = [(row, row.get_decoded()) for row in chunk]
            users = User.objects.in_bulk(
                {_session_user_id(data) for _row, data in decoded} - {None}
            )
            for row, data in decoded:
                if not Session.objects.filter(pk=row.pk).delete()[0]:
                    continue  # another caller's
                ended += 1
                user_id = _session_user_id(data)
                user = users.get(user_id) if user_id is not None else None
                if user is None:
                    continue  # no one's, or an account since deleted
                active_at = data.get(ACTIVE_AT)
                audit_record(
                    actor=user,
                    action="accounts.session_expired",
                    obj_type="accounts.user",
                    obj_id=user.pk,
                    before=None,
                    after={
                        "expired_at": row.expire_date,
                        "last_active": (
                            datetime.fromtimestamp(active_at, tz=UTC)
                            if isinstance(active_at, int)
                            else None
                        ),
                    },
                    ip=None,
                )
    return ended


def _session_user_id(data: dict[str, Any]) -> int | None:
    """The id of the user a session's data was signed in as (Django keeps it as text)."""
    value = str(data.get(SESSION_KEY, ""))
    return int(value) if value.isdigit() else None
