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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import is_password_usable
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

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
    session_key: str | None = None,
    via: str | None = None,
) -> User:
    """Create or change a user as an administrator does, audited: `accounts.user_create` with
    the new account, or `accounts.user_change` with the fields that changed, before and after.
    `via` names what made the change when no one signed in made it (a command, see
    `_audit_user`).

    `save_related` saves what the form holds beside the row (groups, permissions) after the row
    is saved, so one entry covers both. The caller has run the form's checks (User.clean). A
    save that changes nothing writes no entry.

    A change that deactivates the account, or changes its password, ends the account's
    sessions in the same transaction (`accounts.sessions_revoked`, see `_sessions_end`), but
    for `session_key`, the session making the change, when it is the user's own.
    """
    with transaction.atomic():
        stored = User.objects.filter(pk=user.pk).first() if user.pk else None
        before = user_facts(stored) if stored is not None else None
        user.save()
        if save_related is not None:
            save_related()
        after = user_facts(user)
        if stored is None or before is None:
            _audit_user(user, "accounts.user_create", None, after, by=by, ip=ip, via=via)
            return user
        changed = [name for name in after if after[name] != before[name]]
        if stored.password != user.password and "password" not in changed:
            changed.append("password")
            after["password"] = PASSWORD_CHANGED
        revoke_reason = None
        if stored.is_active and not user.is_active:
            revoke_reason = SESSIONS_DEACTIVATED
        elif stored.password != user.password:
            revoke_reason = _password_reason(user, by)
        # Found before the entries are written: the scan is the slow part, and the first entry
        # locks the audit chain's head until commit.
        sessions = (
            _user_sessions(user, keep=_kept(session_key, user, by))
            if revoke_reason is not None
            else None
        )
        if changed:
            _audit_user(
                user,
                "accounts.user_change",
                {name: before[name] for name in changed},
                {name: after[name] for name in changed},
                by=by,
                ip=ip,
                via=via,
            )
        if sessions is not None and revoke_reason is not None:
            _sessions_end(user, sessions, reason=revoke_reason, by=by, ip=ip, via=via)
    return user


def user_password_changed(
    *,
    user: User,
    by: Any = None,
    ip: str | None = None,
    previous_hash: str,
    session_key: str | None = None,
    via: str | None = None,
) -> None:
    """Audit a password just set (by Django's password forms: the admin's 修改密码 page, the
    user's own; or by `manage.py changepassword`, with `via`): `accounts.user_password_change`,
    in the transaction that set it. The entry says whether the user now has a password, never
    what it is or its hash. Nothing is written when the stored hash is still `previous_hash`.

    The user's other sessions, which the new password has made invalid, are ended at once in
    the same transaction (`_sessions_end`): `session_key` is the session making the
    change, kept (as Django's update_session_auth_hash keeps it signed in) when it is the
    user's own, that is when `by` is the user."""
    with transaction.atomic():
        stored = User.objects.filter(pk=user.pk).first()
        if stored is None or stored.password == previous_hash:
            return
        sessions = _user_sessions(stored, keep=_kept(session_key, stored, by))
        _audit_user(
            stored,
            "accounts.user_password_change",
            {"password": PASSWORD_SET if is_password_usable(previous_hash) else PASSWORD_NONE},
            {"password": PASSWORD_CHANGED if stored.has_usable_password() else PASSWORD_NONE},
            by=by,
            ip=ip,
            via=via,
        )
        _sessions_end(stored, sessions, reason=_password_reason(stored, by), by=by, ip=ip, via=via)


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
    via: str | None = None,
) -> None:
    """An entry about a user, naming them by username on both sides (the id alone says little to
    whoever reads the trail; a renamed user's `before` keeps the old name).

    `via`, when given, is kept in `after` (`"via": "manage.py changepassword"`): what made a
    change that no signed-in user made. Such an entry's actor is the system (none): an operator
    at the server's command line is not an account, and who was signed in to the server then is
    in the server's own logs, not here."""
    which = {"username": user.username}
    said = {"via": via} if via else {}
    audit_record(
        actor=by,
        action=action,
        obj_type="accounts.user",
        obj_id=user.pk,
        before={**which, **before} if before is not None else None,
        after={**which, **after, **said} if after is not None else None,
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


# --- sessions ended before their time -----------------------------------------------------------
#
# Django signs a session in only while its stored auth hash (HASH_SESSION_KEY, an HMAC of the
# password's hash) is the user's and the account is active: a new password, or a deactivated
# account, makes every other session of the user read as signed out, but leaves its row. Here
# those rows are deleted at the change, and the trail says that the devices were signed out.

# Why a user's sessions were ended (`reason` of accounts.sessions_revoked): the user changed
# their own password, an administrator set it, the account was deactivated; or, found by the
# worker among the expired sessions, one those had already made invalid (STALE: left from
# before sessions were ended at the change, or signed in with the old password while it changed).
# (Codes, not passwords: ruff's S105 goes by the names.)
SESSIONS_PASSWORD_CHANGED = "password_changed"  # noqa: S105
SESSIONS_PASSWORD_SET = "password_set"  # noqa: S105
SESSIONS_DEACTIVATED = "deactivated"
SESSIONS_STALE = "stale"
# Sessions read from the database at a time while a user's are looked for.
_SESSIONS_SCAN_CHUNK = 2000


@dataclass
class _UserSessions:
    """One user's stored sessions: the keys of the live ones, and the expired ones (key, when it
    expired, its data) that the worker has not deleted yet."""

    live: list[str] = field(default_factory=list)
    expired: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)


def _kept(session_key: str | None, user: User, by: Any) -> str | None:
    """The session making a change, when it is `user`'s own session (the user acting): it stays
    signed in. An administrator's session is not the user's, and keeps nothing."""
    return session_key if getattr(by, "pk", None) == user.pk else None


