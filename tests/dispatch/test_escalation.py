"""The escalation loop (预警 and 督办): the 80 % warning in the limit's own time, a missed limit
raising the owner one tier, exactly once per breach, re-armed by a new clock or an approved
extension; its records (timeline, audit, events with their scopes); the worker command.

Time is controlled by passing `now` to the services; clocks that must start on a given day are
set with tests/dispatch/clocks.restart_clock. Concurrent workers: test_escalation_concurrency.py.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from audit.selectors import chain_verify
from incidents import calendar, workflow
from incidents.models import Incident, IncidentStatus, OwnerLevel, Stage, Supervision
from incidents.selectors import incident_actions_for
from incidents.services import (
    incident_accept,
    incident_approve_extension,
    incident_dispatch,
    incident_feed_back,
    incident_merge,
    incident_park,
    incident_register,
    incident_reject,
    incident_request_extension,
    incident_unpark,
    incident_verify,
)
from incidents.services.escalation import (
    NotDue,
    escalation_run_once,
    incident_escalate,
    incident_warn,
)
from incidents.workflow import ActionNotPermitted
from tests.dispatch.clocks import (
    ESCALATED,
    WARNED,
    audits_of,
    events_of,
    fresh,
    restart_clock,
    steps,
    supervisions,
)
from tests.incidents.cases import (
    COMMUNITY,
    DISTRICT,
    GRID,
    STREET,
    Cast,
    event_scopes,
    report,
)
from tests.incidents.clock import at

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

SECOND = timedelta(seconds=1)


def run(now: datetime, batch: int = 100) -> tuple[int, int]:
    """One pass of the worker at `now`: (escalated, warned); nothing may fail or be skipped."""
    done = escalation_run_once(now=now, batch=batch)
    assert done.failed == 0 and done.skipped == 0, done
    return done.escalated, done.warned


def accepted(cast: Cast) -> Incident:
    """A rubbish case (06010: handle limit 4 working hours) accepted by 城管's handler."""
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(
        incident=case, by=cast.community, department_code="CGJ", assignee=cast.handler
    )
    return incident_accept(incident=case, by=cast.handler)


# --- the warning moment on every clock -----------------------------------------------------------


def test_every_new_clock_carries_its_80_percent_moment(cast: Cast):
    case = report()
    for step in (
        None,
        lambda c: incident_register(incident=c, by=cast.community),
        lambda c: incident_dispatch(incident=c, by=cast.community, department_code="CGJ"),
        lambda c: incident_accept(incident=c, by=cast.handler),
    ):
        if step is not None:
            case = step(case)
        limit = case.category.limit_for(case.stage)
        assert case.stage_warn_at == calendar.warning_at(
            case.stage_started_at, case.stage_deadline, unit=limit.unit
        )
        assert case.stage_started_at < case.stage_warn_at < case.stage_deadline
        assert calendar.elapsed_fraction(
            case.stage_started_at, case.stage_deadline, case.stage_warn_at, unit=limit.unit
        ) == pytest.approx(0.8, abs=1e-6)
        assert fresh(case).stage_warn_at == case.stage_warn_at  # stored


