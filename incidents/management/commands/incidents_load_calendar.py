"""Load Chinese public holidays and 调休 make-up working days into the working calendar.

Re-runnable: creates and updates the days of the file, removes days that came from an earlier
file and are gone from this one, keeps days edited or added in the admin unless --reset.
Provisional years (arrangements derived before the official notice) are named in the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.services import HOLIDAYS_FILE, ReferenceDataError, calendar_load


class Command(BaseCommand):
    help = "Load holidays and make-up working days from a CSV file (re-runnable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file",
            type=Path,
            default=HOLIDAYS_FILE,
            help="CSV with date,kind,name,provisional,source,note (default: incidents/data)",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="restore the file's values for its dates, discarding admin edits of them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = calendar_load(path=options["file"], reset=options["reset"])
        except (ReferenceDataError, FileNotFoundError) as exc:
            raise CommandError(f"calendar not loaded: {exc}") from exc
        if options["verbosity"] > 0:
            style = self.style.WARNING if report.provisional_years else self.style.SUCCESS
            self.stdout.write(style(report.as_text()))
