"""Validate a generation and print its report (also shown on the generation's admin page)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridmap.models import Generation
from gridmap.services import generation_validate


class Command(BaseCommand):
    help = "Validate a boundary generation: geometry, codes, gaps, overlaps, spill-over, caps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("generation", type=int)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        generation = Generation.objects.filter(number=options["generation"]).first()
        if generation is None:
            raise CommandError(f"no generation {options['generation']}")
        report = generation_validate(generation=generation)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(report.as_text())
        if not report.ok:
            raise CommandError(f"generation {generation.number} failed validation")
