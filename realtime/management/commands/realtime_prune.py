"""manage.py realtime_prune: delete old sent outbox events (realtime/retention.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from realtime.retention import outbox_prune


class Command(BaseCommand):
    help = (
        "Delete outbox events that were sent and are older than the retention "
        "(REALTIME_OUTBOX_RETENTION_DAYS); a screen that later asks to replay one of them is "
        "told to reload its snapshot. Run it daily; safe as several copies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=float,
            default=None,
            help="keep this many days of events (REALTIME_OUTBOX_RETENTION_DAYS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is None:
            days = float(settings.REALTIME_OUTBOX_RETENTION_DAYS)
        if days < 1:
            raise CommandError("--days must be at least 1: screens replay recent events")
        before = timezone.now() - timedelta(days=days)
        result = outbox_prune(before=before)
        self.stdout.write(
            f"realtime_prune: deleted {result.events} event(s) written before "
            f"{before:%Y-%m-%d %H:%M} in {result.scopes} scope(s)"
        )
