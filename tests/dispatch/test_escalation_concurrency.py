"""Several escalation workers at once, on real commits: every due case is warned or escalated
exactly once, whichever copy gets it; and a worker stops cleanly on SIGTERM.

Two threads (each with its own connection) run passes at the same moment; two `manage.py
dispatch_escalate --once` processes run against the same test database. PostgreSQL claims rows
with SKIP LOCKED; SQLite (a file database in BEGIN IMMEDIATE mode, as `make test` runs it) lets
one writer in at a time. An in-memory SQLite test database cannot be shared, and these tests skip
there (tests/threads.py) — run with SPATIALITE_TEST_NAME=/tmp/<name>.sqlite3.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, transaction

from audit.selectors import chain_verify
from incidents.models import Incident, IncidentTransition, OwnerLevel, Supervision
from incidents.services.escalation import EscalationPass, escalation_run_once
from realtime.models import OutboxEvent
from tests.dispatch.clocks import ESCALATED, WARNED, restart_clock
from tests.incidents.cases import report
from tests.incidents.clock import at
from tests.threads import require_concurrent_writers, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
# Django with GDAL/SpatiaLite takes a few seconds to start on a busy machine.
PROCESS_TIMEOUT_SECONDS = 180.0


@pytest.fixture(autouse=True)
def _committed(request: pytest.FixtureRequest) -> None:
    require_concurrent_writers()  # before loading anything
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")


def breached_cases(count: int) -> list[Incident]:
    """Reported cases whose register clock (1 working hour) ran out on 2026-02-13 at 10:00."""
    return [restart_clock(report(), at(2026, 2, 13, 9, 0)) for _ in range(count)]


def assert_each_once(cases: list[Incident], action: str, event_type: str) -> None:
    for case in cases:
        assert IncidentTransition.objects.filter(incident=case, action=action).count() == 1
        announced = OutboxEvent.objects.filter(
            type=event_type, payload__incident__number=case.number
        )
        assert announced.count() == 1, case.number


def test_two_workers_in_threads_handle_each_case_exactly_once():
    breached = breached_cases(8)
    # Register clocks from 10:00: warned at 10:48, due at 11:00.
    nearly = [restart_clock(report(), at(2026, 2, 13, 10, 0)) for _ in range(8)]
    now = at(2026, 2, 13, 10, 50)
    results: list[EscalationPass] = []
    lock = threading.Lock()

    def work(_worker: int) -> None:
        for _ in range(3):  # and again: a re-run finds nothing
            done = escalation_run_once(now=now, batch=100)
            with lock:
                results.append(done)

    run_in_threads(work, 2)

    assert sum(done.escalated for done in results) == len(breached)
    assert sum(done.warned for done in results) == len(nearly)
    assert sum(done.failed for done in results) == 0
    assert Supervision.objects.count() == len(breached)
    for case in breached:
        stored = Incident.objects.get(pk=case.pk)
        assert stored.escalations == 1 and stored.owner_level == OwnerLevel.STREET
    for case in nearly:
        stored = Incident.objects.get(pk=case.pk)
        assert stored.stage_warned and not stored.stage_breached and stored.escalations == 0
    assert_each_once(breached, "escalate", ESCALATED)
    assert_each_once(nearly, "warn", WARNED)
    assert chain_verify().ok


@pytest.mark.postgis_only
def test_a_case_another_worker_holds_is_skipped_not_waited_for():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and SKIP LOCKED are PostgreSQL's; SQLite writers queue instead")
    held, *free = breached_cases(3)
    now = at(2026, 2, 13, 12, 0)
    holding, release = threading.Event(), threading.Event()
    results: list[EscalationPass] = []

    def work(worker: int) -> None:
        if worker == 0:  # another copy, in the middle of handling `held`
            with transaction.atomic():
                Incident.objects.select_for_update().get(pk=held.pk)
                holding.set()
                release.wait(PROCESS_TIMEOUT_SECONDS)
            return
        assert holding.wait(PROCESS_TIMEOUT_SECONDS)
        try:
            results.append(escalation_run_once(now=now, batch=100))
        finally:
            release.set()

    run_in_threads(work, 2)

    (done,) = results
    assert (done.escalated, done.skipped, done.failed) == (2, 1, 0)
    assert Incident.objects.get(pk=held.pk).escalations == 0
    assert [Incident.objects.get(pk=case.pk).escalations for case in free] == [1, 1]
    # Released, it is due still: the next pass takes it.
    assert escalation_run_once(now=now, batch=100).escalated == 1
    assert Supervision.objects.count() == 3


def _test_database_url() -> str:
    """A DATABASE_URL naming this run's test database (a file, or PostgreSQL's test_<name>)."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(str(settings.get("USER") or ""), safe="")
        password = quote(str(settings.get("PASSWORD") or ""), safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host, port = settings.get("HOST") or "127.0.0.1", settings.get("PORT") or "5432"
        return f"postgis://{credentials}{host}:{port}/{quote(str(settings['NAME']), safe='')}"
    assert not connection.is_in_memory_db()  # require_concurrent_writers skipped that
    return f"spatialite:///{Path(str(settings['NAME'])).resolve()}"


def _worker_env() -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": _test_database_url()}
    env.pop("SPATIALITE_TEST_NAME", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_two_worker_processes_escalate_each_case_exactly_once(tmp_path: Path):
    cases = breached_cases(16)
    env = _worker_env()
    command = [sys.executable, "manage.py", "dispatch_escalate", "--once", "--batch", "500"]
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers = []
    for log in logs:
        with log.open("w") as sink:
            workers.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
            )
    for worker in workers:
        assert worker.wait(timeout=PROCESS_TIMEOUT_SECONDS) == 0, [p.read_text() for p in logs]

    escalated = 0
    for log in logs:
        lines = [line for line in log.read_text().splitlines() if "escalation pass:" in line]
        assert len(lines) == 1, log.read_text()
        escalated += int(lines[0].split("escalation pass:")[1].split()[0])
    assert escalated == len(cases)
    assert Supervision.objects.count() == len(cases)
    assert_each_once(cases, "escalate", ESCALATED)
    assert chain_verify().ok


def test_the_worker_loop_stops_cleanly_on_sigterm(tmp_path: Path):
    cases = breached_cases(2)
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "dispatch_escalate", "--interval", "30"],
            cwd=ROOT,
            env=_worker_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        give_up = time.monotonic() + PROCESS_TIMEOUT_SECONDS
        while "escalation pass:" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < give_up, log.read_text()
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)  # now waiting for the next pass
        assert worker.wait(timeout=PROCESS_TIMEOUT_SECONDS) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)

    output = log.read_text()
    assert "escalation pass: 2 escalated" in output
    assert "SIGTERM received, stopping" in output
    assert output.rstrip().endswith("escalation worker stopped")
    assert Supervision.objects.count() == len(cases)
