"""协办反馈 (support_report): a department called out on a case in hand says what it has done or
found, as often as it has news. The step, who may take it, the input it refuses (each naming
the field, nothing stored), a retried request, and where the report is read: the case page's
timeline, the audit page, the department's queue and the phone."""

from __future__ import annotations

import pytest
from django.utils import translation

from accounts.models import Role
from audit.models import AuditEntry
from command.audit_labels import audit_action_label, audit_changes_text
from incidents.models import IncidentStatus, IncidentTransition
from incidents.services import (
    IllegalTransition,
    IncidentInputError,
    incident_feed_back,
    incident_support_report,
)
from incidents.workflow import ActionNotPermitted
from tests.dispatch.test_response_plans import accepted_flood, arrival_url
from tests.incidents.api import LIST, client_for, detail_url
from tests.incidents.cases import event_scopes, last_event, make_user, trail

pytestmark = pytest.mark.usefixtures("reference_data")

FIRE_NOTE = "已疏散群众 12 人，水泵 2 台到位"


def report_url(number: str) -> str:
    return f"{LIST}{number}/support-report/"


def flood_with_fire_brigade(cast):
    """A Ⅲ flood (FLOOD-III: 应急, 街道, 交警, 消防, 供电 beside 水务), accepted by 水务, and a
    handler of 消防 (XF), one of the departments called out."""
    case, swj = accepted_flood(cast, severity="III", plan="FLOOD-III")
    fire = make_user(Role.DEPARTMENT_HANDLER, department="XF")
    return case, swj, fire


def test_a_department_called_out_reports_without_moving_the_case(cast) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    clock = (case.stage, case.stage_started_at, case.stage_deadline, case.stage_warn_at)
    before = trail(case)

    # Before it confirmed its arrival: a report is news, not refused for a tap forgotten.
    moved = incident_support_report(incident=case, by=fire, note=f"  {FIRE_NOTE}  ", ip="10.0.0.8")

    # The status, its clock and who has arrived are as they were; one timeline row, one audit
    # entry and one event, in one transaction.
    assert moved.status == IncidentStatus.ACCEPTED
    case.refresh_from_db()
    assert (case.stage, case.stage_started_at, case.stage_deadline, case.stage_warn_at) == clock
    assert case.support_arrived_codes == []
    assert trail(case) == before._replace(
        transitions=before.transitions + 1, audits=before.audits + 1, events=before.events + 1
    )
    step = IncidentTransition.objects.filter(incident=case).latest("id")
    assert (step.action, step.from_status, step.to_status) == (
        "support_report",
        IncidentStatus.ACCEPTED,
        IncidentStatus.ACCEPTED,
    )
    assert (step.actor, step.reason, step.data["department"]) == (fire, FIRE_NOTE, "XF")
    audit = AuditEntry.objects.filter(action="incidents.incident_support_report").get()
    assert audit.actor_id == fire.pk and audit.ip == "10.0.0.8"
    assert (audit.after["support_department"], audit.after["reason"]) == ("XF", FIRE_NOTE)
    # The event reaches every scope that sees the case, the departments called out among them;
    # it carries the step, never the note (free text stays out of events).
    event = last_event(case)
    assert event.type == "incidents.incident_status_changed"
    assert event.payload["transition"]["action"] == "support_report"
    assert FIRE_NOTE not in str(event.payload)
    assert {
        f"district:{case.district_code}",
        f"street:{case.street_code}",
        "department:SWJ",
        "department:XF",
        "department:JJ",
    } <= event_scopes(event)

    # Any number of times, and after its arrival as before.
    client_for(fire).post(arrival_url(case.number), {}, format="json")
    incident_support_report(incident=case, by=fire, note="积水已降至 10 厘米")
    steps = IncidentTransition.objects.filter(incident=case, action="support_report")
    assert [row.reason for row in steps.order_by("id")] == [FIRE_NOTE, "积水已降至 10 厘米"]


@pytest.mark.parametrize(
    ("note", "words"),
    [("", "不能为空"), ("   \n ", "不能为空"), ("很" * 2001, "最多 2000 个字符，现有 2001 个")],
)
def test_the_service_needs_a_note_of_at_most_2000_characters(cast, note: str, words: str) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    before = trail(case)
    with pytest.raises(IncidentInputError) as refused:
        incident_support_report(incident=case, by=fire, note=note)
    assert refused.value.field == "note" and words in refused.value.reason
    assert trail(case) == before


