"""GeoDjango's SpatiaLite backend, with its library lookup done once per process and a
first-come queue for the write lock among the threads of a process.

`django.contrib.gis.db.backends.spatialite.base.DatabaseWrapper.__init__` calls
`ctypes.util.find_library("spatialite")` every time a wrapper is made, and on Linux that runs
`ldconfig -p` in a subprocess. Under Daphne each request runs in a thread of its own and gets a
new wrapper, so every request paid for a fork and exec (about 1 ms of the server's CPU, more of
the machine's). The answer cannot change while the process runs: it is looked up once here.

SQLite has one writer at a time. A transaction that finds the write lock taken is left to
SQLite's busy handler, which sleeps and retries (1, 2, 5 … 100 ms): under a burst of reports the
waiting threads poll, miss the moments the lock is free, and some wait past the timeout
("database is locked") while later ones get through. So before `BEGIN IMMEDIATE` a thread
takes this process's write gate (a lock held until COMMIT or ROLLBACK): the threads of one
Daphne process queue for it and each wakes as soon as the previous writer ends. Other
processes (the relay, the escalation worker) still meet at SQLite's own lock. The gate is
waited for as long as SQLite's busy timeout; then the transaction fails as SQLite would have.
In-memory databases (tests) have no gate.
"""

from __future__ import annotations

import threading
from ctypes.util import find_library
from functools import cache
from typing import Any

from django.contrib.gis.db.backends.spatialite import base as gis_spatialite
from django.db import OperationalError

# The module-level name the GeoDjango wrapper's __init__ looks up when it runs.
gis_spatialite.find_library = cache(find_library)  # type: ignore[attr-defined]


# One per process: every connection of this process to the database file queues here.
_WRITE_GATE = threading.Lock()


class DatabaseWrapper(gis_spatialite.DatabaseWrapper):
    """The GeoDjango SpatiaLite wrapper with the write gate (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holds_gate = False

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode not in ("IMMEDIATE", "EXCLUSIVE") or self.is_in_memory_db():  # type: ignore[attr-defined]
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        if not _WRITE_GATE.acquire(timeout=timeout):
            raise OperationalError(f"database is locked (no write turn within {timeout:g} s)")
        self._holds_gate = True
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._open_gate()
            raise

    def _open_gate(self) -> None:
        if self._holds_gate:
            self._holds_gate = False
            _WRITE_GATE.release()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._open_gate()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._open_gate()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._open_gate()
