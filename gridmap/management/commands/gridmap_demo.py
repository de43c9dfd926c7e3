"""Load the demo geography of Longhua (real outline, synthetic partition) and activate it.

Idempotent: if a demo generation exists already, nothing is changed.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from gridmap.demo import DEMO_SOURCE, build_demo_partition
from gridmap.models import Generation, Level
from gridmap.services import (
    GenerationInvalid,
    generation_activate,
    generation_create_draft,
    regions_add,
)


class Command(BaseCommand):
    help = "Build and activate the synthetic demo partition of Longhua (skipped if present)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="build a new demo generation even if one exists"
        )
        parser.add_argument("--no-activate", action="store_true", help="leave it as a draft")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["verbosity"] == 0

        def say(message: str) -> None:
            if not quiet:
                self.stdout.write(message)

        existing = Generation.objects.filter(synthetic=True).order_by("-number").first()
        if existing is not None and not options["force"]:
            say(
                f"Demo geography present: generation {existing.number} "
                f"({existing.get_status_display()}); nothing to do."
            )
            return
        started = time.monotonic()
        partition = build_demo_partition()
        say(
            f"Built demo partition in {time.monotonic() - started:.1f}s: "
            f"{len(partition.streets)} streets, {len(partition.communities)} communities, "
            f"{len(partition.grids)} grid cells"
        )
        with transaction.atomic():
            generation = generation_create_draft(
                label="龙华区演示划分 Longhua demo partition", source=DEMO_SOURCE, synthetic=True
            )
            for level, regions in (
                (Level.DISTRICT, partition.district),
                (Level.STREET, partition.streets),
                (Level.COMMUNITY, partition.communities),
                (Level.GRID, partition.grids),
            ):
                regions_add(generation=generation, level=level, regions=regions)
        if options["no_activate"]:
            say(f"Draft generation {generation.number} stored.")
            return
        try:
            generation_activate(generation=generation)
        except GenerationInvalid as exc:
            self.stderr.write(exc.report.as_text())
            raise CommandError(str(exc)) from None
        say(
            self.style.SUCCESS(
                f"Generation {generation.number} (synthetic demo) is active "
                f"({time.monotonic() - started:.1f}s)."
            )
        )
