"""Overload: when the database gives a report no turn in time, the answer is 503 with
Retry-After and nothing is stored; a burst of reports from many threads of one process all get
their turn (the SpatiaLite backend's write gate)."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection

from incidents.models import Incident
from tests.incidents.api import LIST, client_for, report_body
from tests.incidents.cases import make_cast
from tests.threads import require_concurrent_writers, run_in_threads


@pytest.fixture
def committed_cast(request):
    require_concurrent_writers()
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")
    return make_cast()


@pytest.mark.django_db(transaction=True)
def test_a_report_that_gets_no_write_turn_is_503_with_retry_after_and_nothing_stored(
    committed_cast,
):
    if connection.vendor != "sqlite":
        pytest.skip("holds SQLite's write lock from another connection")
    options = connection.settings_dict["OPTIONS"]
    saved = options["timeout"]
    options["timeout"] = 0.5
    connection.close()  # the next connection waits 0.5 s for the lock
    blocker = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    before = Incident.objects.count()
    client = client_for(committed_cast.grid_worker)  # signed in before the lock is taken
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
        response = client.post(
            LIST, report_body(), format="json", HTTP_IDEMPOTENCY_KEY="overload-0001"
        )
        blocker.execute("ROLLBACK")
        assert response.status_code == 503, response.content
        assert response["Retry-After"] == "2"
        assert response.json()["detail"] == "服务器繁忙，未保存任何内容，请稍后重试。"
        assert Incident.objects.count() == before

        # The retry with the same key, once the lock is free, is taken in: the 503 claimed nothing.
        again = client.post(
            LIST, report_body(), format="json", HTTP_IDEMPOTENCY_KEY="overload-0001"
        )
        assert again.status_code == 201, again.content
        assert Incident.objects.count() == before + 1
    finally:
        blocker.close()
        options["timeout"] = saved
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_reports_from_many_threads_is_all_taken_in(committed_cast):
    numbers: list[str] = []

    def report(worker: int) -> None:
        response = client_for(committed_cast.grid_worker).post(LIST, report_body(), format="json")
        assert response.status_code == 201, response.content
        numbers.append(response.json()["number"])

    run_in_threads(report, 16)

    assert len(set(numbers)) == 16
    assert Incident.objects.filter(number__in=numbers).count() == 16
