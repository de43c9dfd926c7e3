"""A signed-in session ends after a time without use (accounts.sessions): the desks' roles after
CITYOPS_SESSION_IDLE_MINUTES, a grid worker's phone after CITYOPS_PHONE_SESSION_IDLE_MINUTES.
Use moves the end on; what a page fetches by itself does not. (An open live-feed socket closing
when its session ends: tests/realtime/test_consumer.py.)"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from accounts.services import sessions_end_expired
from accounts.sessions import ACTIVE_AT, BACKGROUND_HEADER, REFRESH_SECONDS
from audit.models import AuditEntry
from tests.incidents.cases import COMMUNITY, GRID, STREET, make_user

pytestmark = pytest.mark.django_db

PASSWORD = "Longhua-2026-idle"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signed_in(role: str, place: str) -> tuple[Client, Session]:
    """A client signed in through the sign-in page, and its stored session."""
    user = make_user(role, place)
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client, Session.objects.get(session_key=client.cookies["sessionid"].value)


def _left(session: Session) -> timedelta:
    session.refresh_from_db()
    return session.expire_date - timezone.now()


def _age(session: Session, seconds: int) -> None:
    """Pretend the session was last moved on `seconds` ago (its stamp and its expiry)."""
    store = Client().session.__class__(session.session_key)
    store[ACTIVE_AT] = int(time.time()) - seconds
    store.save()
    expire_date = timezone.now() + timedelta(seconds=store.get_expiry_age() - seconds)
    Session.objects.filter(pk=session.pk).update(expire_date=expire_date)


def test_a_desk_session_ends_after_the_idle_limit_and_its_cookie_with_it() -> None:
    client, session = _signed_in(Role.STREET_OPERATOR, STREET)

    assert settings.CITYOPS_SESSION_IDLE_MINUTES == 30
    assert timedelta(minutes=29) < _left(session) <= timedelta(minutes=30)
    assert client.cookies["sessionid"]["max-age"] == 30 * 60


def test_a_grid_workers_phone_session_lasts_the_phones_limit() -> None:
    _, session = _signed_in(Role.GRID_WORKER, GRID)

    assert settings.CITYOPS_PHONE_SESSION_IDLE_MINUTES == 720
    assert timedelta(hours=11, minutes=59) < _left(session) <= timedelta(hours=12)


def test_an_ended_session_leads_a_page_to_the_sign_in_page_and_the_api_says_why() -> None:
    client, session = _signed_in(Role.COMMUNITY_STAFF, COMMUNITY)
    assert client.get(f"/command/community/{COMMUNITY}/").status_code == 200

    # The limit passes without use: the stored session expires (nothing has to delete it).
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    page = client.get(f"/command/community/{COMMUNITY}/")
    assert page.status_code == 302
    assert page["Location"] == f"/accounts/login/?next=/command/community/{COMMUNITY}/"
    api = client.get("/api/v1/incidents/")
    assert api.status_code == 403
    assert api.json() == {"detail": "未登录或登录已失效，请重新登录。"}
    english = client.get("/api/v1/incidents/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json() == {
        "detail": "Not signed in, or the session has ended: please sign in again."
    }


def test_a_caller_without_a_session_is_told_what_it_may_send() -> None:
    # An integration that forgot its key has no session to lose.
    response = Client().post("/api/v1/incidents/", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "未提供身份凭据：请登录，或在请求头 Authorization 中提供 Api-Key。"
    }


def test_use_moves_the_end_on_at_most_once_a_minute() -> None:
    client, session = _signed_in(Role.STREET_OPERATOR, STREET)
    _age(session, 20 * 60)
    assert _left(session) < timedelta(minutes=11)

    client.get("/command/")
    assert timedelta(minutes=29) < _left(session) <= timedelta(minutes=30)

    # Within a minute of the last move, a request does not write the session again.
    _age(session, REFRESH_SECONDS - 10)
    before = _left(session)
    client.get("/command/")
    assert _left(session) <= before


def test_what_a_page_fetches_by_itself_does_not_keep_the_session() -> None:
    client, session = _signed_in(Role.STREET_OPERATOR, STREET)
    _age(session, 20 * 60)

    response = client.get(f"/command/street/{STREET}/", headers={BACKGROUND_HEADER: "1"})
    assert response.status_code == 200  # still signed in: the limit has not passed
    assert _left(session) < timedelta(minutes=11)


def test_the_sign_in_page_says_the_limits(settings: Any) -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert "连续 30 分钟未操作将自动退出登录（网格员手机 12 小时）。" in page

    settings.CITYOPS_SESSION_IDLE_MINUTES = 0
    page = Client().get("/accounts/login/").content.decode()
    assert 'data-testid="idle-limit"' not in page


def test_with_no_idle_limit_a_session_lasts_djangos_cookie_age(settings: Any) -> None:
    settings.CITYOPS_SESSION_IDLE_MINUTES = 0
    _, session = _signed_in(Role.STREET_OPERATOR, STREET)

    assert _left(session) > timedelta(days=13)
    assert ACTIVE_AT not in session.get_decoded()


# --- the worker ends expired sessions, audited (accounts.services.sessions_end_expired) --------


def _expired_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="accounts.session_expired").order_by("sequence"))


def test_an_expired_session_is_deleted_and_audited_as_its_users_timeout() -> None:
    client, session = _signed_in(Role.STREET_OPERATOR, STREET)
    _still, kept = _signed_in(Role.COMMUNITY_STAFF, COMMUNITY)
    _age(session, 31 * 60)
    session.refresh_from_db()
    user_id = int(session.get_decoded()[SESSION_KEY])

    assert sessions_end_expired(now=timezone.now()) == 1
    assert not Session.objects.filter(pk=session.pk).exists()
    assert Session.objects.filter(pk=kept.pk).exists()
    [entry] = _expired_entries()
    assert (entry.actor_id, entry.object_id, entry.ip) == (user_id, str(user_id), None)
    assert entry.after["expired_at"].startswith(f"{session.expire_date:%Y-%m-%dT%H:%M:%S}")
    assert entry.after["last_active"].startswith(
        f"{(timezone.now() - timedelta(minutes=31)):%Y-%m-%dT%H:%M}"
    )
    # Once: a second pass finds nothing, and the client is signed out.
    assert sessions_end_expired(now=timezone.now()) == 0
    assert len(_expired_entries()) == 1
    assert client.get("/api/v1/incidents/").status_code == 403


def test_sessions_without_a_user_go_unaudited_and_a_batch_is_a_limit() -> None:
    anonymous = Client().session.__class__()
    anonymous["django_language"] = "en"
    anonymous.save()
    sessions = [_signed_in(Role.STREET_OPERATOR, STREET)[1] for _ in range(3)]
    past = timezone.now() - timedelta(seconds=1)
    Session.objects.update(expire_date=past)
    stored = Session.objects.count()
    assert stored > len(sessions)

    assert sessions_end_expired(now=timezone.now(), batch=2) == 2
    assert sessions_end_expired(now=timezone.now(), batch=10) == stored - 2
    assert not Session.objects.exists()
    assert len(_expired_entries()) == len(sessions)


def test_the_escalation_workers_pass_ends_expired_sessions() -> None:
    _client, session = _signed_in(Role.STREET_OPERATOR, STREET)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now())
    call_command("dispatch_escalate", "--once")
    assert not Session.objects.filter(pk=session.pk).exists()
    assert len(_expired_entries()) == 1
