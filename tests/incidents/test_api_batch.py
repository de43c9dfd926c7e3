"""Batch actions (POST /api/v1/incidents/batch/<action>/): each case answered as on its own, its
own timeline row, audit entry and event; what concerns the whole batch refused with 400 before
any case changes; the Idempotency-Key honoured."""

from __future__ import annotations

import uuid

import pytest

from incidents.api.batch import BATCH_MAX
from incidents.models import Incident
from incidents.services import (
    incident_close,
    incident_dispatch,
    incident_feed_back,
    incident_register,
    incident_verify,
)
from tests.incidents.api import LIST, client_for
from tests.incidents.cases import OTHER_STREET_GRID, report, trail

pytestmark = pytest.mark.usefixtures("reference_data")


def batch_url(action: str) -> str:
    return f"{LIST}batch/{action}/"


def batch(user, action, body, expect=200, key=None, language=None):
    headers = {"Idempotency-Key": key} if key else {}
    if language:
        headers["accept-language"] = language
    response = client_for(user).post(batch_url(action), body, format="json", headers=headers)
    assert response.status_code == expect, response.json()
    return response.json()


def statuses(*cases: Incident) -> list[str]:
    return [Incident.objects.get(pk=case.pk).status for case in cases]


def test_each_case_is_answered_as_on_its_own(cast):
    mine = [report() for _ in range(3)]
    elsewhere = report(grid=OTHER_STREET_GRID)
    already = report()
    incident_register(incident=already, by=cast.community)
    before = [trail(case) for case in mine]

    answer = batch(
        cast.community,
        "register",
        {
            "numbers": [
                mine[0].number,
                elsewhere.number,
                already.number,
                "LH-NOPE",
                *[case.number for case in mine[1:]],
            ],
            "note": "批量立案",
        },
    )

    assert answer["action"] == "register"
    assert (answer["done"], answer["failed"]) == (3, 3)
    by_number = {row["number"]: row for row in answer["results"]}
    assert [row["number"] for row in answer["results"]][:4] == [
        mine[0].number,
        elsewhere.number,
        already.number,
        "LH-NOPE",
    ]  # in the order given
    for case in mine:
        assert by_number[case.number] == {
            "number": case.number,
            "result": "done",
            "code": 200,
            "status": "registered",
            "errors": {},
        }
    # Another street's case is 404 here, exactly like a number that does not exist.
    assert by_number[elsewhere.number]["code"] == 404
    assert by_number["LH-NOPE"]["code"] == 404
    assert by_number[elsewhere.number]["errors"]["detail"].endswith(f"{elsewhere.number} 的案件。")
    # A case already registered: the one-case endpoint's 409, with its status now.
    conflict = by_number[already.number]
    assert conflict["code"] == 409 and conflict["status"] == "registered"
    assert "allowed_actions" in conflict["errors"]

    assert statuses(*mine) == ["registered"] * 3
    assert statuses(elsewhere) == ["reported"]
    for case, was in zip(mine, before, strict=True):
        now = trail(case)
        assert now == (was.transitions + 1, was.audits + 1, was.events + 1)


def test_a_batch_dispatch_and_a_departments_batch_accept(cast):
    cases = [report() for _ in range(3)]
    for case in cases:
        incident_register(incident=case, by=cast.community)
    answer = batch(
        cast.street,
        "dispatch",
        {"numbers": [case.number for case in cases], "department": "CGJ", "note": "统一派城管"},
    )
    assert answer["done"] == 3
    assert {row["status"] for row in answer["results"]} == {"dispatched"}
    assert set(
        Incident.objects.filter(pk__in=[c.pk for c in cases]).values_list(
            "assigned_department_code", flat=True
        )
    ) == {"CGJ"}

    # 水务 does not see 城管's cases: each is 404 to them; 城管 signs for all three.
    refused = batch(cast.other_department, "accept", {"numbers": [cases[0].number]})
    assert refused["results"][0]["code"] == 404
    accepted = batch(cast.handler, "accept", {"numbers": [case.number for case in cases]})
    assert accepted["done"] == 3
    assert statuses(*cases) == ["accepted"] * 3


def test_a_step_the_user_may_not_take_is_403_for_that_case_only(cast):
    case = report()
    incident_register(incident=case, by=cast.community)
    answer = batch(cast.grid_worker, "dispatch", {"numbers": [case.number], "department": "CGJ"})
    assert answer["results"][0]["code"] == 403
    assert answer["results"][0]["errors"]["detail"]
    assert statuses(case) == ["registered"]


