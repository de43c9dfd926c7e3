"""The closed loop through HTTP, each step by the role that takes it; refusals: 409 with the
allowed actions, 403, 404, input errors naming the field; filters and pagination of the list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident, IncidentStatus, IncidentTransition
from incidents.services import incident_dispatch, incident_register
from tests.incidents.api import LIST, action_url, client_for, detail_url, report_body
from tests.incidents.cases import OTHER_STREET_GRID, report

pytestmark = pytest.mark.usefixtures("reference_data")


def act(user, number, action, body=None, expect=200, language=None):
    headers = {"accept-language": language} if language else {}
    response = client_for(user).post(
        action_url(number, action), body or {}, format="json", headers=headers
    )
    assert response.status_code == expect, response.json()
    return response.json()


def test_the_whole_loop_through_http(cast):
    created = client_for(cast.grid_worker).post(
        LIST, report_body(reporter_phone="13812341234"), format="json"
    )
    assert created.status_code == 201
    number = created.json()["number"]

    community_view = client_for(cast.community).get(detail_url(number)).json()
    assert community_view["allowed_actions"] == ["register", "reject", "merge"]
    assert community_view["reporter_phone"] == "13812341234"

    assert act(cast.community, number, "register", {"note": "属实"})["status"] == "registered"
    dispatched = act(cast.street, number, "dispatch", {"department": "CGJ"})
    assert dispatched["status"] == "dispatched"
    assert dispatched["assigned_department_code"] == "CGJ"

    handler_view = client_for(cast.handler).get(detail_url(number)).json()
    assert handler_view["allowed_actions"] == ["accept", "send_back"]
    assert handler_view["reporter_phone"] == "138****1234"  # no call-backs from departments

    assert act(cast.handler, number, "accept")["status"] == "accepted"
    assert act(cast.handler, number, "handle", {"note": "已到场"})["status"] == "handling"
    fed_back = act(cast.handler, number, "feed-back", {"feedback": "垃圾已清运"})
    assert fed_back["status"] == "fed_back" and fed_back["feedback"] == "垃圾已清运"

    # The handler never verifies their own work (four-eyes); another grid worker does.
    refused = act(cast.handler, number, "verify", {"passed": True}, expect=403)
    assert "detail" in refused
    assert act(cast.grid_worker_2, number, "verify", {"passed": True})["status"] == "verified"
    closed = act(cast.community, number, "close")
    assert closed["status"] == "closed" and closed["closed_at"]
    evaluated = act(cast.grid_worker, number, "evaluate", {"satisfaction": 5, "comment": "好"})

    assert evaluated["status"] == "evaluated" and evaluated["satisfaction"] == 5
    assert [step["action"] for step in evaluated["timeline"]] == [
        "report",
        "register",
        "dispatch",
        "accept",
        "handle",
        "feed_back",
        "verify",
        "close",
        "evaluate",
    ]
    assert evaluated["timeline"][2]["actor"] == cast.street.username
    assert evaluated["timeline"][2]["details"]["department"] == "CGJ"
    stored = Incident.objects.get(number=number)
    assert stored.status == IncidentStatus.EVALUATED and stored.satisfaction == 5


def test_an_illegal_transition_is_409_with_the_allowed_actions(cast):
    case = report()
    act(cast.community, case.number, "register")
    steps = IncidentTransition.objects.filter(incident=case).count()

    answer = act(cast.community, case.number, "register", expect=409)

    assert answer["status"] == "registered"
    assert answer["allowed_actions"] == ["merge", "dispatch", "park"]
    # In the reader's language: the Chinese UI's by default, English when asked for.
    assert answer["detail"] == (
        "案件当前为“已立案（待派遣）”，不能“立案”。现在可以：合并、派遣、挂账。"
    )
    english = act(cast.community, case.number, "register", expect=409, language="en")
    assert english["detail"] == (
        "“Register” is not possible while the case is “Registered (to dispatch)”. "
        "Possible now: Merge, Dispatch, Park."
    )
    assert english["allowed_actions"] == answer["allowed_actions"]
    assert IncidentTransition.objects.filter(incident=case).count() == steps


def test_a_visible_case_the_user_may_not_act_on_is_403(cast):
    case = report()
    answer = act(cast.grid_worker, case.number, "register", expect=403)
    assert answer["detail"] == (
        f"无权“立案”：只有案件 {case.number} 的指挥中心值班人员可以办理"
        f"（案件现归{case.community_name} 社区工作站）。"
    )
    answer = act(cast.auditor, case.number, "register", expect=403, language="en")
    assert answer["detail"] == (
        "“Register” is not permitted: Auditors read; they never act on cases."
    )
    assert Incident.objects.get(pk=case.pk).status == IncidentStatus.REPORTED


def test_another_streets_case_is_404_for_every_action(cast):
    case = report(grid=OTHER_STREET_GRID)
    for action in ("register", "reject", "dispatch", "park"):
        answer = act(cast.street, case.number, action, {"reason": "x"}, expect=404)
        assert answer == {"detail": f"没有编号为 {case.number} 的案件。"}
    assert act(cast.street, "LH-20000101-000001", "register", expect=404)
    assert Incident.objects.get(pk=case.pk).status == IncidentStatus.REPORTED


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("reject", {}, "reason"),
        ("reject", {"reason": "  "}, "reason"),
        ("dispatch", {}, "department"),
        ("dispatch", {"department": "城管 局"}, "department"),
        ("dispatch", {"department": "CGX"}, "department"),  # no such department
        ("dispatch", {"assignee": "nobody-here"}, "assignee"),
        ("merge", {"into": "LH-20000101-000001"}, "into"),
        ("register", {"status": "closed"}, "status"),
        ("register", {"note": 5.5, "street_code": "1"}, "street_code"),
    ],
)
def test_action_input_errors_name_the_field_and_change_nothing(cast, action, body, field):
    case = report()
    if action == "dispatch":
        incident_register(incident=case, by=cast.community)
    steps = IncidentTransition.objects.filter(incident=case).count()

    answer = act(cast.district, case.number, action, body, expect=400)

    assert field in answer, answer
    assert IncidentTransition.objects.filter(incident=case).count() == steps


def test_send_back_needs_a_known_reason_code(cast):
    case = incident_dispatch(
        incident=incident_register(incident=report(), by=cast.community),
        by=cast.street,
        department_code="CGJ",
    )
    assert "reason_code" in act(cast.handler, case.number, "send-back", {}, expect=400)
    assert "reason_code" in act(
        cast.handler, case.number, "send-back", {"reason_code": "bored"}, expect=400
    )
    returned = act(cast.handler, case.number, "send-back", {"reason_code": "wrong_location"})
    assert returned["status"] == "returned"
    # The department no longer holds the case: it has gone from its view.
    assert client_for(cast.handler).get(detail_url(case.number)).status_code == 404


def test_extension_park_merge_and_reopen_through_http(cast):
    case = incident_dispatch(
        incident=incident_register(incident=report(), by=cast.community),
        by=cast.street,
        department_code="CGJ",
    )
    act(cast.handler, case.number, "accept")
    until = (timezone.now() + timedelta(days=10)).isoformat()
    requested = act(
        cast.handler, case.number, "request-extension", {"until": until, "reason": "需采购"}
    )
    assert requested["extension_requested_until"]
    approved = act(cast.street, case.number, "approve-extension")
    assert approved["extension_requested_until"] is None
    assert act(cast.street, case.number, "park", {"reason": "需立项"})["status"] == "parked"
    assert act(cast.street, case.number, "unpark")["status"] == "accepted"

    duplicate, primary = report(), report()
    merged = act(cast.community, duplicate.number, "merge", {"into": primary.number})
    assert merged["status"] == "merged" and merged["merged_into"] == primary.number
    assert act(cast.community, duplicate.number, "unmerge")["status"] == "reported"


def test_the_list_filters_and_pages_what_the_user_sees(cast):
    registered = incident_register(incident=report(), by=cast.community)
    reported = report()
    report(grid=OTHER_STREET_GRID)
    client = client_for(cast.street)

    everything = client.get(LIST).json()
    assert everything["count"] == 2
    assert {row["number"] for row in everything["results"]} == {
        registered.number,
        reported.number,
    }
    only = client.get(LIST, {"status": "registered"}).json()
    assert [row["number"] for row in only["results"]] == [registered.number]
    assert client.get(LIST, {"street": "440309002"}).json()["count"] == 0
    assert client.get(LIST, {"category": "06010", "community": "440309001001"}).json()["count"] == 2
    page = client.get(LIST, {"page_size": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    assert client.get(LIST, {"status": "lost"}).json() == {"status": ["“lost”不是案件状态。"]}
    assert "overdue" in client.get(LIST, {"overdue": "maybe"}).json()


def test_overdue_lists_cases_whose_clock_has_run_out(cast):
    late, on_time = report(), report()
    Incident.objects.filter(pk=late.pk).update(stage_deadline=timezone.now() - timedelta(minutes=1))
    client = client_for(cast.district)

    overdue = client.get(LIST, {"overdue": "true"}).json()
    assert [row["number"] for row in overdue["results"]] == [late.number]
    assert overdue["results"][0]["overdue"] is True
    assert on_time.number in {
        row["number"] for row in client.get(LIST, {"overdue": "false"}).json()["results"]
    }


def test_the_schema_describes_the_incident_endpoints(cast):
    response = client_for(cast.district).get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    schema = response.json()
    paths = schema["paths"]
    assert "/api/v1/incidents/" in paths
    assert "/api/v1/incidents/{number}/" in paths
    assert "/api/v1/incidents/{number}/send-back/" in paths
    batch = paths["/api/v1/incidents/batch/dispatch/"]["post"]
    body = batch["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert {"numbers", "department", "assignee", "note"} <= set(
        schema["components"]["schemas"][body]["properties"]
    )
    # Pages' scripts sign in with the session cookie; integrations with their key.
    assert {"cookieAuth", "ApiKey"} <= set(schema["components"]["securitySchemes"])
    assert {"cookieAuth": []} in batch["security"]
