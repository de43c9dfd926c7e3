"""A Daphne of its own for the live-feed tests, with a one-second heartbeat (module-scoped)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.asgi_server import DaphneServer, daphne_server, redis_for_tests

# Settings of the test servers: heartbeats every second, so that tests wait seconds, not 15 s.
FAST = {
    "REALTIME_HEARTBEAT_SECONDS": "1",
    "REALTIME_DOWN_POLL_SECONDS": "1",
    "REALTIME_COALESCE_SECONDS": "0.25",
    # Small, so that a gap beyond it takes 55 events to make, not 1,005.
    "REALTIME_REPLAY_LIMIT": "50",
    # A socket re-reads its session every second, not every minute.
    "REALTIME_REAUTH_SECONDS": "1",
}


@pytest.fixture(scope="module")
def feed_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[DaphneServer]:
    with (
        django_db_blocker.unblock(),
        redis_for_tests() as redis_url,
        daphne_server(redis_url=redis_url, env=FAST) as server,
    ):
        yield server