def test_only_a_department_called_out_reports(cast) -> None:
    case, swj, fire = flood_with_fire_brigade(cast)
    before = trail(case)
    # The lead department feeds back (反馈), the command centre commands, an admin may not
    # speak for a department (workflow.OWN_WORD), an auditor reads: each 403.
    for user in (swj, cast.district, cast.street, cast.admin, cast.auditor):
        refused = client_for(user).post(report_url(case.number), {"note": "已到"}, format="json")
        assert refused.status_code == 403, (user.role, refused.json())
        assert "协办部门" in refused.json()["detail"] or user.role == Role.AUDITOR
    # A department not called out does not even see the case.
    urban = make_user(Role.DEPARTMENT_HANDLER, department="CGJ")
    hidden = client_for(urban).post(report_url(case.number), {"note": "已到"}, format="json")
    assert hidden.status_code == 404
    with pytest.raises(ActionNotPermitted):
        incident_support_report(incident=case, by=cast.admin, note="代为反馈")
    assert trail(case) == before
    # Whom the page and the API offer it to: the departments called out only.
    for user, offered in ((fire, True), (swj, False), (cast.district, False), (cast.admin, False)):
        actions = client_for(user).get(detail_url(case.number)).json()["allowed_actions"]
        assert ("support_report" in actions) is offered, user.role


