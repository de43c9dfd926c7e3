"""Create one demo user per role (idempotent) and print the logins.

The password is generated once into var/demo_password (mode 600) and reused; users that exist
already are left as they are. The integration account `sensor-gateway` (a sensor / video-AI
platform, no password) gets an API key for the channels sensor and video_ai, written once into
var/demo_api_key (mode 600) and reused while it still works; it is what bulk intake
(POST /api/v1/incidents/bulk/) takes in the `Authorization: Api-Key <key>` header.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role
from accounts.services import api_key_authenticate, api_key_issue, user_save
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

# The demo's sensor / video-AI platform: an integration account that signs in with an API key.
GATEWAY_USERNAME = "sensor-gateway"
GATEWAY_DISPLAY = "物联感知与视频智能识别平台（演示）"
GATEWAY_CHANNELS = ("sensor", "video_ai")


class Command(BaseCommand):
    help = (
        "Create the demo users (one per role) and the sensor-gateway integration with its API "
        "key; print the logins and the key."
    )

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
                user = user_model(
                    username=username,
                    first_name=display,
                    role=role,
                    place_code=place,
                    department_code=department,
                    is_staff=role == Role.ADMIN,
                    is_superuser=role == Role.ADMIN,
                )
                user.set_password(password)
                user_save(user=user)  # audited (accounts.user_create), by the system
            where = f"{place} {region.name}" if region else ""
            if department:
                where = f"部门 {department}"
            rows.append((username, str(role.label), where))
        self.stdout.write(f"\nDemo logins (password for all: {password})")
        for username, label, place in rows:
            self.stdout.write(f"  {username:<11} {place:<28} {label}")

        raw_key = self._gateway_key(Path(settings.BASE_DIR) / "var" / "demo_api_key")
        self.stdout.write(
            f"\nAPI key of {GATEWAY_USERNAME} ({', '.join(GATEWAY_CHANNELS)}; bulk intake at "
            f"/api/v1/incidents/bulk/, header 'Authorization: Api-Key <key>'): {raw_key}"
        )

    def _gateway_key(self, key_file: Path) -> str:
        """The integration account and its key: the one in `key_file` while it still works (an
        active key of this account), else a new one, written there (mode 600)."""
        user_model = get_user_model()
        gateway = user_model.objects.filter(username=GATEWAY_USERNAME).first()
        if gateway is None:
            gateway = user_model(
                username=GATEWAY_USERNAME, first_name=GATEWAY_DISPLAY, role=Role.INTEGRATION
            )
            gateway.set_unusable_password()  # it signs in with its API key only
            user_save(user=gateway)
        if key_file.exists():
            raw_key = key_file.read_text().strip()
            key = api_key_authenticate(raw_key)
            if key is not None and key.user_id == gateway.pk:
                return raw_key
        _, raw_key = api_key_issue(user=gateway, name="演示网关密钥", channels=GATEWAY_CHANNELS)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        # Created readable by its owner only, before the key is in it.
        with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(raw_key + "\n")
        key_file.chmod(0o600)  # an older file keeps its mode through O_TRUNC
        return raw_key
