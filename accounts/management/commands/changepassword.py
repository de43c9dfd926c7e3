"""Django's `changepassword`, audited: the new password, its audit entry and the end of the
user's sessions are one transaction.

Django's own command saves the new hash with nothing in the trail, and leaves the user's
sessions signed in elsewhere to be found signed out later (a stolen one was usable until its
next request). Here the password is set through `accounts.services.user_password_changed`, as
the admin's 修改密码 page does: `accounts.user_password_change`, and every session of the user
ended at once, `accounts.sessions_revoked` (reason `password_set`). Both entries are by the
system (no account acts at the server's command line) and say `via` this command.

The questions are Django's (the password twice, checked by AUTH_PASSWORD_VALIDATORS, three
tries); they are asked before the transaction starts, which on SQLite (BEGIN IMMEDIATE) holds
the database's write lock, and no one's typing should hold that.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import user_password_changed

VIA = "manage.py changepassword"
MAX_TRIES = 3  # Django's


class Command(changepassword.Command):
    help = (
        "Change a user's password, audited (accounts.user_password_change); every session of "
        "the user ends at once (accounts.sessions_revoked)."
    )

    def handle(self, *args: Any, **options: Any) -> str:
        database = options["database"]
        username = options["username"] or getpass.getuser()
        user = User.objects.db_manager(database).filter(username=username).first()
        if user is None:
            raise CommandError(f"user '{username}' does not exist")
        self.stdout.write(f"Changing password for user '{user}'")
        password = self._new_password(user)
        with transaction.atomic(using=database):
            user = User.objects.db_manager(database).select_for_update().get(pk=user.pk)
            previous_hash = user.password
            user.set_password(password)
            user.save(update_fields=["password"])
            user_password_changed(user=user, previous_hash=previous_hash, via=VIA)
        return f"Password changed successfully for user '{user}'"

    def _new_password(self, user: User) -> str:
        """The new password, typed twice and accepted by the validators, in three tries (Django's
        questions and answers)."""
        for _try in range(MAX_TRIES):
            password = self._ask("Password: ")
            if password != self._ask("Password (again): "):
                self.stdout.write("Passwords do not match. Please try again.")
                continue
            try:
                validate_password(password, user)
            except ValidationError as err:
                self.stderr.write("\n".join(err.messages))
                continue
            return password
        raise CommandError(f"Aborting password change for user '{user}' after {MAX_TRIES} attempts")

    def _ask(self, prompt: str) -> str:
        """Django's question for a password (an empty answer aborts); django-stubs do not
        declare it."""
        return str(self._get_pass(prompt))  # type: ignore[attr-defined]
