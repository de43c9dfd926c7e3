"""The closed loop through the services: every role's part, every refusal, and the record each
step leaves (one timeline row, one audit entry, one outbox event with the right scopes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.selectors import chain_verify
from incidents import calendar
from incidents.models import (
    Incident,
    IncidentStatus,
    IncidentTransition,
    OwnerLevel,
    SendBackReason,
    Stage,
)
from incidents.selectors import incident_actions_for
from incidents.services import (
    EXTENSION_MAX_DAYS,
    IncidentInputError,
    incident_accept,
    incident_approve_extension,
    incident_close,
    incident_dispatch,
    incident_evaluate,
    incident_feed_back,
    incident_handle,
    incident_merge,
    incident_park,
    incident_register,
    incident_reject,
    incident_reopen,
    incident_request_extension,
    incident_send_back,
    incident_unmerge,
    incident_unpark,
    incident_verify,
)
from incidents.workflow import ActionNotPermitted, IllegalTransition
from tests.incidents.cases import (
    COMMUNITY,
    GRID,
    OTHER_STREET_GRID,
    STREET,
    Cast,
    category,
    event_scopes,
    last_audit,
    last_event,
    report,
    trail,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

CASE_SCOPES = {
    "district:440309",
    f"street:{STREET}",
    f"community:{COMMUNITY}",
    f"grid:{GRID}",
}


def act(service: Callable[..., Incident], incident: Incident, **kwargs: Any) -> Incident:
    """Run one workflow service and check the record it leaves: exactly one more timeline row,
    audit entry (named after the action) and outbox event (carrying the new state)."""
    before = trail(incident)
    moved = service(incident=incident, **kwargs)
    after = trail(moved)
    assert after == (before.transitions + 1, before.audits + 1, before.events + 1)
    step = moved.transitions.order_by("-id").first()
    assert step is not None and step.to_status == moved.status
    entry = last_audit(moved)
    assert entry.action == f"incidents.incident_{step.action}"
    assert entry.after["status"] == moved.status
    assert entry.actor_id == kwargs["by"].pk
    event = last_event(moved)
    assert event.payload["incident"]["status"] == moved.status
    assert event.payload["transition"]["action"] == step.action
    stored = Incident.objects.get(pk=moved.pk)
    assert stored.status == moved.status
    return moved


def refused(
    error: type[Exception], service: Callable[..., Incident], incident: Incident, **kwargs: Any
) -> Exception:
    """Run a service that must refuse: the case, its timeline, audit and events are untouched."""
    before_trail = trail(incident)
    before = Incident.objects.get(pk=incident.pk)
    with pytest.raises(error) as caught:
        service(incident=incident, **kwargs)
    after = Incident.objects.get(pk=incident.pk)
    assert trail(incident) == before_trail
    assert (after.status, after.updated_at) == (before.status, before.updated_at)
    return caught.value


# --- the whole loop ---------------------------------------------------------------------------


@pytest.mark.parametrize("commander", ["community", "street", "district", "admin"])
def test_the_whole_loop_with_each_commanding_role(cast: Cast, commander: str):
    boss = getattr(cast, commander)
    case = report(reporter=cast.grid_worker)

    case = act(incident_register, case, by=boss)
    assert case.status == IncidentStatus.REGISTERED and case.stage == Stage.DISPATCH
    assert event_scopes(last_event(case)) == CASE_SCOPES | {f"user:{cast.grid_worker.pk}"}

    case = act(incident_dispatch, case, by=boss, department_code="CGJ")
    assert (case.status, case.assigned_department_code) == (IncidentStatus.DISPATCHED, "CGJ")
    assert case.stage == Stage.ACCEPT
    assert event_scopes(last_event(case)) == CASE_SCOPES | {
        "department:CGJ",
        f"user:{cast.grid_worker.pk}",
    }

    case = act(incident_accept, case, by=cast.handler)
    assert case.status == IncidentStatus.ACCEPTED and case.stage == Stage.HANDLE
    assert event_scopes(last_event(case)) == CASE_SCOPES | {"department:CGJ"}
    handle_clock = (case.stage_started_at, case.stage_deadline)

    case = act(incident_handle, case, by=cast.handler)
    assert case.status == IncidentStatus.HANDLING
    assert (case.stage_started_at, case.stage_deadline) == handle_clock  # the same clock runs

    case = act(incident_feed_back, case, by=cast.handler, feedback="已清运")
    assert case.status == IncidentStatus.FED_BACK and case.stage == Stage.VERIFY
    assert case.feedback == "已清运" and case.handled_by == cast.handler

    case = act(incident_verify, case, by=cast.grid_worker_2, passed=True)
    assert case.status == IncidentStatus.VERIFIED and case.stage == ""
    assert case.stage_deadline is None

    case = act(incident_close, case, by=boss)
    assert case.status == IncidentStatus.CLOSED and case.closed_at is not None
    assert f"user:{cast.grid_worker.pk}" in event_scopes(last_event(case))

    case = act(incident_evaluate, case, by=cast.grid_worker, satisfaction=5)
    assert (case.status, case.satisfaction) == (IncidentStatus.EVALUATED, 5)

    actions = list(case.transitions.values_list("action", flat=True))
    assert actions == [
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
    assert chain_verify().ok


def test_a_case_dispatched_to_a_grid_worker_is_theirs_to_handle(cast: Cast):
    case = incident_register(incident=report(), by=cast.community)
    case = act(incident_dispatch, case, by=cast.community, assignee=cast.grid_worker)
    assert case.assignee == cast.grid_worker and case.assigned_department_code == ""
    assert f"user:{cast.grid_worker.pk}" in event_scopes(last_event(case))

    case = act(incident_accept, case, by=cast.grid_worker)
    case = act(incident_feed_back, case, by=cast.grid_worker, feedback="已劝离")
    # …and somebody else verifies it.
    refused(ActionNotPermitted, incident_verify, case, by=cast.grid_worker, passed=True)
    case = act(incident_verify, case, by=cast.community, passed=True)
    assert case.status == IncidentStatus.VERIFIED


def test_dispatching_to_a_department_handler_names_their_department(cast: Cast):
    case = incident_register(incident=report(), by=cast.street)
    case = incident_dispatch(incident=case, by=cast.street, assignee=cast.handler)
    assert case.assigned_department_code == "CGJ" and case.assignee == cast.handler


def test_a_dispatch_needs_a_department_or_an_assignee_who_can_take_it(cast: Cast):
    case = incident_register(incident=report(), by=cast.street)
    assert refused(IncidentInputError, incident_dispatch, case, by=cast.street).field == (
        "department_code"
    )
    for bad in ("C G J", "x" * 33, "CGX", "cgj"):
        error = refused(
            IncidentInputError, incident_dispatch, case, by=cast.street, department_code=bad
        )
        assert error.field == "department_code"
    # A code no department answers to (codes are upper case) is named, with the ones that exist.
    assert error.reason.startswith("“cgj”不是已知的部门代码；已知：CGJ, ZJJ, SWJ")
    for wrong in (cast.auditor, cast.other_street, cast.handler):
        error = refused(
            IncidentInputError,
            incident_dispatch,
            case,
            by=cast.street,
            department_code="SWJ",
            assignee=wrong,
        )
        assert error.field == "assignee"


# --- illegal transitions and permissions ------------------------------------------------------


def test_an_illegal_transition_names_the_allowed_actions(cast: Cast):
    case = report()
    error = refused(IllegalTransition, incident_accept, case, by=cast.handler)
    assert error.allowed == ["register", "reject", "merge"]
    assert error.status == "reported" and error.action == "accept"

    case = incident_register(incident=case, by=cast.community)
    error = refused(IllegalTransition, incident_close, case, by=cast.community)
    assert error.allowed == ["merge", "dispatch", "park"]


def test_a_second_register_of_the_same_case_is_illegal(cast: Cast):
    case = report()
    incident_register(incident=case, by=cast.community)
    # The caller's instance is stale (it still says "reported"): the service reads the row.
    refused(IllegalTransition, incident_register, case, by=cast.street)


def test_reject_needs_a_reason(cast: Cast):
    case = report(reporter=cast.grid_worker)
    for reason in ("", "   "):
        error = refused(IncidentInputError, incident_reject, case, by=cast.community, reason=reason)
        assert error.field == "reason"

    case = act(
        incident_reject, case, by=cast.community, reason="属私人物业范围，不属于城市管理事项"
    )
    assert case.status == IncidentStatus.REJECTED and case.stage == ""
    assert case.transitions.last().reason == "属私人物业范围，不属于城市管理事项"
    assert f"user:{cast.grid_worker.pk}" in event_scopes(last_event(case))  # the reporter hears
    assert incident_actions_for(cast.district, case) == []


def test_operators_act_only_in_their_place(cast: Cast):
    case = report()
    for outsider in (cast.other_street, cast.other_community, cast.handler, cast.grid_worker):
        refused(ActionNotPermitted, incident_register, case, by=outsider)
    far = report(grid=OTHER_STREET_GRID)
    refused(ActionNotPermitted, incident_register, far, by=cast.street)
    refused(ActionNotPermitted, incident_register, far, by=cast.community)


@pytest.mark.parametrize("who", ["auditor", "no_role"])
def test_auditors_and_users_without_a_role_never_act(cast: Cast, who: str):
    case = report()
    error = refused(ActionNotPermitted, incident_register, case, by=getattr(cast, who))
    assert error.action == "register"
    assert incident_actions_for(getattr(cast, who), case) == []


def test_an_inactive_operator_cannot_act(cast: Cast):
    cast.street.is_active = False
    cast.street.save()
    refused(ActionNotPermitted, incident_register, report(), by=cast.street)


def test_only_the_assigned_department_accepts(cast: Cast):
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    for other in (cast.other_department, cast.street, cast.community, cast.grid_worker):
        refused(ActionNotPermitted, incident_accept, case, by=other)
    act(incident_accept, case, by=cast.handler_2)  # any handler of the department


def test_what_each_user_may_do_now(cast: Cast):
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    assert incident_actions_for(cast.handler, case) == ["accept", "send_back"]
    assert incident_actions_for(cast.street, case) == ["call_out", "park"]
    assert incident_actions_for(cast.other_department, case) == []
    assert incident_actions_for(cast.admin, case) == ["accept", "send_back", "call_out", "park"]


# --- send-back and arbitration -----------------------------------------------------------------


def test_send_back_needs_a_known_reason_code_and_text_for_other(cast: Cast):
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    error = refused(
        IncidentInputError, incident_send_back, case, by=cast.handler, reason_code="lazy"
    )
    assert error.field == "reason_code"
    error = refused(
        IncidentInputError, incident_send_back, case, by=cast.handler, reason_code="other"
    )
    assert error.field == "reason"

    case = act(incident_send_back, case, by=cast.handler, reason_code=SendBackReason.WRONG_LOCATION)
    assert case.status == IncidentStatus.RETURNED and case.send_backs == 1
    assert case.assigned_department_code == "" and case.stage == Stage.DISPATCH
    step = case.transitions.last()
    assert (step.reason_code, step.data["department"]) == ("wrong_location", "CGJ")
    # The department that returned it hears about it, though it is no longer assigned.
    assert "department:CGJ" in event_scopes(last_event(case))


def test_the_third_send_back_sends_the_case_to_the_district_for_arbitration(cast: Cast):
    case = incident_register(incident=report(), by=cast.community)
    departments = [
        (cast.handler, "CGJ"),
        (cast.other_department, "SWJ"),
        (cast.handler_2, "CGJ"),
    ]
    for number, (handler, code) in enumerate(departments, start=1):
        case = act(incident_dispatch, case, by=cast.street, department_code=code)
        case = act(
            incident_send_back,
            case,
            by=handler,
            reason_code=SendBackReason.NOT_OUR_JURISDICTION,
        )
        assert case.send_backs == number
        expected = OwnerLevel.DISTRICT if number == 3 else OwnerLevel.COMMUNITY
        assert case.owner_level == expected
    assert case.owner_code == "440309"
    assert case.transitions.last().data["arbitration"] is True
    assert last_event(case).payload["incident"]["owner"] == {"level": "district", "code": "440309"}

    # The district decides now: the street and the community no longer may.
    refused(ActionNotPermitted, incident_dispatch, case, by=cast.street, department_code="JD")
    refused(ActionNotPermitted, incident_dispatch, case, by=cast.community, department_code="JD")
    case = act(incident_dispatch, case, by=cast.district, department_code="JD")
    assert case.status == IncidentStatus.DISPATCHED


# --- verification and rework ------------------------------------------------------------------


def fed_back(cast: Cast, case: Incident | None = None) -> Incident:
    case = incident_register(incident=case or report(reporter=cast.grid_worker), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    case = incident_accept(incident=case, by=cast.handler)
    return incident_feed_back(incident=case, by=cast.handler, feedback="已处理")


def test_the_handler_never_verifies_their_own_work(cast: Cast):
    case = fed_back(cast)
    # A handler is no verifier by role; an admin who handled the case is refused all the same.
    refused(ActionNotPermitted, incident_verify, case, by=cast.handler, passed=True)
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    case = incident_accept(incident=case, by=cast.admin)
    case = incident_feed_back(incident=case, by=cast.handler, feedback="已处理")
    for passed, note in ((True, ""), (False, "没修好")):
        error = refused(
            ActionNotPermitted, incident_verify, case, by=cast.admin, passed=passed, note=note
        )
        assert "核查" in error.reason
    offered = incident_actions_for(cast.admin, case)
    assert "verify" not in offered and "rework" not in offered
    assert {"verify", "rework"} <= set(incident_actions_for(cast.grid_worker, case))
    act(incident_verify, case, by=cast.grid_worker, passed=True)


def test_only_grid_workers_of_the_cell_and_its_centres_verify(cast: Cast):
    case = fed_back(cast)
    for outsider in (cast.other_grid_worker, cast.other_street, cast.other_department):
        refused(ActionNotPermitted, incident_verify, case, by=outsider, passed=True)
    act(incident_verify, case, by=cast.grid_worker_2, passed=True)


def test_a_failed_verification_is_rework_and_counted(cast: Cast):
    case = fed_back(cast)
    error = refused(IncidentInputError, incident_verify, case, by=cast.grid_worker, passed=False)
    assert error.field == "note"

    case = act(incident_verify, case, by=cast.grid_worker, passed=False, note="垃圾仍未清走")
    assert case.status == IncidentStatus.DISPATCHED and case.reworks == 1
    assert case.assigned_department_code == "CGJ" and case.stage == Stage.ACCEPT
    step = case.transitions.last()
    assert (step.action, step.reason) == ("rework", "垃圾仍未清走")
    assert last_audit(case).action == "incidents.incident_rework"

    case = incident_accept(incident=case, by=cast.handler)
    case = incident_feed_back(incident=case, by=cast.handler, feedback="已清走")
    case = act(incident_verify, case, by=cast.grid_worker, passed=False, note="还有")
    assert case.reworks == 2


# --- evaluation, reopening ----------------------------------------------------------------------


def closed(cast: Cast) -> Incident:
    case = incident_verify(incident=fed_back(cast), by=cast.grid_worker_2, passed=True)
    return incident_close(incident=case, by=cast.community)


@pytest.mark.parametrize("score", [0, 6, -1, True, "5", 4.5, None])
def test_satisfaction_is_a_whole_number_from_1_to_5(cast: Cast, score: Any):
    case = closed(cast)
    error = refused(
        IncidentInputError, incident_evaluate, case, by=cast.grid_worker, satisfaction=score
    )
    assert error.field == "satisfaction"


def test_the_reporter_or_the_centre_evaluates(cast: Cast):
    case = closed(cast)
    refused(ActionNotPermitted, incident_evaluate, case, by=cast.grid_worker_2, satisfaction=3)
    refused(ActionNotPermitted, incident_evaluate, case, by=cast.handler, satisfaction=5)
    case = act(incident_evaluate, case, by=cast.community, satisfaction=1, comment="回访：不满意")
    assert case.satisfaction == 1


def test_a_closed_case_reopens_registered_with_its_evaluation_dropped(cast: Cast):
    case = incident_evaluate(incident=closed(cast), by=cast.grid_worker, satisfaction=2)
    assert refused(IncidentInputError, incident_reopen, case, by=cast.street, reason="").field == (
        "reason"
    )

    case = act(incident_reopen, case, by=cast.street, reason="市民反映问题复发")
    assert case.status == IncidentStatus.REGISTERED and case.stage == Stage.DISPATCH
    assert case.closed_at is None and case.satisfaction is None
    assert case.assigned_department_code == "" and case.assignee is None
    case = act(incident_dispatch, case, by=cast.street, department_code="CGJ")


# --- extension --------------------------------------------------------------------------------


def accepted(cast: Cast) -> Incident:
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    return incident_accept(incident=case, by=cast.handler)


def test_an_extension_is_requested_then_approved_and_moves_the_deadline(cast: Cast):
    case = accepted(cast)
    started, deadline = case.stage_started_at, case.stage_deadline
    until = deadline + timedelta(days=3)

    case = act(incident_request_extension, case, by=cast.handler, until=until, reason="需采购配件")
    assert case.status == IncidentStatus.ACCEPTED and case.extension_requested_until == until
    assert case.stage_deadline == deadline  # not yet
    assert last_event(case).type == "incidents.incident_extension_requested"
    refused(
        IllegalTransition,
        incident_request_extension,
        case,
        by=cast.handler,
        until=until,
        reason="again",
    )
    refused(ActionNotPermitted, incident_approve_extension, case, by=cast.handler)

    case = act(incident_approve_extension, case, by=cast.community)
    assert case.stage_deadline == until and case.stage_started_at == started
    assert case.extension_requested_until is None and case.stage_warned is False
    event = last_event(case)
    assert event.type == "incidents.incident_extension_decided" and event.payload["approved"]
    # A handle that follows keeps the extended clock.
    case = incident_handle(incident=case, by=cast.handler)
    assert case.stage_deadline == until


def test_a_declined_extension_keeps_the_deadline(cast: Cast):
    case = accepted(cast)
    deadline = case.stage_deadline
    case = incident_request_extension(
        incident=case, by=cast.handler, until=deadline + timedelta(days=1), reason="下雨"
    )
    # A decline says why (the department that asked is told): without a reason it is refused.
    for blank in ("", "   "):
        error = refused(
            IncidentInputError,
            incident_approve_extension,
            case,
            by=cast.street,
            approved=False,
            note=blank,
        )
        assert (error.field, error.reason) == ("note", "不能为空。")
    assert Incident.objects.get(pk=case.pk).extension_requested_until is not None
    case = act(incident_approve_extension, case, by=cast.street, approved=False, note="不予延期")
    assert case.stage_deadline == deadline and case.extension_requested_until is None
    assert case.transitions.last().reason == "不予延期"
    assert case.transitions.last().action == "decline_extension"
    assert last_event(case).payload["approved"] is False


def test_whoever_asked_for_more_time_never_decides_on_it(cast: Cast):
    """延期由他人审批: community staff who took a case themselves, and asked to extend it, may
    neither approve nor decline their own request, and are not offered to; anyone else of the
    owning centre decides."""
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(
        incident=case, by=cast.community, department_code="JD", assignee=cast.community
    )
    case = incident_accept(incident=case, by=cast.community)
    until = case.stage_deadline + timedelta(days=55)
    case = incident_request_extension(incident=case, by=cast.community, until=until, reason="x")

    for approved in (True, False):
        error = refused(
            ActionNotPermitted,
            incident_approve_extension,
            case,
            by=cast.community,
            approved=approved,
            note="自己审批",
        )
        assert "延期由他人审批" in error.reason
    offered = incident_actions_for(cast.community, case)
    assert "approve_extension" not in offered and "decline_extension" not in offered
    assert "approve_extension" in incident_actions_for(cast.street, case)

    case = act(incident_approve_extension, case, by=cast.street)
    assert case.stage_deadline == until
    # Once decided, the rule is spent: the next request is someone else's to decide again.
    assert "request_extension" in incident_actions_for(cast.community, case)


def test_an_extension_must_reach_past_the_current_deadline(cast: Cast):
    case = accepted(cast)
    # A mistyped year is refused too (at most EXTENSION_MAX_DAYS from now).
    too_far = timezone.now() + timedelta(days=EXTENSION_MAX_DAYS + 1)
    for until in (case.stage_deadline, timezone.now() - timedelta(hours=1), too_far):
        error = refused(
            IncidentInputError,
            incident_request_extension,
            case,
            by=cast.handler,
            until=until,
            reason="x",
        )
        assert error.field == "until"


def test_approving_without_a_request_is_illegal(cast: Cast):
    error = refused(IllegalTransition, incident_approve_extension, accepted(cast), by=cast.street)
    assert "approve_extension" not in error.allowed and "request_extension" in error.allowed


# --- parking ----------------------------------------------------------------------------------


def test_park_needs_a_reason_and_an_operator_of_the_owning_level(cast: Cast):
    case = accepted(cast)
    refused(IncidentInputError, incident_park, case, by=cast.community, reason=" ")
    refused(ActionNotPermitted, incident_park, case, by=cast.handler, reason="需立项")

    case = act(incident_park, case, by=cast.community, reason="需纳入改造项目")
    assert case.status == IncidentStatus.PARKED and case.stage == "" and case.is_open

    case = act(incident_unpark, case, by=cast.street)
    assert case.status == IncidentStatus.ACCEPTED and case.stage == Stage.HANDLE
    limit = category().limit_for(Stage.HANDLE)
    assert case.stage_deadline == calendar.deadline(case.stage_started_at, limit.amount, limit.unit)


def test_a_case_owned_by_the_district_is_parked_by_the_district_only(cast: Cast):
    case = incident_register(incident=report(), by=cast.community)
    for handler, code in [(cast.handler, "CGJ"), (cast.other_department, "SWJ")] * 2:
        if case.owner_level == OwnerLevel.DISTRICT:
            break
        case = incident_dispatch(incident=case, by=cast.district, department_code=code)
        case = incident_send_back(
            incident=case, by=handler, reason_code=SendBackReason.INSUFFICIENT_INFO
        )
    assert case.owner_level == OwnerLevel.DISTRICT
    for below in (cast.community, cast.street):
        refused(ActionNotPermitted, incident_park, case, by=below, reason="x")
    act(incident_park, case, by=cast.district, reason="待区里协调")


# --- merging ----------------------------------------------------------------------------------


def test_a_duplicate_is_merged_into_an_open_case_and_unmerged(cast: Cast):
    primary = incident_register(incident=report(), by=cast.community)
    duplicate = report(reporter=cast.grid_worker)

    duplicate = act(incident_merge, duplicate, into=primary, by=cast.community, reason="同一处垃圾")
    assert duplicate.status == IncidentStatus.MERGED and duplicate.merged_into == primary
    assert duplicate.stage == "" and not duplicate.is_open
    assert list(primary.duplicates.all()) == [duplicate]
    event = last_event(duplicate)
    assert event.payload["incident"]["merged_into"] == primary.number
    assert f"user:{cast.grid_worker.pk}" in event_scopes(event)  # the reporter is told

    duplicate = act(incident_unmerge, duplicate, by=cast.street, reason="不是同一处")
    assert duplicate.status == IncidentStatus.REPORTED and duplicate.merged_into is None
    assert duplicate.stage == Stage.REGISTER


def test_merging_needs_an_open_visible_other_case(cast: Cast):
    case = report()
    refused(IncidentInputError, incident_merge, case, into=case, by=cast.community)
    done = incident_reject(incident=report(), by=cast.community, reason="无效")
    error = refused(IncidentInputError, incident_merge, case, into=done, by=cast.community)
    assert error.field == "into"
    elsewhere = report(grid=OTHER_STREET_GRID)
    refused(ActionNotPermitted, incident_merge, case, into=elsewhere, by=cast.street)
    act(incident_merge, case, into=elsewhere, by=cast.district)


# --- the database keeps the invariants too -------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "lost"},
        {"satisfaction": 6, "status": "evaluated", "closed_at": timezone.now()},
        {"satisfaction": 3},  # not evaluated
        {"status": "merged"},  # merged into nothing
        {"status": "closed"},  # closed without a closing time
        {"stage": "", "stage_started_at": None},  # a deadline without its stage
        {"owner_level": "province"},
    ],
)
def test_the_database_refuses_an_inconsistent_case(changes: dict[str, Any]):
    case = report()
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.filter(pk=case.pk).update(**changes)


def test_counters_cannot_go_negative():
    case = report()
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.filter(pk=case.pk).update(send_backs=-1)


def test_the_timeline_reads_in_order(cast: Cast):
    case = fed_back(cast)
    steps = IncidentTransition.objects.filter(incident=case).order_by("id")
    assert [(s.from_status, s.to_status) for s in steps] == [
        ("", "reported"),
        ("reported", "registered"),
        ("registered", "dispatched"),
        ("dispatched", "accepted"),
        ("accepted", "fed_back"),
    ]


def test_the_task_list_asks_the_four_eyes_rules_once_for_all_its_cases(cast: Cast):
    """The phone's 我的任务 weighs every listed case against the four-eyes rules in one go: the
    number of queries does not grow with the cases waiting for verification; and a pending
    extension its requester asked for is no task of theirs to decide."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents.selectors import incidents_needing_action_by

    fed_back(cast)
    with CaptureQueriesContext(connection) as one:
        assert len(incidents_needing_action_by(cast.grid_worker)) == 1
    for _ in range(4):
        fed_back(cast)
    with CaptureQueriesContext(connection) as five:
        tasks = incidents_needing_action_by(cast.grid_worker)
    assert len(tasks) == 5 and all({"verify", "rework"} <= set(a) for _, a in tasks)
    assert len(five.captured_queries) == len(one.captured_queries)

    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(
        incident=case, by=cast.community, department_code="JD", assignee=cast.community
    )
    case = incident_accept(incident=case, by=cast.community)
    incident_request_extension(
        incident=case, by=cast.community, until=case.stage_deadline + timedelta(days=1), reason="x"
    )
    mine = dict(incidents_needing_action_by(cast.community))
    assert "approve_extension" not in mine.get(case, [])
    assert "approve_extension" in dict(incidents_needing_action_by(cast.street))[case]
