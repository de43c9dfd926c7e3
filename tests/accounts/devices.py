"""Users with a known password and the devices they sign in on, through the sign-in page: for
the tests of what ends a user's sessions (tests/accounts/test_sessions_revoked.py,
test_account_commands.py)."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import Role, User
from tests.incidents.cases import GRID, make_user

OLD = "Longhua-2026-old"


def user_with_password(role: str = Role.GRID_WORKER, place: str = GRID, **extra: Any) -> User:
    user = make_user(role, place, **extra)
    user.set_password(OLD)
    user.save()
    return user


def signed_in(user: User, ip: str = "10.0.0.1") -> Client:
    """A device signed in as `user` through the sign-in page."""
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/accounts/login/", {"username": user.username, "password": OLD})
    assert response.status_code == 302
    return client
