"""Running service calls from several threads at once, each thread with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection

T = TypeVar("T")


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


def in_thread(work: Callable[[], T], timeout: float = 120) -> T:
    """work() in a thread of its own, with its own database connection; its result, or its
    exception re-raised here. For service calls from a browser test: Playwright's event loop
    runs in the test's thread, and the outbox's after-commit send (async_to_sync) refuses to
    run beside it."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the calling thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if not result:
        raise TimeoutError(f"the work did not finish within {timeout:g} s")
    return result[0]
