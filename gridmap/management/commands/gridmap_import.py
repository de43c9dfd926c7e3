"""Import one level of boundaries from a GeoJSON/Shapefile/GeoPackage file into a draft generation.

    python manage.py gridmap_import streets.gpkg --level street --generation 2 \
        --name-field NAME --code-field CODE --crs EPSG:4547

Nothing is stored unless every feature is read and stored; run gridmap_validate and then
gridmap_activate to put the generation live.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridmap.importer import ImportFailed, read_regions
from gridmap.models import LEVEL_ORDER, Generation
from gridmap.services import GeographyError, generation_create_draft, regions_add


class Command(BaseCommand):
    help = "Import boundaries of one level into a draft generation (created if missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--level", required=True, choices=LEVEL_ORDER)
        parser.add_argument(
            "--generation",
            type=int,
            required=True,
            help="draft generation number (created as a draft if it is new)",
        )
        parser.add_argument("--name-field", default="name")
        parser.add_argument("--code-field", default="code")
        parser.add_argument(
            "--parent-field",
            default=None,
            help="field holding the parent's code (default: the code's prefix)",
        )
        parser.add_argument(
            "--crs", default=None, help="wgs84 | gcj02 | bd09 | EPSG:nnnn (default: the file's own)"
        )
        parser.add_argument("--layer", default="0", help="layer index or name")
        parser.add_argument("--label", default="", help="label for a new generation")
        parser.add_argument("--source", default="", help="where these boundaries come from")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="replace this level (and the levels below) in the draft",
        )

    def _progress(self, stage: str) -> Any:
        def report(done: int, total: int) -> None:
            sys.stderr.write(f"\r{stage}: {done}/{total} ({done * 100 // max(total, 1)}%)")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        return report

    def handle(self, *args: Any, **options: Any) -> None:
        layer: int | str = int(options["layer"]) if options["layer"].isdigit() else options["layer"]
        try:
            regions, note = read_regions(
                options["file"],
                name_field=options["name_field"],
                code_field=options["code_field"],
                parent_field=options["parent_field"],
                crs=options["crs"],
                layer=layer,
                progress=self._progress("reading"),
            )
            generation = Generation.objects.filter(number=options["generation"]).first()
            created = generation is None
            if generation is None:
                generation = generation_create_draft(
                    number=options["generation"], label=options["label"], source=options["source"]
                )
            try:
                count = regions_add(
                    generation=generation,
                    level=options["level"],
                    regions=regions,
                    replace=options["replace"],
                    progress=self._progress("storing"),
                )
            except Exception:
                if created:
                    generation.delete()  # nothing half-stored: not even the empty draft
                raise
        except (ImportFailed, GeographyError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {count} {options['level']} region(s) into draft generation "
                f"{generation.number} ({note}). Next: gridmap_validate {generation.number}"
            )
        )
