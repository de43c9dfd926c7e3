"""Settings come from the environment; production values pass `check --deploy` cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x7Hq2-production-like-secret-" + "k" * 40,
    "DJANGO_ALLOWED_HOSTS": "cityops.longhua.example.cn",
    "DATABASE_URL": "spatialite:////tmp/cityops-deploy-check.sqlite3",
}


def _check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CITYOPS_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_production_values():
    result = _check(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_debug_and_a_weak_secret():
    result = _check(PRODUCTION | {"DJANGO_DEBUG": "1", "DJANGO_SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on
    assert "security.W009" in result.stderr + result.stdout  # weak SECRET_KEY


def test_production_refuses_to_start_without_a_secret_or_hosts():
    for missing in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"):
        env = {k: v for k, v in PRODUCTION.items() if k != missing}
        result = _check(env)
        assert result.returncode != 0
        assert missing in result.stderr


def test_persistent_connections_and_the_postgresql_pool_are_refused_together():
    # Settings only: nothing connects, so no server is needed.
    postgis = PRODUCTION | {"DATABASE_URL": "postgis://cityops@127.0.0.1:1/cityops"}

    both = _check(postgis | {"DB_CONN_MAX_AGE": "60"})
    without_pool = _check(postgis | {"DB_CONN_MAX_AGE": "60", "DB_POOL_MAX_SIZE": "0"})

    assert both.returncode != 0
    assert "DB_CONN_MAX_AGE and the connection pool exclude each other" in both.stderr
    assert "exclude each other" not in without_pool.stderr


def test_every_setting_read_from_the_environment_is_documented_in_env_example():
    import re

    names = set()
    for path in (ROOT / "config").glob("*.py"):
        names |= set(
            re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z0-9_]+)"', path.read_text())
        )
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert names, "no settings found"
    assert names <= documented, f"undocumented: {sorted(names - documented)}"
