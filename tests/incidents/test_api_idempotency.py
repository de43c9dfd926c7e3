"""Idempotency-Key on writes: a retry gets the first answer and creates nothing; the same key
with another body is 422; a key in flight is 409; 4xx answers are kept too (the Stripe rule);
keys are per user and expire after 24 h."""

from __future__ import annotations

from datetime import timedelta

import pytest

from incidents.models import IdempotencyRecord, IdempotencyState, Incident, IncidentTransition
from incidents.services import incident_register
from tests.incidents.api import LIST, action_url, client_for, report_body
from tests.incidents.cases import report

pytestmark = pytest.mark.usefixtures("reference_data")


def post(client, body, key, url=LIST):
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer(cast):
    client, body = client_for(cast.grid_worker), report_body()
    first = post(client, body, "key-1")
    again = post(client, body, "key-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 1
    record = IdempotencyRecord.objects.get(key="key-1")
    assert record.state == IdempotencyState.DONE and record.response_status == 201


def test_the_same_key_with_another_body_is_422_and_creates_nothing(cast):
    client, body = client_for(cast.grid_worker), report_body()
    post(client, body, "key-2")
    other = post(client, {**body, "description": "另一处垃圾"}, "key-2")

    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()
    assert Incident.objects.count() == 1


def test_a_key_still_in_flight_is_409(cast):
    client, body = client_for(cast.grid_worker), report_body()
    post(client, body, "key-3")
    IdempotencyRecord.objects.filter(key="key-3").update(state=IdempotencyState.IN_FLIGHT)

    busy = post(client, body, "key-3")

    assert busy.status_code == 409
    assert busy.json() == {"Idempotency-Key": ["使用这个键的请求仍在处理中，请稍后重试。"]}
    assert Incident.objects.count() == 1


def test_a_refusal_is_kept_and_replayed_and_a_correction_needs_a_new_key(cast):
    client = client_for(cast.grid_worker)
    bad = {**report_body(), "category": "99999"}
    first = post(client, bad, "key-4")
    again = post(client, bad, "key-4")
    corrected = post(client, report_body(), "key-4")
    fresh = post(client, report_body(), "key-5")

    assert first.status_code == again.status_code == 400
    assert again.json() == first.json() and "category" in first.json()
    assert corrected.status_code == 422
    assert fresh.status_code == 201
    assert Incident.objects.count() == 1


def test_keys_belong_to_their_user(cast):
    first = post(client_for(cast.grid_worker), report_body(), "shared")
    second = post(client_for(cast.grid_worker_2), report_body(), "shared")

    assert first.status_code == second.status_code == 201
    assert first.json()["number"] != second.json()["number"]


def test_an_expired_key_may_be_used_again(cast):
    client, body = client_for(cast.grid_worker), report_body()
    post(client, body, "key-6")
    IdempotencyRecord.objects.update(
        created_at=IdempotencyRecord.objects.get().created_at - timedelta(hours=25)
    )

    again = post(client, body, "key-6")

    assert again.status_code == 201
    assert Incident.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1


def test_an_abandoned_claim_is_taken_over(cast):
    client, body = client_for(cast.grid_worker), report_body()
    post(client, body, "key-7")
    Incident.objects.all().delete()  # as if the first request died before committing its work
    record = IdempotencyRecord.objects.get()
    IdempotencyRecord.objects.update(
        state=IdempotencyState.IN_FLIGHT, created_at=record.created_at - timedelta(minutes=10)
    )

    retry = post(client, body, "key-7")

    assert retry.status_code == 201
    assert Incident.objects.count() == 1


def test_an_action_retried_with_its_key_is_applied_once(cast):
    case = incident_register(incident=report(), by=cast.community)
    client, body = client_for(cast.street), {"department": "CGJ"}
    url = action_url(case.number, "dispatch")
    first = post(client, body, "dispatch-1", url)
    again = post(client, body, "dispatch-1", url)
    elsewhere = post(client, {}, "dispatch-1", action_url(case.number, "park"))

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert elsewhere.status_code == 422  # the path is part of the request
    assert IncidentTransition.objects.filter(incident=case, action="dispatch").count() == 1


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "中文"])
def test_a_malformed_key_is_refused_naming_the_header(cast, key):
    response = post(client_for(cast.grid_worker), report_body(), key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert Incident.objects.count() == 0
