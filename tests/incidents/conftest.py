"""Fixtures for the incidents app: the shipped catalogue and calendar, loaded through the services
the management commands call, and a clean per-process calendar cache around every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from incidents import calendar
from incidents.services import (
    CalendarLoadReport,
    CategoryLoadReport,
    calendar_load,
    categories_load,
)


@pytest.fixture(autouse=True)
def _fresh_calendar_cache() -> Iterator[None]:
    # Test transactions roll back without commit hooks: drop the cached calendar around each test.
    calendar.invalidate()
    yield
    calendar.invalidate()


@pytest.fixture
def catalogue(db: Any) -> CategoryLoadReport:
    return categories_load()


@pytest.fixture
def holidays(db: Any) -> CalendarLoadReport:
    return calendar_load()


@pytest.fixture
def reference_data(catalogue: CategoryLoadReport, holidays: CalendarLoadReport) -> None:
    """Categories with their stage limits and the working calendar: what every case needs."""


@pytest.fixture
def cast(db: Any) -> Any:
    """A user in every role around grid 440309001001001, and some outside it (tests/incidents/
    cases.py)."""
    from tests.incidents.cases import make_cast

    return make_cast()
