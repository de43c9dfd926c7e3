"""Django's `createsuperuser`, audited: the new account and its `accounts.user_create` entry
(the one `accounts.services.user_save` writes for every new account) are one transaction.

Everything else is Django's: the questions (interactive) or the options and
DJANGO_SUPERUSER_* variables (`--noinput`), the checks of the username and password. Django's
command creates the account, once every answer is in, with
`self.UserModel._default_manager.db_manager(database).create_superuser(...)`; here that manager
creates it through `user_save`. The entry is by the system (no account acts at the server's
command line) and says `via` this command.

The transaction starts only then, not around the questions: on SQLite (BEGIN IMMEDIATE) it holds
the database's write lock, and no one's typing should hold that. The command is given a stand-in
for the model (`_UserModel`) rather than User a manager of its own: User.objects stays Django's
for every other caller, and a new default manager would be a migration.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.models import UserManager

from accounts.models import User
from accounts.services import user_save

VIA = "manage.py createsuperuser"


class _AuditedUserManager(UserManager[User]):
    """Django's UserManager, whose account creation (create_superuser's `_create_user`) saves
    through `user_save`, audited."""

    def _create_user(
        self, username: str, email: str | None, password: str | None, **extra_fields: Any
    ) -> User:
        # Django's own making of the row, unsaved (django-stubs do not declare it).
        make = self._create_user_object  # type: ignore[attr-defined]
        return user_save(user=make(username, email, password, **extra_fields), via=VIA)


class _UserModel:
    """The user model as this command's Django code reads it (`self.UserModel`): User for every
    attribute and for the instances it makes to check a password, but for its default manager,
    which creates the account audited."""

    def __init__(self) -> None:
        manager = _AuditedUserManager()
        manager.model = User
        self._default_manager = manager

    def __getattr__(self, name: str) -> Any:
        return getattr(User, name)

    def __call__(self, **fields: Any) -> User:
        return User(**fields)


class Command(createsuperuser.Command):
    help = "Create a superuser, audited (accounts.user_create)."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.UserModel = _UserModel()  # type: ignore[assignment]  # reads as the model does
