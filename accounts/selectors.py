"""Reads of accounts for the layers above (the audit page names a user by username)."""

from __future__ import annotations

from accounts.models import User


def user_id_for_username(username: str) -> int | None:
    """The id of the account called `username` (any case), or None."""
    return User.objects.filter(username__iexact=username).values_list("pk", flat=True).first()
