"""Django's account commands, as this project overrides them (accounts/management/commands):
`manage.py changepassword` is audited and ends the user's sessions at once, `manage.py
createsuperuser` is audited as any new account is; each change and its entries are one
transaction, and the chain still verifies."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command, get_commands
from django.db import DatabaseError, connection
from django.test import Client
from django.utils.text import capfirst

from accounts.management.commands import changepassword, createsuperuser
from accounts.models import Role, User
from audit.models import AuditEntry
from tests.accounts.devices import OLD, signed_in, user_with_password
from tests.incidents.cases import STREET

pytestmark = pytest.mark.django_db

NEW = "Longhua-2026-typhoon"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the operator types: the answers to the commands' questions by the field asked for
    (input(), which asks by the field's name in the site's language), and the password
    (getpass, asked for twice: the key "password")."""
    answers: dict[str, str] = {}

    def answer(prompt: str = "") -> str:
        for name, value in answers.items():
            if name != "password" and prompt.startswith(
                str(capfirst(User._meta.get_field(name).verbose_name))
            ):
                return value
        raise AssertionError(f"unexpected question {prompt!r}")

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("getpass.getpass", lambda prompt="Password: ": answers["password"])
    return answers


class _Terminal(StringIO):
    """Standard input as a terminal (createsuperuser asks nothing otherwise)."""

    def isatty(self) -> bool:
        return True


def _signed_in_still(client: Client) -> bool:
    return client.get("/api/v1/incidents/").status_code == 200


def _stored(client: Client) -> bool:
    return Session.objects.filter(session_key=client.cookies["sessionid"].value).exists()


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("sequence"))


def _chain_verifies() -> None:
    out = StringIO()
    call_command("audit_verify", stdout=out)  # raises CommandError naming a broken entry
    assert out.getvalue().startswith("OK: ")


def _refuse_audit_entries() -> None:
    """From now on the database refuses every new audit entry (a trigger: the real database
    failing the write, as a full disk or a lost connection would). The test's transaction,
    rolled back at its end, takes the trigger away."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_audit_entries() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_audit_entries BEFORE INSERT ON audit_auditentry "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit_entries()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_audit_entries BEFORE INSERT ON audit_auditentry "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )


def test_manage_py_runs_the_audited_commands() -> None:
    # manage.py runs an app's command when the app is listed before django.contrib.auth.
    commands = get_commands()
    assert (commands["changepassword"], commands["createsuperuser"]) == ("accounts", "accounts")


# --- changepassword -------------------------------------------------------------------------


def test_changepassword_is_audited_and_signs_the_user_out_everywhere_at_once(typed) -> None:
    worker = user_with_password()
    phone, tablet = signed_in(worker), signed_in(worker, ip="10.0.0.2")
    someone_else = signed_in(user_with_password(Role.STREET_OPERATOR, STREET))
    typed["password"] = NEW

    call_command(changepassword.Command(), worker.username, stdout=StringIO())

    worker.refresh_from_db()
    assert worker.check_password(NEW)
    # A stolen session is refused on its very next request: its row is gone already.
    assert not _stored(phone) and not _stored(tablet)
    assert not _signed_in_still(phone) and not _signed_in_still(tablet)
    assert _signed_in_still(someone_else)
    (change,) = _entries("accounts.user_password_change")
    assert (change.actor, change.actor_username, change.object_id, change.ip) == (
        None,
        "",
        str(worker.pk),
        None,
    )
    assert change.before == {"username": worker.username, "password": "set"}
    assert change.after == {
        "username": worker.username,
        "password": "changed",
        "via": "manage.py changepassword",
    }
    (revoked,) = _entries("accounts.sessions_revoked")
    assert (revoked.actor, revoked.sequence) == (None, change.sequence + 1)
    assert revoked.after == {
        "username": worker.username,
        "reason": "password_set",
        "sessions": 2,
        "via": "manage.py changepassword",
    }
    stored = json.dumps([change.after, revoked.after])
    assert NEW not in stored and worker.password not in stored
    _chain_verifies()


def test_changepassword_of_a_user_signed_in_nowhere_is_one_entry(typed) -> None:
    worker = user_with_password()
    typed["password"] = NEW

    call_command(changepassword.Command(), worker.username, stdout=StringIO())

    assert [e.after["via"] for e in _entries("accounts.user_password_change")] == [
        "manage.py changepassword"
    ]
    assert _entries("accounts.sessions_revoked") == []
    _chain_verifies()


def test_changepassword_changes_nothing_when_its_entry_cannot_be_written(typed) -> None:
    worker = user_with_password()
    phone = signed_in(worker)
    typed["password"] = NEW
    _refuse_audit_entries()

    with pytest.raises(DatabaseError):
        call_command(changepassword.Command(), worker.username, stdout=StringIO())

    worker.refresh_from_db()
    assert worker.check_password(OLD)
    assert _stored(phone)


# --- createsuperuser ------------------------------------------------------------------------


def _audited_creation(username: str) -> AuditEntry:
    user = User.objects.get(username=username)
    (entry,) = _entries("accounts.user_create")
    assert (entry.actor, entry.object_type, entry.object_id, entry.ip) == (
        None,
        "accounts.user",
        str(user.pk),
        None,
    )
    assert entry.before is None
    assert entry.after["username"] == username
    assert entry.after["is_superuser"] is True and entry.after["is_staff"] is True
    assert entry.after["via"] == "manage.py createsuperuser"
    stored = json.dumps(entry.after)
    assert NEW not in stored and user.password not in stored
    _chain_verifies()
    return entry


def test_createsuperuser_noinput_is_audited_as_a_new_account(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW)

    call_command(
        createsuperuser.Command(),
        interactive=False,
        username="ops-root",
        email="ops@example.org",
        stdout=StringIO(),
    )

    entry = _audited_creation("ops-root")
    assert (entry.after["email"], entry.after["password"]) == ("ops@example.org", "set")
    assert Client().login(username="ops-root", password=NEW)


def test_createsuperuser_noinput_without_a_password_says_none_is_set(monkeypatch) -> None:
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    call_command(
        createsuperuser.Command(), "--noinput", "--username=ops-root", "--email=", stdout=StringIO()
    )

    assert _audited_creation("ops-root").after["password"] == "none"


def test_createsuperuser_asked_at_a_terminal_is_audited_as_a_new_account(typed) -> None:
    typed.update({"username": "ops-root", "email": "ops@example.org", "password": NEW})

    call_command(createsuperuser.Command(), stdin=_Terminal(), stdout=StringIO(), stderr=StringIO())

    assert _audited_creation("ops-root").after["password"] == "set"
    assert Client().login(username="ops-root", password=NEW)


def test_createsuperuser_leaves_no_account_when_its_entry_cannot_be_written(
    monkeypatch,
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW)
    _refuse_audit_entries()

    with pytest.raises(DatabaseError):
        call_command(
            createsuperuser.Command(),
            interactive=False,
            username="ops-root",
            email="",
            stdout=StringIO(),
        )

    assert not User.objects.filter(username="ops-root").exists()