@pytest.mark.parametrize(
    ("start", "not_yet", "warn_at", "deadline"),
    [
        # Friday 16:00 + 4 working hours: 2 h on Friday, 2 h on Monday → due Monday 10:30;
        # 80 % = 3 h 12 min → Monday 09:42. The weekend brings it no closer.
        (
            at(2026, 11, 27, 16, 0),
            [at(2026, 11, 27, 17, 59), at(2026, 11, 28, 12, 0), at(2026, 11, 30, 9, 41)],
            at(2026, 11, 30, 9, 42),
            at(2026, 11, 30, 10, 30),
        ),
        # The make-up Saturday before Spring Festival 2026, 17:00: 1 h that day, then 2/15–2/23
        # off → due Tuesday 2/24 11:30; 80 % → 2/24 10:42.
        (
            at(2026, 2, 14, 17, 0),
            [at(2026, 2, 15, 9, 0), at(2026, 2, 23, 10, 42), at(2026, 2, 24, 10, 41)],
            at(2026, 2, 24, 10, 42),
            at(2026, 2, 24, 11, 30),
        ),
    ],
    ids=["weekend", "spring-festival"],
)
def test_warns_at_80_percent_of_working_hours_not_before(
    cast: Cast, start: datetime, not_yet: list[datetime], warn_at: datetime, deadline: datetime
):
    case = restart_clock(accepted(cast), start)
    assert case.stage == Stage.HANDLE
    assert (case.stage_warn_at, case.stage_deadline) == (warn_at, deadline)

    for moment in not_yet:
        assert run(moment) == (0, 0), moment
    assert steps(case, "warn") == [] and events_of(case, WARNED) == []

    assert run(warn_at) == (0, 1)
    case = fresh(case)
    assert case.stage_warned and not case.stage_breached
    assert case.status == IncidentStatus.ACCEPTED and case.owner_level == OwnerLevel.COMMUNITY
    (step,) = steps(case, "warn")
    assert step.actor is None and step.from_status == step.to_status == IncidentStatus.ACCEPTED
    assert step.created_at == warn_at
    assert step.data["stage"] == "handle"
    (entry,) = audits_of(case, "incidents.incident_warn")
    assert entry.actor is None and entry.after["stage_warned"] is True
    assert chain_verify().ok


def test_the_warning_reaches_the_case_its_department_and_assignee(cast: Cast):
    case = accepted(cast)
    assert run(case.stage_warn_at) == (0, 1)

    (event,) = events_of(case, WARNED)
    assert event_scopes(event) == {
        f"district:{DISTRICT}",
        f"street:{STREET}",
        f"community:{COMMUNITY}",
        f"grid:{GRID}",
        "department:CGJ",
        f"user:{cast.handler.pk}",
    }
    summary = event.payload["incident"]
    assert summary["number"] == case.number and summary["stage"] == "handle"
    assert summary["stage_warned"] is True and summary["stage_breached"] is False
    assert summary["stage_warn_at"] is not None and summary["escalations"] == 0
    assert event.payload["transition"]["action"] == "warn"
    assert event.payload["transition"]["actor"] is None
    assert "reporter_phone" not in summary and "description" not in summary


# --- 督办 -----------------------------------------------------------------------------------------


def test_a_missed_limit_escalates_community_to_street(cast: Cast):
    case = report()  # register clock, owned by the community
    assert case.owner_level == OwnerLevel.COMMUNITY and case.owner_code == COMMUNITY
    deadline = case.stage_deadline

    assert run(deadline - SECOND) == (0, 1)  # the warning, not yet the breach
    assert run(deadline) == (1, 0)

    case = fresh(case)
    assert (case.owner_level, case.owner_code) == (OwnerLevel.STREET, STREET)
    assert case.escalations == 1 and case.stage_breached and case.stage_warned
    assert case.status == IncidentStatus.REPORTED and case.stage_deadline == deadline
    (supervision,) = supervisions(case)
    assert (supervision.stage, supervision.stage_deadline) == (Stage.REGISTER, deadline)
    assert (supervision.from_level, supervision.from_code) == (OwnerLevel.COMMUNITY, COMMUNITY)
    assert (supervision.to_level, supervision.to_code) == (OwnerLevel.STREET, STREET)
    assert supervision.created_at == deadline

    (step,) = steps(case, "escalate")
    assert step.actor is None and step.from_status == step.to_status == IncidentStatus.REPORTED
    assert step.data["from"] == ["community", COMMUNITY] and step.data["to"] == ["street", STREET]
    (entry,) = audits_of(case, "incidents.incident_escalate")
    assert entry.actor is None and entry.before["owner"] == ["community", COMMUNITY]
    assert entry.after["owner"] == ["street", STREET] and entry.after["escalations"] == 1

    (event,) = events_of(case, ESCALATED)
    assert {f"community:{COMMUNITY}", f"street:{STREET}", f"district:{DISTRICT}"} <= (
        event_scopes(event)
    )
    assert event.payload["supervision"]["from"] == {"level": "community", "code": COMMUNITY}
    assert event.payload["supervision"]["to"] == {"level": "street", "code": STREET}
    assert event.payload["supervision"]["stage"] == "register"
    assert event.payload["incident"]["owner"] == {"level": "street", "code": STREET}
    assert event.payload["incident"]["escalations"] == 1
    assert chain_verify().ok


