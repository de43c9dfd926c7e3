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
    # Seeing is not handling: the case's steps stay with the department dispatched; a
    # department called out only confirms it is on the scene and reports what it has done.
    assert client_for(emergency).get(detail_url(case.number)).json()["allowed_actions"] == [
        "confirm_arrival",
        "support_report",
    ]


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


# --- 升级响应, 增派协办 and 确认到场: a case in hand ---------------------------------------------


def call_out_url(number: str) -> str:
    return f"{LIST}{number}/call-out/"


def arrival_url(number: str) -> str:
    return f"{LIST}{number}/confirm-arrival/"


def accepted_flood(cast, severity: str = "IV", plan: str = "FLOOD-IV"):
    """A flood case started on `plan`, then accepted by 水务: in hand."""
    case = report(code=FLOOD, severity=severity)
    started = client_for(cast.district).post(plans_url(case.number), {"plan": plan}, format="json")
    assert started.status_code == 200, started.json()
    swj = make_user(Role.DEPARTMENT_HANDLER, department="SWJ")
    accepted = client_for(swj).post(f"{LIST}{case.number}/accept/", {}, format="json")
    assert accepted.status_code == 200, accepted.json()
    case.refresh_from_db()
    return case, swj


def test_a_graver_plan_raises_the_severity_of_a_case_not_yet_dispatched(cast) -> None:
    case = report(code=FLOOD, severity="IV")
    listed = client_for(cast.district).get(plans_url(case.number)).json()
    assert [plan["code"] for plan in listed["plans"]] == ["FLOOD-IV"]
    assert [plan["code"] for plan in listed["escalations"]] == ["FLOOD-III"]

    response = client_for(cast.district).post(
        plans_url(case.number), {"plan": "FLOOD-III"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["severity"] == "III" and body["plan_code"] == "FLOOD-III"
    dispatch = AuditEntry.objects.filter(action="incidents.incident_dispatch").get()
    assert (dispatch.before["severity"], dispatch.after["severity"]) == ("IV", "III")
    assert last_event(case).payload["incident"]["plan"] == "FLOOD-III"


def test_a_graver_plan_on_a_case_in_hand_calls_out_beside_the_department_without_moving_it(
    cast,
) -> None:
    case, _swj = accepted_flood(cast)
    deadline, before = case.stage_deadline, trail(case)
    assert set(case.support_department_codes) == {"JD", "JJ"}
    # The page offers the graver plan on the case in hand, marked as raising the severity.
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    form = page.split('<form class="action-form" data-action="plans"')[1].split("</form>")[0]
    assert '<option value="FLOOD-III" selected>' in form and "升级为较大（Ⅲ级）" in form

    response = client_for(cast.district).post(
        plans_url(case.number), {"plan": "FLOOD-III", "note": "水位上涨"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    # Still 水务's, still accepted, the same clock; three more departments beside it.
    assert body["status"] == IncidentStatus.ACCEPTED
    assert body["assigned_department_code"] == "SWJ"
    assert body["support_department_codes"] == ["JD", "JJ", "YJGLJ", "XF", "GDJ"]
    assert (body["severity"], body["plan_code"]) == ("III", "FLOOD-III")
    case.refresh_from_db()
    assert case.stage_deadline == deadline
    # One step: its timeline row, audit entry and event, which reaches the new departments.
    assert trail(case) == before._replace(
        transitions=before.transitions + 1, audits=before.audits + 1, events=before.events + 1
    )
    step = case.transitions.order_by("-id").first()
    assert (step.action, step.from_status, step.to_status) == ("call_out", "accepted", "accepted")
    assert step.data["supports"] == ["YJGLJ", "XF", "GDJ"]
    assert step.data["severity"] == ["IV", "III"]
    # The timeline names the plan, the departments and the severity raised; the clock is kept.
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    row = page.split("增派协办</strong>")[-1].split("</li>")[0]
    assert "事件级别：一般（Ⅳ级） → 较大（Ⅲ级）" in row and "应急、消防、供电" in row
    assert "新时限" not in row
    assert {"department:YJGLJ", "department:XF", "department:GDJ"} <= event_scopes(last_event(case))
    audit = AuditEntry.objects.filter(action="incidents.incident_call_out").get()
    assert audit.after["supports"] == ["JD", "JJ", "YJGLJ", "XF", "GDJ"]
    words = audit_changes_text("incidents.incident", audit.before, audit.after).split("\n")
    assert "应急预案：内涝积水一般响应 → 内涝积水较大及以上响应（三防联动）" in words
    # Nothing more to call out: the page offers no plan, and starting it again is refused.
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    assert 'data-action="plans"' not in page
    again = client_for(cast.district).post(
        plans_url(case.number), {"plan": "FLOOD-III"}, format="json"
    )
    assert again.status_code == 400 and "没有新增的部门" in again.json()["plan"][0]
    # A response is raised, never lowered: the lesser plan is refused, the plan in force kept.
    lesser = client_for(cast.district).post(
        plans_url(case.number), {"plan": "FLOOD-IV"}, format="json"
    )
    assert lesser.status_code == 400 and "不能改用较低级别" in lesser.json()["plan"][0]
    case.refresh_from_db()
    assert case.plan_code == "FLOOD-III"


def test_departments_called_out_by_hand_on_a_case_in_hand(cast) -> None:
    case, swj = accepted_flood(cast)
    response = client_for(cast.district).post(
        call_out_url(case.number),
        {"supports": ["GDJ", "SWJ", "GDJ"], "note": "倒杆"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    # The department handling it is not its own support; a code named twice is called once.
    assert response.json()["support_department_codes"] == ["JD", "JJ", "GDJ"]
    row = IncidentSupport.objects.get(incident=case, department_code="GDJ")
    assert (row.plan_code, row.called_by) == ("", cast.district)
    # The handler handles; calling out is the command centre's.
    refused = client_for(swj).post(call_out_url(case.number), {"supports": ["XF"]}, format="json")
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"supports": ["NOPE"]}, "supports", "不是已知的部门代码"),
        ({"supports": ["JD"]}, "supports", "没有新增的部门"),
        ({"supports": []}, "supports", ""),
        ({"supports": "GDJ"}, "supports", ""),
        ({"supports": ["GDJ"], "status": "closed"}, "status", "未知字段"),
        ({"supports": ["GDJ"], "note": "很" * 2001}, "note", ""),
    ],
)
def test_bad_call_outs_are_refused_naming_the_field_and_nothing_changes(
    cast, body: dict, field: str, words: str
) -> None:
    case, _swj = accepted_flood(cast)
    before = trail(case)
    response = client_for(cast.district).post(call_out_url(case.number), body, format="json")
    assert response.status_code == 400, response.json()
    assert words in str(response.json()[field])
    assert trail(case) == before
    assert IncidentSupport.objects.filter(incident=case).count() == 2


def test_a_case_not_in_hand_cannot_have_departments_called_out(cast) -> None:
    case = report(code=FLOOD, severity="IV")
    response = client_for(cast.district).post(
        call_out_url(case.number), {"supports": ["GDJ"]}, format="json"
    )
    assert response.status_code == 409
    assert "register" in response.json()["allowed_actions"]


def test_a_department_called_out_confirms_its_arrival_once(cast) -> None:
    case, swj = accepted_flood(cast)
    street = make_user(Role.DEPARTMENT_HANDLER, department="JD", first_name="街道值班员")
    before = trail(case)

    response = client_for(street).post(
        arrival_url(case.number), {"note": "三防队伍 12 人到场"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["support_arrived_codes"] == ["JD"]
    assert response.json()["status"] == IncidentStatus.ACCEPTED
    assert trail(case) == before._replace(
        transitions=before.transitions + 1, audits=before.audits + 1, events=before.events + 1
    )
    row = IncidentSupport.objects.get(incident=case, department_code="JD")
    assert row.arrived_by == street and row.arrived_at is not None
    assert last_event(case).payload["incident"]["supports_arrived"] == ["JD"]
    # Once: the department is no longer offered the step (its reports still are), and a second
    # is refused — its 409 does not list the step as allowed, though 交警 still owes its own.
    detail = client_for(street).get(detail_url(case.number)).json()
    assert detail["allowed_actions"] == ["support_report"]
    again = client_for(street).post(arrival_url(case.number), {}, format="json")
    assert again.status_code == 409 and "本部门尚未确认到场" in again.json()["detail"]
    assert "confirm_arrival" not in again.json()["allowed_actions"]
    assert "support_report" in again.json()["allowed_actions"]
    assert trail(case) == before._replace(
        transitions=before.transitions + 1, audits=before.audits + 1, events=before.events + 1
    )
    # Another 409 on the case still lists 确认到场 for whoever has not said it (交警 owes it).
    police = make_user(Role.DEPARTMENT_HANDLER, department="JJ")
    late = client_for(police).post(f"{LIST}{case.number}/accept/", {}, format="json")
    assert late.status_code == 409 and "confirm_arrival" in late.json()["allowed_actions"]
    # Only a department called out says it is there: not the lead, not an admin for it.
    for user in (swj, cast.admin, cast.district):
        assert client_for(user).post(arrival_url(case.number), {}, format="json").status_code == 403
    # The command centre's page reads who is there and who is not.
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    called = page.split('data-testid="called-out"')[1].split("</section>")[0]
    assert "1/2 已到场" in called
    assert 'data-department="JD" class="is-arrived"' in called
    assert 'data-department="JJ" class="is-owed"' in called
    assert "街道值班员 确认" in called  # who said so, by name


def test_a_supporting_departments_queue_offers_its_arrival_then_shows_it(cast) -> None:
    case, _swj = accepted_flood(cast)
    police = make_user(Role.DEPARTMENT_HANDLER, department="JJ")
    page = client_for(police).get("/command/department/").content.decode()
    assert f'data-quick-action="confirm-arrival" data-number="{case.number}"' in page
    client_for(police).post(arrival_url(case.number), {}, format="json")
    # Its audit entry reads as the one change it is (no empty reason beside it).
    entry = AuditEntry.objects.filter(action="incidents.incident_confirm_arrival").get()
    assert audit_changes_text("incidents.incident", entry.before, entry.after) == (
        "已到场的协办部门：（空） → 交警"
    )
    page = client_for(police).get("/command/department/").content.decode()
    assert 'data-quick-action="confirm-arrival"' not in page
    assert 'class="flag flag-arrived"' in page


def chip_count(page: str, name: str) -> int:
    chip = page.split(f'data-testid="chip-{name}"')[1]
    return int(chip.split('class="chip-count">')[1].split("<")[0])


def test_a_departments_chips_count_its_own_cases_and_its_support_apart(cast) -> None:
    case = report(code=FLOOD, severity="III")
    client_for(cast.district).post(plans_url(case.number), {"plan": "FLOOD-III"}, format="json")
    own = report(code=FLOOD, severity="IV")
    client_for(cast.district).post(plans_url(own.number), {"plan": "FLOOD-IV"}, format="json")
    police = make_user(Role.DEPARTMENT_HANDLER, department="JJ")
    client = client_for(police)
    # 交警 is called out on both: nothing for it to accept, two it supports.
    page = client.get("/command/department/").content.decode()
    assert (chip_count(page, "dispatched"), chip_count(page, "support")) == (0, 2)
    lead = client_for(make_user(Role.DEPARTMENT_HANDLER, department="SWJ"))
    page = lead.get("/command/department/").content.decode()
    assert (chip_count(page, "dispatched"), chip_count(page, "support")) == (2, 0)
    # The 协办 chip's link keeps those cases; the stage chips' keep the department's own.
    page = client.get("/command/department/?share=support").content.decode()
    assert case.number in page and own.number in page
    assert 'data-testid="chip-support" aria-current="true"' in page
    page = client.get("/command/department/?share=lead").content.decode()
    assert case.number not in page
    wrong = client.get("/command/department/?share=boss")
    assert wrong.status_code == 400 and "承办或协办" in wrong.content.decode()


def test_a_supporting_departments_phone_lists_its_arrival_then_its_reports(cast) -> None:
    case, _swj = accepted_flood(cast)
    street = make_user(Role.DEPARTMENT_HANDLER, department="JD")
    phone = client_for(street)
    tasks = phone.get("/m/tasks/").content.decode()
    assert case.number in tasks
    task = phone.get(f"/m/tasks/{case.number}/").content.decode()
    assert 'data-action="confirm_arrival"' in task
    supports = task.split('data-testid="supports"')[1].split("</div>")[0]
    assert "街道、交警" in supports and "本部门协办" in supports
    phone.post(arrival_url(case.number), {}, format="json")
    # Arrived, the department stays on the case while it is in hand: its reports (协办反馈)
    # are made from the phone on the scene, so the case stays in 我的任务 with that step.
    tasks = phone.get("/m/tasks/").content.decode()
    row = tasks.split(f'data-number="{case.number}"')[1].split("</li>")[0]
    assert "协办反馈" in row and "确认到场" not in row
    task = phone.get(f"/m/tasks/{case.number}/").content.decode()
    assert 'data-action="confirm_arrival"' not in task
    assert 'data-action="support_report"' in task and "本部门协办，已到场" in task
    # 增派 is the console's (tick boxes of departments): the phone does not offer it.
    command = client_for(cast.district).get(f"/m/tasks/{case.number}/").content.decode()
    assert 'data-action="call_out"' not in command
