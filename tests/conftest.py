"""Shared fixtures. The demo geography is loaded once per session into the test database.

Tests marked transactional (live servers, other processes) see a flushed database after each
test; they call `committed_demo_geography` to load it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

# Reference data copied into the project (provenance: ../shared/data/SOURCES.md): a fresh clone
# may not sit next to ../shared.
TEST_DATA = Path(__file__).resolve().parent / "data"
PROJECT_DATA = Path(__file__).resolve().parents[1] / "gridmap" / "data"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A SpatiaLite test file (SPATIALITE_TEST_NAME) is recreated by Django, which deletes the
    file but not a write-ahead log an interrupted run left beside it; SQLite would then find
    the old log with the new file ("disk I/O error"). Remove the log and its index first."""
    import os

    name = os.environ.get("SPATIALITE_TEST_NAME", "")
    if name:
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        call_command("gridmap_demo", verbosity=0)


@pytest.fixture
def committed_demo_geography(transactional_db: None) -> Iterator[None]:
    from gridmap.locator import locator

    call_command("gridmap_demo", verbosity=0)
    locator.invalidate()
    yield
    locator.invalidate()


@pytest.fixture
def is_postgis() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _fresh_locator() -> Iterator[None]:
    """Each test starts with a locator that re-reads the active generation."""
    from gridmap.locator import locator

    locator.invalidate()
    yield
    locator.invalidate()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the site's default language: a request in English through the test
    client leaves English active in the thread (LocaleMiddleware activates, nothing resets), and
    a later test reading names in "the reader's language" outside a request would read English."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _channel_layer_not_resting() -> Iterator[None]:
    """Each test starts with the after-commit hooks trying the channel layer: a test that made
    it fail (Redis unreachable) leaves the process's LayerGate resting otherwise."""
    from realtime.outbox import layer_gate

    layer_gate.reset()
    yield
    layer_gate.reset()


@pytest.fixture(autouse=True)
def _static_storage_without_collectstatic(settings) -> None:  # type: ignore[no-untyped-def]
    """`make test` runs collectstatic first and tests the real manifest storage; a bare pytest
    run without collected files falls back to plain storage instead of failing on the manifest."""
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.exists():
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