def test_after_escalation_the_new_owner_acts_and_the_old_one_no_longer(cast: Cast):
    case = report()
    run(case.stage_deadline)
    case = fresh(case)

    assert incident_actions_for(cast.community, case) == []
    assert "register" in incident_actions_for(cast.street, case)
    assert "register" in incident_actions_for(cast.district, case)
    with pytest.raises(ActionNotPermitted):
        incident_register(incident=case, by=cast.community)
    case = incident_register(incident=case, by=cast.street)
    assert case.status == IncidentStatus.REGISTERED


def test_a_second_breach_goes_to_the_district_and_the_district_keeps_it(cast: Cast):
    case = report()
    assert run(case.stage_deadline) == (1, 0)  # register missed: community → street

    # The next stage's clock starts clean: not warned, not breached.
    case = incident_register(incident=fresh(case), by=cast.street)
    assert case.stage == Stage.DISPATCH and not case.stage_warned and not case.stage_breached
    assert run(case.stage_deadline) == (1, 0)  # dispatch missed: street → district
    case = fresh(case)
    assert (case.owner_level, case.owner_code) == (OwnerLevel.DISTRICT, DISTRICT)
    assert incident_actions_for(cast.street, case) == []
    assert "dispatch" in incident_actions_for(cast.district, case)

    case = incident_dispatch(incident=case, by=cast.district, department_code="CGJ")
    assert run(case.stage_deadline) == (1, 0)  # accept missed: the district keeps it
    case = fresh(case)
    assert (case.owner_level, case.owner_code) == (OwnerLevel.DISTRICT, DISTRICT)
    assert case.escalations == 3
    tiers = [(s.stage, s.from_level, s.to_level) for s in supervisions(case)]
    assert tiers == [
        ("register", "community", "street"),
        ("dispatch", "street", "district"),
        ("accept", "district", "district"),
    ]
    assert len(events_of(case, ESCALATED)) == 3
    # The last event reached the department the case is dispatched to.
    assert "department:CGJ" in event_scopes(events_of(case, ESCALATED)[-1])
    assert chain_verify().ok


def test_a_clock_that_restarts_in_the_same_stage_can_breach_again(cast: Cast):
    """Rework starts the accept clock again: a new deadline, a new 督办."""
    case = incident_register(incident=report(), by=cast.community)
    case = incident_dispatch(incident=case, by=cast.community, department_code="CGJ")
    # The first accept clock ran out in the past; the rework's clock starts now, so it ends later.
    case = restart_clock(case, at(2026, 2, 13, 9, 0))
    assert run(case.stage_deadline) == (1, 0)  # accept missed
    case = incident_accept(incident=fresh(case), by=cast.handler)
    case = incident_feed_back(incident=case, by=cast.handler, feedback="已清理")
    case = incident_verify(incident=case, by=cast.grid_worker, passed=False, note="未清理干净")
    assert case.stage == Stage.ACCEPT and not case.stage_breached
    assert run(case.stage_deadline) == (1, 0)  # the accept clock of the rework
    assert [s.stage for s in supervisions(case)] == ["accept", "accept"]
    assert fresh(case).owner_level == OwnerLevel.DISTRICT


def test_a_breach_without_an_earlier_warning_is_escalated_only(cast: Cast):
    case = report()
    assert run(case.stage_deadline + timedelta(hours=3)) == (1, 0)
    assert run(case.stage_deadline + timedelta(hours=4)) == (0, 0)
    case = fresh(case)
    assert case.stage_warned and case.stage_breached
    assert events_of(case, WARNED) == [] and len(events_of(case, ESCALATED)) == 1


# --- exactly once -------------------------------------------------------------------------------


