"""The same Idempotency-Key sent by several threads at once (real commits, one connection per
thread): exactly one case is created, and every answer is the first one or 409 in flight."""

from __future__ import annotations

import threading

import pytest

from incidents.models import IdempotencyRecord, IdempotencyState, Incident
from tests.incidents.api import LIST, client_for, report_body
from tests.incidents.cases import make_cast
from tests.threads import require_concurrent_writers, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _committed(request: pytest.FixtureRequest) -> None:
    require_concurrent_writers()
    request.getfixturevalue("committed_demo_geography")
    request.getfixturevalue("reference_data")


def test_concurrent_retries_with_one_key_create_one_case():
    cast = make_cast()
    body = report_body()
    threads = 6
    clients = [client_for(cast.grid_worker) for _ in range(threads)]
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        response = clients[worker].post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="race")
        with lock:
            answers.append((response.status_code, response.json()))

    run_in_threads(work, threads)

    assert Incident.objects.count() == 1
    number = Incident.objects.get().number
    created = [answer for code, answer in answers if code == 201]
    busy = [answer for code, answer in answers if code == 409]
    assert len(created) + len(busy) == threads, answers
    assert created and all(answer["number"] == number for answer in created)
    assert all(answer == created[0] for answer in created)
    assert all("Idempotency-Key" in answer for answer in busy)
    record = IdempotencyRecord.objects.get()
    assert record.state == IdempotencyState.DONE and record.response_body["number"] == number

    # Once the first has finished, a retry is answered from the record.
    retry = client_for(cast.grid_worker).post(
        LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="race"
    )
    assert retry.status_code == 201 and retry.json() == created[0]
    assert Incident.objects.count() == 1