def test_a_report_on_a_case_no_longer_in_hand_is_409(cast) -> None:
    case, swj, fire = flood_with_fire_brigade(cast)
    incident_feed_back(incident=case, by=swj, feedback="积水已排除")
    before = trail(case)
    response = client_for(fire).post(report_url(case.number), {"note": "撤离"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["status"] == IncidentStatus.FED_BACK and "verify" in body["allowed_actions"]
    assert "support_report" not in body["allowed_actions"]
    assert trail(case) == before
    # A case no department is called out on has no 协办反馈 to take either.
    with pytest.raises(IllegalTransition):
        incident_support_report(incident=case, by=fire, note="撤离")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"note": ""}, "note", "不能为空"),
        ({"note": "  "}, "note", "不能为空"),
        ({}, "note", "该字段是必填项"),
        ({"note": "很" * 3000}, "note", "最多 2000 个字符，现有 3000 个"),
        ({"note": "已到\x00场"}, "note", ""),
        ({"note": 12}, "note", ""),
        ({"note": ["已到场"]}, "note", ""),
        ({"note": None}, "note", ""),
        ({"note": "已到场", "status": "closed"}, "status", "未知字段"),
        (["已到场"], "non_field_errors", ""),
    ],
)
def test_bad_reports_are_refused_naming_the_field_and_nothing_is_stored(
    cast, body, field: str, words: str
) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    before = trail(case)
    response = client_for(fire).post(report_url(case.number), body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert words in str(response.json()[field])
    assert trail(case) == before


def test_the_same_refusal_reads_in_english_when_asked(cast) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    chinese = client_for(fire).post(report_url(case.number), {"note": "很" * 3000}, format="json")
    assert chinese.json()["note"] == ["最多 2000 个字符，现有 3000 个。"]
    with translation.override("en"):
        response = client_for(fire).post(
            report_url(case.number),
            {"note": "很" * 3000},
            format="json",
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 400
    assert "2000" in response.json()["note"][0] and "3000" in response.json()["note"][0]
    assert "最多" not in response.json()["note"][0]


def test_a_retried_report_is_made_once(cast) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    client, url = client_for(fire), report_url(case.number)
    first = client.post(url, {"note": FIRE_NOTE}, format="json", HTTP_IDEMPOTENCY_KEY="fire-1")
    again = client.post(url, {"note": FIRE_NOTE}, format="json", HTTP_IDEMPOTENCY_KEY="fire-1")
    other = client.post(url, {"note": "另一条"}, format="json", HTTP_IDEMPOTENCY_KEY="fire-1")

    assert first.status_code == again.status_code == 200, first.json()
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert IncidentTransition.objects.filter(incident=case, action="support_report").count() == 1
    # A second report is a new request, with its own key.
    more = client.post(url, {"note": "另一条"}, format="json", HTTP_IDEMPOTENCY_KEY="fire-2")
    assert more.status_code == 200
    assert IncidentTransition.objects.filter(incident=case, action="support_report").count() == 2


def timeline_row(page: str, label: str) -> str:
    return page.split(f"<strong>{label}</strong>")[-1].split("</li>")[0]


def test_the_case_page_and_the_audit_page_read_the_report(cast) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    client_for(fire).post(report_url(case.number), {"note": FIRE_NOTE}, format="json")

    # The command centre's case page: the step, the department by its short name, the note;
    # no new time limit (the clock is kept).
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    row = timeline_row(page, "协办反馈")
    assert FIRE_NOTE in row and "部门：消防" in row and "新时限" not in row

    # The audit page names the action and the department in words.
    entry = AuditEntry.objects.filter(action="incidents.incident_support_report").get()
    assert audit_action_label(entry.action) == "协办反馈"
    assert audit_changes_text("incidents.incident", entry.before, entry.after).split("\n") == [
        "反馈部门：— → 龙华区消防救援大队",
        f"理由：— → {FIRE_NOTE}",
    ]
    audit = client_for(cast.admin).get("/command/audit/").content.decode()
    assert "协办反馈" in audit

    # In English: the step's name and the department's (the language the request activates
    # is put back afterwards).
    with translation.override("en"):
        english = client_for(cast.district).get(
            f"/command/cases/{case.number}/", HTTP_ACCEPT_LANGUAGE="en"
        )
        row = timeline_row(english.content.decode(), "Support report")
        assert FIRE_NOTE in row and "Department: Fire and Rescue" in row
        assert audit_action_label(entry.action) == "Support report"
        words = audit_changes_text("incidents.incident", entry.before, entry.after)
        assert words.split("\n")[0] == (
            "Reporting department: — → Longhua District Fire and Rescue Brigade"
        )


def called_out_row(page: str, code: str) -> str:
    return page.split(f'<li data-department="{code}"')[1].split("</li>")[0]


def test_the_called_out_list_shows_each_departments_latest_report(cast) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    power = make_user(Role.DEPARTMENT_HANDLER, department="GDJ")
    incident_support_report(incident=case, by=fire, note="已到达，正在侦察")
    incident_support_report(incident=case, by=power, note="已切断地下配电房电源")
    incident_support_report(incident=case, by=fire, note=FIRE_NOTE)

    # The API's list: the latest report of each department, with how many it made; None for a
    # department that has not reported.
    answer = client_for(cast.district).get(f"{detail_url(case.number)}plans/").json()
    reports = {row["code"]: row["last_report"] for row in answer["called_out"]}
    assert (reports["XF"]["note"], reports["XF"]["count"]) == (FIRE_NOTE, 2)
    assert (reports["GDJ"]["note"], reports["GDJ"]["count"]) == ("已切断地下配电房电源", 1)
    assert reports["JJ"] is None

    # The case page's 协办 list, under each department: its latest report, not an earlier one.
    page = client_for(cast.district).get(f"/command/cases/{case.number}/").content.decode()
    fire_row = called_out_row(page, "XF")
    assert FIRE_NOTE in fire_row and "已到达，正在侦察" not in fire_row and "共 2 次" in fire_row
    power_row = called_out_row(page, "GDJ")
    assert "已切断地下配电房电源" in power_row and "共" not in power_row
    assert "called-out-report" not in called_out_row(page, "JJ")


def test_the_department_queue_offers_the_report_on_its_support_rows_only(cast) -> None:
    case, swj, fire = flood_with_fire_brigade(cast)
    page = client_for(fire).get("/command/department/").content.decode()
    assert f'data-row-form="support_report" data-number="{case.number}"' in page
    # The form the row opens is on the page once, outside the queue.
    assert page.count('data-testid="row-form-support-report"') == 1
    form = page.split('data-testid="row-form-support-report"')[1].split("</dialog>")[0]
    assert 'name="note"' in form and 'aria-required="true"' in form
    # The department handling it feeds back instead: no 协办反馈 on its rows.
    lead = client_for(swj).get("/command/department/").content.decode()
    assert 'data-row-form="support_report"' not in lead.split('id="queue"')[1].split("</table>")[0]
    # Once the case has left the departments' hands, the row offers nothing more.
    incident_feed_back(incident=case, by=swj, feedback="积水已排除")
    page = client_for(fire).get("/command/department/?status=all").content.decode()
    assert f'data-row-form="support_report" data-number="{case.number}"' not in page


def test_the_phone_offers_the_report_and_names_the_department_in_the_timeline(cast) -> None:
    case, _swj, fire = flood_with_fire_brigade(cast)
    phone = client_for(fire)
    task = phone.get(f"/m/tasks/{case.number}/").content.decode()
    form = task.split('<form class="m-action-form" data-action="support_report"')[1]
    form = form.split("</form>")[0]
    assert f'data-url="{report_url(case.number)}"' in form
    assert 'name="note"' in form and "required" in form
    phone.post(report_url(case.number), {"note": FIRE_NOTE}, format="json")
    task = phone.get(f"/m/tasks/{case.number}/").content.decode()
    timeline = task.split('class="m-timeline"')[1].split("</ol>")[0]
    report = timeline.split("<strong>协办反馈</strong>")[1].split("</li>")[0]
    assert "· 消防" in report and FIRE_NOTE in report
