"""Issue an API key to an integration account (created if missing); prints the key once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Role, User
from accounts.services import ApiKeyError, api_key_issue


class Command(BaseCommand):
    help = "Issue an API key to an integration account (the key is printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the integration account (created if missing)")
        parser.add_argument("--name", required=True, help="what the key is for")
        parser.add_argument(
            "--channels", required=True, help="comma-separated intake channels, e.g. sensor"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = User.objects.get_or_create(
            username=options["username"], defaults={"role": Role.INTEGRATION}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        try:
            _, raw_key = api_key_issue(
                user=user, name=options["name"], channels=options["channels"].split(",")
            )
        except ApiKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(raw_key)
