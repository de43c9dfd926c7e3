"""Running service calls from several threads at once, each thread with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection


def require_concurrent_writers() -> None:
    """Skip unless the database lets concurrent writers wait for each other.

    PostgreSQL does. SQLite lets one writer in at a time; with Django's default deferred
    transactions a transaction that has read and then wants to write fails at once with
    "database is locked" instead of waiting, and the default in-memory test database is
    shared-cache, where writers fail with "database table is locked". A file database with
    OPTIONS transaction_mode=IMMEDIATE (every atomic block takes the write lock when it begins)
    waits, and runs these tests.
    """
    if connection.vendor == "postgresql":
        return
    options = connection.settings_dict.get("OPTIONS", {})
    if options.get("transaction_mode") == "IMMEDIATE" and not connection.is_in_memory_db():
        return
    pytest.skip(
        "needs concurrent writers that wait: PostgreSQL, or a SQLite file database with "
        "transaction_mode=IMMEDIATE (deferred SQLite transactions fail with 'database is "
        "locked' instead of waiting)"
    )


def run_in_threads(work: Callable[[int], None], threads: int, timeout: float = 120) -> None:
    """Call work(0) … work(threads - 1) at the same moment from as many threads; re-raise the
    first failure in the calling thread."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            start.wait()
            work(worker)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(worker,)) for worker in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in pool), "a worker thread is still running"
    if errors:
        raise errors[0]
