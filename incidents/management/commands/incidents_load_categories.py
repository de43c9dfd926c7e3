"""Load the category catalogue: GB/T 47678.5-2026 events and components, local emergencies.

Re-runnable: creates what is missing, updates what the shipped data changed, keeps whatever was
edited in the admin (department, severity, active flag, stage limits) unless --reset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.catalogue import DATA_DIR, CatalogueError
from incidents.services import categories_load


class Command(BaseCommand):
    help = "Load the event/component/emergency categories and their stage limits (re-runnable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="restore the shipped department, severity and limits, discarding admin edits",
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=DATA_DIR,
            help="directory with the catalogue CSV files (default: incidents/data)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = categories_load(data_dir=options["data_dir"], reset=options["reset"])
        except (CatalogueError, FileNotFoundError, KeyError) as exc:
            raise CommandError(f"catalogue not loaded: {exc}") from exc
        if options["verbosity"] > 0:
            self.stdout.write(self.style.SUCCESS(report.as_text()))
