"""Concurrent actions on one case, and concurrent reports, from threads with their own database
connections and real commits: exactly one of two dispatches wins; numbers stay unique and gapless.

PostgreSQL: the case's row lock (SELECT … FOR UPDATE) makes the second action wait and then
read the status the first left. SQLite (a file database in BEGIN IMMEDIATE mode, as `make test`
runs it): writers queue for the database's write lock, with the same outcome. An in-memory
SQLite test database cannot do this, and the tests skip there (tests/threads.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from functools import partial
from typing import Any

import pytest

from audit.models import AuditEntry
from audit.selectors import chain_verify
from incidents.models import Incident, IncidentStatus, IncidentTransition, SendBackReason
from incidents.services import (
    incident_accept,
    incident_dispatch,
    incident_register,
    incident_send_back,
)
from incidents.workflow import IllegalTransition
from realtime.models import OutboxEvent
from tests.incidents.cases import make_cast, report
from tests.threads import require_concurrent_writers, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _committed(request: pytest.FixtureRequest) -> None:
    require_concurrent_writers()  # before loading anything
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")


def race(attempts: list[Any]) -> tuple[list[Incident], list[IllegalTransition]]:
    """Run every attempt at the same moment from its own thread: (results, refusals)."""
    won: list[Incident] = []
    lost: list[IllegalTransition] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            result = attempts[worker]()
        except IllegalTransition as refusal:
            with lock:
                lost.append(refusal)
        else:
            with lock:
                won.append(result)

    run_in_threads(work, len(attempts))
    return won, lost


def test_two_dispatchers_at_once_exactly_one_wins():
    cast = make_cast()
    for _round in range(5):
        case = incident_register(incident=report(), by=cast.community)
        won, lost = race(
            [
                partial(incident_dispatch, incident=case, by=cast.street, department_code="CGJ"),
                partial(incident_dispatch, incident=case, by=cast.district, department_code="SWJ"),
            ]
        )

        assert len(won) == 1 and len(lost) == 1
        (winner,) = won
        assert lost[0].status == IncidentStatus.DISPATCHED
        assert lost[0].allowed == ["accept", "send_back", "call_out", "park"]
        stored = Incident.objects.get(pk=case.pk)
        assert stored.status == IncidentStatus.DISPATCHED
        assert stored.assigned_department_code == winner.assigned_department_code
        assert IncidentTransition.objects.filter(incident=case, action="dispatch").count() == 1
        audited = AuditEntry.objects.filter(
            action="incidents.incident_dispatch", object_id=str(case.pk)
        )
        assert audited.count() == 1
        announced = OutboxEvent.objects.filter(
            type="incidents.incident_status_changed",
            payload__incident__number=case.number,
            payload__transition__action="dispatch",
        )
        assert announced.count() == 1
    assert chain_verify().ok


def test_accept_and_send_back_at_once_exactly_one_applies():
    cast = make_cast()
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")

    won, lost = race(
        [
            lambda: incident_accept(incident=case, by=cast.handler),
            lambda: incident_send_back(
                incident=case, by=cast.handler_2, reason_code=SendBackReason.DUPLICATE
            ),
        ]
    )

    assert len(won) == 1 and len(lost) == 1
    stored = Incident.objects.get(pk=case.pk)
    assert stored.status == won[0].status
    assert stored.status in (IncidentStatus.ACCEPTED, IncidentStatus.RETURNED)
    assert stored.send_backs == (1 if stored.status == IncidentStatus.RETURNED else 0)
    assert IncidentTransition.objects.filter(incident=case).count() == 4


def test_concurrent_reports_get_unique_sequential_numbers_per_day():
    threads, per_thread = 8, 10

    def report_many(worker: int) -> None:
        for _n in range(per_thread):
            report(description=f"worker {worker}")

    run_in_threads(report_many, threads)

    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == threads * per_thread
    by_day: dict[str, list[int]] = defaultdict(list)
    for number in numbers:
        _prefix, day, serial = number.split("-")
        by_day[day].append(int(serial))
    for serials in by_day.values():  # a run across midnight starts the next day at 1
        assert sorted(serials) == list(range(1, len(serials) + 1))
    assert chain_verify().ok