def test_a_rerun_never_warns_or_escalates_twice(cast: Cast):
    case = accepted(cast)
    for _ in range(3):
        run(case.stage_warn_at)
        run(case.stage_warn_at + timedelta(minutes=5))
    assert len(steps(case, "warn")) == 1 and len(events_of(case, WARNED)) == 1
    for later in (timedelta(0), timedelta(minutes=1), timedelta(days=30)):
        run(case.stage_deadline + later)
    assert len(supervisions(case)) == 1 and len(steps(case, "escalate")) == 1
    assert len(events_of(case, ESCALATED)) == 1 and fresh(case).escalations == 1

    # The services themselves refuse, whoever calls them.
    with pytest.raises(NotDue):
        incident_warn(incident=case, now=case.stage_warn_at)
    with pytest.raises(NotDue):
        incident_escalate(incident=case, now=case.stage_deadline + timedelta(days=1))
    assert len(audits_of(case, "incidents.incident_warn")) == 1
    assert len(audits_of(case, "incidents.incident_escalate")) == 1


def test_the_supervision_constraint_is_the_last_line_of_defence(cast: Cast):
    case = report()
    run(case.stage_deadline)
    # Lose the marker (as if a worker had escalated without it): the breach still counts once.
    Incident.objects.filter(pk=case.pk).update(stage_breached=False)

    done = escalation_run_once(now=case.stage_deadline + SECOND, batch=10)

    assert (done.escalated, done.skipped, done.failed) == (0, 1, 0)
    case = fresh(case)
    assert Supervision.objects.filter(incident=case).count() == 1
    assert case.escalations == 1 and (case.owner_level, case.owner_code) == ("street", STREET)
    assert len(events_of(case, ESCALATED)) == 1 and len(steps(case, "escalate")) == 1


def test_a_pass_handles_at_most_its_batch_and_says_more_are_due(cast: Cast):
    cases = [report() for _ in range(3)]
    now = max(case.stage_deadline for case in cases)

    first = escalation_run_once(now=now, batch=2)
    assert (first.escalated, first.more) == (2, True)
    second = escalation_run_once(now=now, batch=2)
    assert (second.escalated, second.more) == (1, False)
    assert sum(fresh(case).escalations for case in cases) == 3


def test_a_pass_stops_when_asked(cast: Cast):
    cases = [report() for _ in range(2)]
    now = max(case.stage_deadline for case in cases)
    done = escalation_run_once(now=now, batch=10, stop=lambda: True)
    assert (done.escalated, done.warned) == (0, 0)
    assert Supervision.objects.count() == 0


def test_the_pass_refuses_a_naive_now_and_a_bad_batch(db):
    with pytest.raises(ValueError, match="aware"):
        escalation_run_once(now=datetime(2026, 11, 30, 9, 0), batch=10)
    for batch in (0, -1, True):
        with pytest.raises(ValueError, match="batch"):
            escalation_run_once(now=at(2026, 11, 30, 9, 0), batch=batch)


# --- an extension re-arms the clock ---------------------------------------------------------------


def test_an_approved_extension_rearms_the_warning_and_the_breach(cast: Cast):
    case = accepted(cast)
    started, deadline = case.stage_started_at, case.stage_deadline
    assert run(case.stage_warn_at) == (0, 1)
    assert run(deadline) == (1, 0)  # handle missed: community → street
    assert fresh(case).stage_warned and fresh(case).stage_breached

    until = deadline + timedelta(days=14)  # whatever holidays follow, working days among them
    case = incident_request_extension(
        incident=fresh(case), by=cast.handler, until=until, reason="需采购配件"
    )
    with pytest.raises(ActionNotPermitted):  # the street owns it now, not the community
        incident_approve_extension(incident=case, by=cast.community)
    case = incident_approve_extension(incident=case, by=cast.street)

    unit = case.category.limit_for(Stage.HANDLE).unit
    assert case.stage_started_at == started and case.stage_deadline == until
    assert not case.stage_warned and not case.stage_breached
    assert case.stage_warn_at == calendar.warning_at(started, until, unit=unit)
    assert deadline < case.stage_warn_at < until

    assert run(deadline + SECOND) == (0, 0)
    assert run(case.stage_warn_at - SECOND) == (0, 0)
    assert run(case.stage_warn_at) == (0, 1)
    assert run(until) == (1, 0)  # the new deadline missed too: street → district
    case = fresh(case)
    assert (case.owner_level, case.escalations) == (OwnerLevel.DISTRICT, 2)
    assert [s.stage_deadline for s in supervisions(case)] == [deadline, until]
    assert len(events_of(case, WARNED)) == 2
    assert chain_verify().ok


