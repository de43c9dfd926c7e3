"""Verify the audit chain: recompute every hash and name the first broken entry."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import chain_verify


class Command(BaseCommand):
    help = (
        "Walk the audit chain from the first entry, recompute every hash and check every link; "
        "print OK with the count, or name the first broken entry and exit non-zero."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = chain_verify()
        if report.broken is None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {report.verified} audit entries, chain intact "
                    f"(last entry {report.last_sequence}, hash {report.last_hash})."
                )
            )
            return
        where = (
            f"entry {report.broken.sequence}"
            if report.broken.sequence is not None
            else "the chain head"
        )
        raise CommandError(
            f"BROKEN at {where}: {report.broken.reason}. "
            f"{report.verified} entries before it verify."
        )