def test_a_batch_merge_into_one_primary(cast):
    primary = report()
    duplicates = [report() for _ in range(4)]
    answer = batch(
        cast.community,
        "merge",
        {"numbers": [case.number for case in duplicates], "into": primary.number},
    )
    assert answer["done"] == 4
    assert {row["status"] for row in answer["results"]} == {"merged"}
    assert primary.duplicates.count() == 4
    assert statuses(primary) == ["reported"]


def test_the_whole_batch_is_refused_before_any_case_changes(cast):
    cases = [report() for _ in range(2)]
    numbers = [case.number for case in cases]
    closed = report()
    incident_register(incident=closed, by=cast.community)
    incident_dispatch(incident=closed, by=cast.street, department_code="CGJ")
    from incidents.services import incident_accept

    incident_accept(incident=closed, by=cast.handler)
    incident_feed_back(incident=closed, by=cast.handler, feedback="已清运")
    incident_verify(incident=closed, by=cast.grid_worker, passed=True)
    incident_close(incident=closed, by=cast.community)
    before = [trail(case) for case in cases]

    refusals = [
        ("register", {"numbers": []}, "numbers"),
        ("register", {}, "numbers"),
        ("register", {"numbers": "LH-1"}, "numbers"),
        ("register", {"numbers": [f"LH-{n}" for n in range(BATCH_MAX + 1)]}, "numbers"),
        ("register", {"numbers": [numbers[0], numbers[1], numbers[0]]}, "numbers"),
        ("register", {"numbers": ["x" * 25]}, "numbers"),
        ("register", {"numbers": numbers, "status": "closed"}, "status"),
        ("reject", {"numbers": numbers}, "reason"),
        ("reject", {"numbers": numbers, "reason": "  "}, "reason"),
        ("register", {"numbers": numbers, "note": "x" * 5000}, "note"),
        ("dispatch", {"numbers": numbers, "department": "NOPE"}, "department"),
        ("dispatch", {"numbers": numbers}, "department"),
        ("dispatch", {"numbers": numbers, "department": "CGJ", "assignee": "nobody"}, "assignee"),
        ("merge", {"numbers": numbers, "into": "LH-NOPE"}, "into"),
        ("merge", {"numbers": numbers, "into": closed.number}, "into"),
        ("merge", {"numbers": numbers, "into": numbers[0]}, "numbers"),
    ]
    for action, body, field in refusals:
        answer = batch(cast.community, action, body, expect=400)
        assert field in answer, (action, body, answer)
    assert [trail(case) for case in cases] == before
    assert statuses(*cases) == ["reported", "reported"]


def test_a_retry_with_the_same_key_gets_the_first_answer(cast):
    cases = [report() for _ in range(2)]
    body = {"numbers": [case.number for case in cases]}
    key = str(uuid.uuid4())
    first = batch(cast.community, "register", body, key=key)
    assert first["done"] == 2
    after = [trail(case) for case in cases]
    again = client_for(cast.community).post(
        batch_url("register"), body, format="json", headers={"Idempotency-Key": key}
    )
    assert again.status_code == 200 and again.json() == first
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [trail(case) for case in cases] == after
    # The same key for another request: 422, nothing done.
    other = client_for(cast.community).post(
        batch_url("reject"),
        {**body, "reason": "误报"},
        format="json",
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 422
    assert statuses(*cases) == ["registered", "registered"]


def test_errors_speak_english_when_asked(cast):
    case = report()
    answer = batch(
        cast.community,
        "dispatch",
        {"numbers": [case.number], "department": "NOPE"},
        expect=400,
        language="en",
    )
    assert "is not a department code" in answer["department"][0]
    done = batch(cast.community, "register", {"numbers": ["LH-NOPE"]}, language="en")
    assert done["results"][0]["errors"]["detail"] == "No case LH-NOPE."


def test_only_the_listed_actions_have_a_batch(cast):
    for action in ("feed-back", "verify", "evaluate", "send-back"):
        response = client_for(cast.community).post(batch_url(action), {}, format="json")
        # No batch route: the path reads as the one-case action on a case numbered "batch".
        assert response.status_code == 404
