"""Response plans (应急预案) and one-click dispatch (一键调派): the shipped plans, which apply to a
case, starting one through HTTP (the lead dispatched, the supports called out, audited and
published in one step), who then sees the case, and refusals naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.departments import known_departments
from accounts.models import Role
from audit.models import AuditEntry
from command.audit_labels import audit_changes_text
from dispatch.plans import PlanDataError, known_plans, plans_for, read_plans
from incidents.models import Category, CategoryKind, IncidentStatus, IncidentSupport
from incidents.selectors import incident_queue
from tests.incidents.api import LIST, client_for, detail_url
from tests.incidents.cases import event_scopes, last_event, make_user, report, trail

pytestmark = pytest.mark.usefixtures("reference_data")

FLOOD = "90002"  # 内涝积水: default severity Ⅳ, department SWJ
FIRE = "90001"


def plans_url(number: str) -> str:
    return f"{LIST}{number}/plans/"


def test_every_emergency_category_has_a_plan_and_every_plan_names_known_departments() -> None:
    plans = known_plans()
    emergencies = set(
        Category.objects.filter(kind=CategoryKind.EMERGENCY).values_list("code", flat=True)
    )
    assert emergencies <= {plan.category_code for plan in plans.values()}
    for plan in plans.values():
        assert {plan.lead, *plan.supports} <= set(known_departments())
        assert plan.name and plan.name_en and plan.instructions and plan.instructions_en


def test_the_plans_for_a_case_gravest_first() -> None:
    assert [plan.code for plan in plans_for(FLOOD, "IV")] == ["FLOOD-IV"]
    assert [plan.code for plan in plans_for(FLOOD, "III")] == ["FLOOD-III", "FLOOD-IV"]
    assert [plan.code for plan in plans_for(FLOOD, "I")] == ["FLOOD-III", "FLOOD-IV"]
    assert plans_for("06010", "") == []  # an everyday matter has none


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("X,90002,IV,n,n,SWJ,NOPE,i,i", "unknown departments ['NOPE']"),
        ("X,90002,V,n,n,SWJ,JD,i,i", "unknown severity 'V'"),
        ("X,90002,IV,n,n,SWJ,SWJ,i,i", "called out twice"),
    ],
)
def test_a_plan_file_with_a_wrong_row_is_refused_when_read(
    tmp_path: Path, row: str, words: str
) -> None:
    path = tmp_path / "plans.csv"
    header = "code,category_code,min_severity,name,name_en,lead,supports,instructions,"
    path.write_text(header + "instructions_en\n" + row + "\n", encoding="utf-8")
    with pytest.raises(PlanDataError, match=words.replace("[", r"\[").replace("]", r"\]")):
        read_plans(path)


def test_one_click_registers_dispatches_to_the_lead_and_calls_out_the_supports(cast) -> None:
    case = report(code=FLOOD, description="下穿隧道积水约 40 厘米", severity="III")
    assert case.status == IncidentStatus.REPORTED
    before = trail(case)

    listed = client_for(cast.district).get(plans_url(case.number)).json()
    assert [plan["code"] for plan in listed["plans"]] == ["FLOOD-III", "FLOOD-IV"]
    assert listed["plans"][0]["lead"] == {"code": "SWJ", "name": "水务"}
    assert listed["called_out"] == []

    response = client_for(cast.district).post(
        plans_url(case.number), {"plan": "FLOOD-III", "note": "三防指令"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == IncidentStatus.DISPATCHED
    assert body["assigned_department_code"] == "SWJ"
    supports = ["YJGLJ", "JD", "JJ", "XF", "GDJ"]
    assert body["support_department_codes"] == supports
    # Two steps, 立案 then 派遣, each with its timeline row, audit entry and event.
    assert trail(case) == before._replace(
        transitions=before.transitions + 2, audits=before.audits + 2, events=before.events + 2
    )
    dispatch = AuditEntry.objects.filter(action="incidents.incident_dispatch").get()
    assert dispatch.after["supports"] == supports and dispatch.before["supports"] == []
    # The audit page and export say who was called out in words.
    words = audit_changes_text("incidents.incident", dispatch.before, dispatch.after)
    assert "协办部门：（空） → 应急、街道、交警、消防、供电" in words.split("\n")
    event = last_event(case)
    assert {f"department:{code}" for code in ["SWJ", *supports]} <= event_scopes(event)
    called = client_for(cast.district).get(plans_url(case.number)).json()["called_out"]
    assert [(row["code"], row["plan"], row["called_by"]) for row in called] == [
        (code, "FLOOD-III", cast.district.username) for code in supports
    ]


def test_a_called_out_department_sees_the_case_and_others_do_not(cast) -> None:
    case = report(code=FLOOD, severity="III")
    client_for(cast.district).post(plans_url(case.number), {"plan": "FLOOD-III"}, format="json")
    emergency = make_user(Role.DEPARTMENT_HANDLER, department="YJGLJ")
    urban = make_user(Role.DEPARTMENT_HANDLER, department="CGJ")

    assert client_for(emergency).get(detail_url(case.number)).status_code == 200
    listed = client_for(emergency).get(LIST).json()["results"]
    assert case.number in [row["number"] for row in listed]
    assert [row.number for row in incident_queue(emergency, department_code="YJGLJ")] == [
        case.number
    ]
    assert client_for(urban).get(detail_url(case.number)).status_code == 404
    assert client_for(urban).get(plans_url(case.number)).status_code == 404
    # Seeing is not handling: the case's steps stay with the department dispatched.
    assert client_for(emergency).get(detail_url(case.number)).json()["allowed_actions"] == []


def test_a_graver_plan_afterwards_calls_out_only_the_departments_not_yet_called(cast) -> None:
    case = report(code=FLOOD, severity="III")
    client_for(cast.district).post(plans_url(case.number), {"plan": "FLOOD-IV"}, format="json")
    assert set(IncidentSupport.objects.values_list("department_code", flat=True)) == {"JD", "JJ"}
    case.refresh_from_db()
    # Sent back by the department, then dispatched again by the graver plan.
    swj = make_user(Role.DEPARTMENT_HANDLER, department="SWJ")
    client_for(swj).post(
        f"{LIST}{case.number}/send-back/", {"reason_code": "insufficient_info"}, format="json"
    )
    response = client_for(cast.district).post(
        plans_url(case.number), {"plan": "FLOOD-III"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["support_department_codes"] == ["JD", "JJ", "YJGLJ", "XF", "GDJ"]
    assert IncidentSupport.objects.filter(incident=case).count() == 5


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"plan": "NOPE"}, "plan", "不是已知的应急预案"),
        ({"plan": "FIRE-IV"}, "plan", "不适用于这个案件"),
        ({"plan": "FLOOD-III"}, "plan", "不适用于这个案件"),  # a Ⅳ case: not graver than Ⅳ
        ({"plan": "FLOOD-IV", "status": "closed"}, "status", "未知字段"),
        ({"plan": 12}, "plan", ""),
        ({}, "plan", ""),
        ({"plan": "FLOOD-IV", "note": "很" * 2001}, "note", ""),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_changes(
    cast, body: dict, field: str, words: str
) -> None:
    case = report(code=FLOOD, severity="IV")
    before = trail(case)
    response = client_for(cast.district).post(plans_url(case.number), body, format="json")
    assert response.status_code == 400
    assert words in response.json()[field][0]
    assert trail(case) == before
    assert not IncidentSupport.objects.exists()


def test_who_may_not_start_a_plan_is_refused(cast) -> None:
    case = report(code=FLOOD, severity="IV")
    other = client_for(cast.other_street).post(
        plans_url(case.number), {"plan": "FLOOD-IV"}, format="json"
    )
    assert other.status_code == 404
    rejected = report(code=FIRE)
    client_for(cast.community).post(
        f"{LIST}{rejected.number}/reject/", {"reason": "误报"}, format="json"
    )
    finished = client_for(cast.district).post(
        plans_url(rejected.number), {"plan": "FIRE-IV"}, format="json"
    )
    assert finished.status_code == 409
    assert "allowed_actions" in finished.json()
    assert not IncidentSupport.objects.exists()


def test_the_case_page_offers_the_plan_first_and_then_lists_the_departments_called_out(
    cast,
) -> None:
    case = report(code=FLOOD, severity="III")
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    form = page.split('<details class="action action-primary" data-action="plans"')[1]
    form = form.split("</form>")[0]
    assert page.index('data-action="plans"') < page.index('data-action="register"')
    assert 'data-slug="plans"' in form
    assert '<option value="FLOOD-III" selected>' in form
    assert "水务牵头，应急、街道、交警、消防、供电协办" in form
    assert 'data-testid="called-out"' not in page

    client_for(cast.district).post(plans_url(case.number), {"plan": "FLOOD-III"}, format="json")
    english = client_for(cast.district)
    english.cookies["django_language"] = "en"
    page = english.get(f"/command/cases/{case.number}/").content.decode()
    called = page.split('data-testid="called-out"')[1].split("</section>")[0]
    assert "Supporting departments" in page
    assert [f'data-department="{code}"' in called for code in ("YJGLJ", "XF")] == [True, True]
    # Dispatched: the plan is not offered again (the case may not be dispatched now).
    assert 'data-action="plans"' not in page


def test_a_called_out_departments_queue_marks_the_case_as_support_and_offers_no_accept(
    cast,
) -> None:
    case = report(code=FLOOD, severity="III")
    client_for(cast.district).post(plans_url(case.number), {"plan": "FLOOD-III"}, format="json")
    lead = make_user(Role.DEPARTMENT_HANDLER, department="SWJ")
    emergency = make_user(Role.DEPARTMENT_HANDLER, department="YJGLJ")

    lead_page = client_for(lead).get("/command/department/").content.decode()
    assert f'data-quick-action="accept" data-number="{case.number}"' in lead_page
    assert 'class="flag flag-support"' not in lead_page
    support_page = client_for(emergency).get("/command/department/").content.decode()
    assert case.number in support_page
    assert 'data-quick-action="accept"' not in support_page
    assert 'class="flag flag-support"' in support_page
