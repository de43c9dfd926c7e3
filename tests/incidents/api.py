"""Helpers for the incidents API tests: signed-in clients and request bodies."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from accounts.models import User
from tests.incidents.cases import GRID, RUBBISH, point_in

LIST = "/api/v1/incidents/"


def client_for(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def detail_url(number: str) -> str:
    return f"{LIST}{number}/"


def action_url(number: str, action: str) -> str:
    return f"{LIST}{number}/{action}/"


def report_body(grid: str = GRID, **extra: Any) -> dict[str, Any]:
    lon, lat = point_in(grid)
    return {"category": RUBBISH, "description": "路边堆放垃圾", "lon": lon, "lat": lat, **extra}