def test_a_declined_extension_keeps_the_warning_as_it_was(cast: Cast):
    case = accepted(cast)
    run(case.stage_warn_at)
    warn_at = case.stage_warn_at
    case = incident_request_extension(
        incident=fresh(case),
        by=cast.handler,
        until=case.stage_deadline + timedelta(days=1),
        reason="下雨",
    )
    case = incident_approve_extension(
        incident=case, by=cast.community, approved=False, note="按原时限办理"
    )
    assert case.stage_warned and case.stage_warn_at == warn_at
    assert run(case.stage_warn_at + SECOND) == (0, 0)


# --- no clock, no warning, no 督办 ---------------------------------------------------------------


def test_parked_finished_and_merged_cases_run_no_clock(cast: Cast):
    parked = incident_park(incident=accepted(cast), by=cast.community, reason="需立项")
    rejected = incident_reject(incident=report(), by=cast.community, reason="非城市管理问题")
    primary = report()
    merged = incident_merge(incident=report(), into=primary, by=cast.community, reason="重复")
    for case in (parked, rejected, merged):
        assert (case.stage, case.stage_deadline, case.stage_warn_at) == ("", None, None), case

    assert run(primary.stage_deadline + timedelta(days=60)) == (1, 0)  # the primary only
    for case in (parked, rejected, merged):
        assert supervisions(case) == [] and steps(case, "warn") == []

    # Unparked: a fresh clock with its warning moment, and the worker follows it again.
    case = incident_unpark(incident=parked, by=cast.community)
    assert case.stage == Stage.HANDLE and case.stage_warn_at is not None
    assert not case.stage_warned and not case.stage_breached
    assert run(case.stage_warn_at) == (0, 1)


# --- the workflow table and the system steps ------------------------------------------------------


def test_warn_and_escalate_are_system_steps_never_user_actions(cast: Cast):
    assert set(workflow.SYSTEM_STEPS) == {"warn", "escalate"}
    assert not set(workflow.SYSTEM_STEPS) & set(workflow.TRANSITIONS)
    assert set(workflow.STAGE_OF_STATUS) == workflow.CLOCK_STATUSES
    case = report()
    run(case.stage_deadline)
    case = fresh(case)
    for user in (cast.admin, cast.district, cast.street):
        assert not set(incident_actions_for(user, case)) & set(workflow.SYSTEM_STEPS)
    with pytest.raises(ValueError, match="unknown workflow action"):
        workflow.transition_for("escalate", case)


# --- the command --------------------------------------------------------------------------------


def test_the_command_runs_one_pass_with_once(cast: Cast, caplog: pytest.LogCaptureFixture):
    # Clocks that started long ago: the command's pass (at the real now) finds both breached.
    unregistered = restart_clock(report(), at(2026, 2, 13, 9, 0))
    unhandled = restart_clock(accepted(cast), at(2026, 2, 13, 9, 0))

    with caplog.at_level(logging.INFO, logger="dispatch.escalate"):
        call_command("dispatch_escalate", "--once", "--batch", "10")

    passes = [r.getMessage() for r in caplog.records if "escalation pass:" in r.getMessage()]
    assert passes == ["escalation pass: 2 escalated, 0 warned, 0 skipped, 0 failed"]
    assert fresh(unregistered).owner_level == fresh(unhandled).owner_level == OwnerLevel.STREET
    call_command("dispatch_escalate", "--once")
    assert Supervision.objects.count() == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--batch", "0"], "--batch"), (["--interval", "0"], "--interval")],
)
def test_the_command_refuses_bad_arguments(db, arguments: list[str], message: str):
    with pytest.raises(CommandError, match=message):
        call_command("dispatch_escalate", "--once", *arguments)
