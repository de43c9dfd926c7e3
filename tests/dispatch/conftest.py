"""The incidents fixtures (shipped catalogue and calendar, the cast of users, a fresh calendar
cache around every test) for the dispatch tests, which work on real cases."""

from tests.incidents.conftest import (  # noqa: F401  (pytest fixtures)
    _fresh_calendar_cache,
    cast,
    catalogue,
    holidays,
    reference_data,
)
