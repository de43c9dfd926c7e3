"""Activate a draft generation (refused, with the validation report, if it has errors)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridmap.models import Generation
from gridmap.services import GenerationInvalid, GeographyError, generation_activate


class Command(BaseCommand):
    help = "Activate a validated draft generation; the previous active one is retired."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("generation", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        generation = Generation.objects.filter(number=options["generation"]).first()
        if generation is None:
            raise CommandError(f"no generation {options['generation']}")
        try:
            generation_activate(generation=generation)
        except GenerationInvalid as exc:
            self.stderr.write(exc.report.as_text())
            raise CommandError(str(exc)) from None
        except GeographyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Generation {generation.number} is now active."))
