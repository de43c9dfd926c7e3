"""A generation activated in one process reaches the locator held by another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import django, json, sys
django.setup()
from gridmap.locator import locate
for line in sys.stdin:
    lon, lat = map(float, line.split())
    loc = locate(lon, lat)
    print(json.dumps({"generation": loc.generation, "grid": loc.path.grid.code}), flush=True)
"""


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = quote(s["USER"] or "") + (":" + quote(s["PASSWORD"]) if s["PASSWORD"] else "")
        return f"postgis://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    return f"spatialite:///{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_another_process_switches_to_the_newly_activated_generation(committed_demo_geography):
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("needs a file test database (SPATIALITE_TEST_NAME), as `make test` sets")
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GRIDMAP_LOCATOR_RECHECK_SECONDS": "0.2",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("SPATIALITE_TEST_NAME", None)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert worker.stdin is not None and worker.stdout is not None

    def ask() -> dict[str, object]:
        worker.stdin.write("114.0305 22.6696\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    try:
        first = ask()
        call_command("gridmap_demo", force=True, verbosity=0)  # new generation, activated
        deadline = time.monotonic() + 30
        answer = ask()
        while answer["generation"] == first["generation"] and time.monotonic() < deadline:
            time.sleep(0.1)
            answer = ask()
        assert answer["generation"] == first["generation"] + 1
        assert answer["grid"] == first["grid"]
    finally:
        worker.kill()
        worker.wait(timeout=10)
