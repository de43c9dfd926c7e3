"""Issue a wall-screen token (大屏令牌) for a district; prints the wall's address once.

    manage.py command_issue_screen_token --name "指挥大厅主屏" [--district 440309]
        [--base-url https://cityops.example.cn]

The token is shown only here (the database keeps its SHA-256). Open the printed address on the
wall's browser once: the token moves into that browser's session and out of the address bar.
Revoke it in the admin (大屏令牌 → 停用所选令牌) when a screen is retired or the address leaked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from command.services import ScreenTokenError, screen_token_issue
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level


class Command(BaseCommand):
    help = "Issue a read-only wall-screen token for a district; prints the wall's URL once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="which screen, e.g. 指挥大厅主屏")
        parser.add_argument(
            "--district",
            default="",
            help="6-digit district code (default: the active generation's only district)",
        )
        parser.add_argument(
            "--base-url",
            default="",
            help="printed before the path, e.g. https://cityops.example.cn",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        district = options["district"].strip()
        if not district:
            generation = gridmap_selectors.active_generation()
            districts = (
                [
                    region.code
                    for region in gridmap_selectors.regions_for_listing(
                        generation=generation, level=Level.DISTRICT, parent_code=None
                    )
                ]
                if generation is not None
                else []
            )
            if len(districts) != 1:
                raise CommandError("name the district with --district (6-digit code)")
            district = districts[0]
        try:
            token, raw_token = screen_token_issue(name=options["name"], district_code=district)
        except ScreenTokenError as exc:
            raise CommandError(str(exc)) from None
        path = f"{reverse('command-wall')}?{urlencode({'token': raw_token})}"
        self.stdout.write(f"{options['base_url'].rstrip('/')}{path}")
        self.stderr.write(
            f"screen token {token.prefix}… for district {token.district_code} issued; the address "
            "above is shown only once"
        )
