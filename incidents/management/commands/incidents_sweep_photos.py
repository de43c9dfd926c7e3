"""manage.py incidents_sweep_photos: delete photo files a dead process left behind
(incidents.services.photos.photos_sweep_orphans)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.services.photos import (
    PHOTO_SWEEP_MIN_AGE,
    human_bytes,
    photo_directories,
    photos_sweep_orphans,
)


class Command(BaseCommand):
    help = (
        "Delete case-photo files (originals and display copies) that no photo row refers to and "
        "that are older than --older-than-hours: what a process killed between writing a photo "
        "and committing it leaves behind. Run it daily; safe as several copies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=24.0,
            help="delete only orphan files last modified more than this many hours ago "
            "(default 24, at least 1: a photo being stored now has no committed row yet)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="delete nothing; print what would be deleted",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        hours: float = options["older_than_hours"]
        minimum = PHOTO_SWEEP_MIN_AGE / timedelta(hours=1)
        if not hours >= minimum:  # also refuses NaN
            raise CommandError(
                f"--older-than-hours must be at least {minimum:g}: a photo being stored right "
                "now has its files written but its row not yet committed"
            )
        dry_run: bool = options["dry_run"]
        try:
            older_than = timedelta(hours=hours)
            result = photos_sweep_orphans(older_than=older_than, dry_run=dry_run)
        except OverflowError:
            raise CommandError(f"--older-than-hours {hours:g} reaches before year 1") from None
        where = ", ".join(f"{directory}/" for directory in photo_directories())
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"incidents_sweep_photos{' (dry run)' if dry_run else ''}: {result.seen} file(s) "
            f"under {where}: {result.referenced} referenced by a photo, {result.too_new} newer "
            f"than {hours:g} h kept, {verb} {result.deleted} orphan(s) "
            f"({human_bytes(result.bytes_freed)}), {result.failed} failed, "
            f"{result.vanished} vanished"
        )
        if result.failed:
            raise CommandError(f"{result.failed} orphan file(s) could not be deleted (see the log)")