def _password_reason(user: User, by: Any) -> str:
    return (
        SESSIONS_PASSWORD_CHANGED if getattr(by, "pk", None) == user.pk else SESSIONS_PASSWORD_SET
    )


def _user_sessions(user: User, *, keep: str | None) -> _UserSessions:
    """`user`'s stored sessions but `keep`: the keys of the live ones, and the expired ones
    the worker has not deleted yet.

    Cost: django_session has no user column, so finding one user's sessions reads every stored
    session (key, data and expiry, in chunks of _SESSIONS_SCAN_CHUNK) and decodes it (an HMAC
    check and a JSON parse, about 15 µs). A district's few thousand sessions cost a few tens of
    milliseconds, once per password change or deactivation, which are rare; only the user's
    rows are then deleted. Callers scan before writing their first audit entry, which locks the
    audit chain's head until commit, so other audited changes do not wait for the scan (on
    SQLite the change's write lock is held meanwhile anyway). Were sessions to reach the
    hundreds of thousands, a session engine whose model has a user column (Django's
    AbstractBaseSession, "extending database-backed session engines") would make this one
    indexed query."""
    store = SessionStore()  # what Session.get_decoded decodes with, made once
    now = timezone.now()
    found = _UserSessions()
    rows = Session.objects.values_list("session_key", "session_data", "expire_date")
    if keep:
        rows = rows.exclude(session_key=keep)
    for key, encoded, expire_date in rows.iterator(chunk_size=_SESSIONS_SCAN_CHUNK):
        data = store.decode(encoded)  # {} when it does not verify
        if _session_user_id(data) != user.pk:
            continue
        if expire_date > now:
            found.live.append(key)
        else:
            found.expired.append((key, expire_date, data))
    return found


def _sessions_end(
    user: User,
    sessions: _UserSessions,
    *,
    reason: str,
    by: Any,
    ip: str | None,
    via: str | None = None,
) -> int:
    """End `user`'s `sessions` (from `_user_sessions`): delete the rows, and audit the live
    ones' end once, `accounts.sessions_revoked` (by `by`, with the `reason`, how many
    `sessions` ended and the change's `via`), when any ended; returns how many. An expired one
    the worker had not yet deleted is audited as the worker would, 超时退出
    (`accounts.session_expired`): it ended by its limit, before the change. Only rows this
    call's deletes removed count (a session signed out meanwhile, or taken by the worker, is
    not audited twice)."""
    with transaction.atomic():
        for key, expire_date, data in sessions.expired:
            if Session.objects.filter(pk=key).delete()[0]:
                _audit_session_expired(user, expire_date, data)
        ended = Session.objects.filter(pk__in=sessions.live).delete()[0] if sessions.live else 0
        if ended:
            said = {"via": via} if via else {}
            _audit_sessions_revoked(user, by=by, reason=reason, sessions=ended, ip=ip, **said)
    return ended


def _audit_sessions_revoked(
    user: User, *, by: Any, reason: str, sessions: int, ip: str | None, **facts: Any
) -> None:
    """`accounts.sessions_revoked` 强制下线: `sessions` of `user`'s sessions ended for `reason`."""
    audit_record(
        actor=by,
        action="accounts.sessions_revoked",
        obj_type="accounts.user",
        obj_id=user.pk,
        before=None,
        after={"username": user.username, "reason": reason, "sessions": sessions, **facts},
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

    A session that no longer signed its user in when it expired (its auth hash is not the
    password's, or the account is inactive) did not time out: a password change or a
    deactivation had ended it before those ended the user's sessions at once
    (`user_password_changed`, `user_save`), or it signed in with the old password while the
    password changed. It is audited as
    `accounts.sessions_revoked` with the reason `stale` (by that user, one session, its expiry
    and last use), not silently deleted: the trail then still has an end for every sign-in, and
    says truthfully that it was not a timeout. Its entry's time is the clean-up's, not the
    moment it stopped working, which the change's own entry dates.

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
                if _session_signs_in(data, user):
                    _audit_session_expired(user, row.expire_date, data)
                    continue
                _audit_sessions_revoked(
                    user,
                    by=user,
                    reason=SESSIONS_STALE,
                    sessions=1,
                    ip=None,
                    **_session_end_facts(row.expire_date, data),
                )
    return ended


def _audit_session_expired(user: User, expire_date: datetime, data: dict[str, Any]) -> None:
    audit_record(
        actor=user,
        action="accounts.session_expired",
        obj_type="accounts.user",
        obj_id=user.pk,
        before=None,
        after=_session_end_facts(expire_date, data),
        ip=None,
    )


def _session_end_facts(expire_date: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """When a session expired, and when its user last used it (accounts.sessions.ACTIVE_AT)."""
    active_at = data.get(ACTIVE_AT)
    return {
        "expired_at": expire_date,
        "last_active": (
            datetime.fromtimestamp(active_at, tz=UTC) if isinstance(active_at, int) else None
        ),
    }


def _session_signs_in(data: dict[str, Any], user: User) -> bool:
    """Whether a session's data still signs `user` in, as django.contrib.auth.get_user decides:
    the account is active (the sign-in backend refuses an inactive one) and the session's auth
    hash is the one of the user's password, under SECRET_KEY or one of SECRET_KEY_FALLBACKS."""
    stored = data.get(HASH_SESSION_KEY)
    if not user.is_active or not isinstance(stored, str) or not stored:
        return False
    return any(
        constant_time_compare(stored, expected)
        for expected in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    )


def _session_user_id(data: dict[str, Any]) -> int | None:
    """The id of the user a session's data was signed in as (Django keeps it as text)."""
    value = str(data.get(SESSION_KEY, ""))
    return int(value) if value.isdigit() else None
