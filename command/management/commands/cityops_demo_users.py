"""Create one demo user per role (idempotent) and print the logins.

The password is generated once into var/demo_password (mode 600) and reused; users that exist
already are left as they are.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level

DEMO_USERS = [
    # username, role, level of the place (or None), department code, display name
    ("district", Role.DISTRICT_OPERATOR, Level.DISTRICT, "", "区指挥中心值班员"),
    ("street", Role.STREET_OPERATOR, Level.STREET, "", "龙华街道分中心操作员"),
    ("community", Role.COMMUNITY_STAFF, Level.COMMUNITY, "", "三联社区工作站"),
    ("gridworker", Role.GRID_WORKER, Level.GRID, "", "网格员"),
    ("dept", Role.DEPARTMENT_HANDLER, None, "CGJ", "城管局处置人员"),
    ("auditor", Role.AUDITOR, None, "", "审计员"),
    ("admin", Role.ADMIN, None, "", "系统管理员"),
]


class Command(BaseCommand):
    help = "Create the demo users (one per role) and print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        password_file = Path(settings.BASE_DIR) / "var" / "demo_password"
        password_file.parent.mkdir(parents=True, exist_ok=True)
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(9) + "\n")
            password_file.chmod(0o600)
        password = password_file.read_text().strip()

        generation = gridmap_selectors.active_generation()
        if generation is None:
            raise CommandError("no active boundary generation; run gridmap_demo first")
        # The demo places: 龙华街道 (440309001), its first community and that one's first grid.
        places = {
            Level.DISTRICT: "440309",
            Level.STREET: "440309001",
            Level.COMMUNITY: "440309001001",
            Level.GRID: "440309001001001",
        }
        user_model = get_user_model()
        rows = []
        for username, role, level, department, display in DEMO_USERS:
            place = places[level] if level else ""
            region = (
                gridmap_selectors.region_by_code(generation=generation, code=place)
                if place
                else None
            )
            user = user_model.objects.filter(username=username).first()
            if user is None:
                user = user_model.objects.create_user(
                    username=username,
                    password=password,
                    first_name=display,
                    role=role,
                    place_code=place,
                    department_code=department,
                    is_staff=role == Role.ADMIN,
                    is_superuser=role == Role.ADMIN,
                )
            where = f"{place} {region.name}" if region else ""
            if department:
                where = f"部门 {department}"
            rows.append((username, str(role.label), where))
        self.stdout.write(f"\nDemo logins (password for all: {password})")
        for username, label, place in rows:
            self.stdout.write(f"  {username:<11} {place:<28} {label}")
