"""预警 and 督办: the escalation loop's services and the queries it runs (docs/escalation.md).

Every running clock (a status in incidents.workflow.CLOCK_STATUSES: `stage`, `stage_started_at`,
`stage_deadline`) carries the moment of its 80 % warning, `stage_warn_at`, computed when the clock
starts or an extension moves its deadline (incidents.services._run_clock,
incident_approve_extension; incidents.calendar.warning_at). The worker
(dispatch/management/commands/dispatch_escalate.py) calls `escalation_run_once` every few seconds:

* **督办 escalate** a case whose deadline has passed and whose breach is not yet escalated
  (`stage_breached` false): a `Supervision` row, the owner raised one tier — community → street
  → district; a case the district owns stays with it, and the 督办 is still recorded —,
  `escalations + 1`, `stage_breached` (and `stage_warned`: the 督办 supersedes a warning not
  given yet). The new owner's operators may now act on the case (incidents.workflow: COMMAND is
  the owning centre or one above it).
* **预警 warn** a case whose warning moment has come, still before its deadline, not yet warned
  (`stage_warned`).

Both are system steps (actor None; incidents.workflow.SYSTEM_STEPS): they change no status, and
each leaves a timeline row, an audit entry and an outbox event in its transaction, like every
action. A new clock (the next stage, rework, unpark, reopen …) clears both markers; an approved
extension re-arms them for the new deadline.

Exactly once, with any number of workers: a pass first reads the due cases without locking, then
takes each in its own short transaction — on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` of that
case *with the due condition again*, so a case another copy holds is skipped and one it has just
finished is no longer due; on SQLite (no SKIP LOCKED) inside the write transaction that
`transaction_mode=IMMEDIATE` makes exclusive, where the same query reads the committed state. The
service then locks the row and checks the condition once more before it writes; the unique
(incident, stage, stage_deadline) of Supervision is the last line of defence. One case per
transaction: an event publish locks its scopes' counters until commit, and two publishes in one
transaction could deadlock with a concurrent action (realtime.outbox.publish).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.services import audit_record
from incidents import events, workflow
from incidents.models import (
    OWNER_LEVEL_ORDER,
    Incident,
    IncidentTransition,
    OwnerLevel,
    Supervision,
)
from incidents.services import IncidentError, _lock, _snapshot
from realtime.outbox import publish

log = logging.getLogger(__name__)

# How many cases one pass handles at most (each in its own transaction).
DEFAULT_BATCH = 100


class NotDue(IncidentError):
    """Under the lock the case is not (or no longer) due: another worker or an action on the case
    came first (warned, escalated, a new clock, parked, closed …). Nothing was written."""


def _require_now(now: datetime) -> None:
    if not isinstance(now, datetime) or timezone.is_naive(now):
        raise ValueError(f"now must be an aware datetime, not {now!r}")


# --- what is due --------------------------------------------------------------------------------


def warning_due(incident: Incident, now: datetime) -> bool:
    """The running clock has reached its 80 % moment, not its deadline, and was not warned."""
    return (
        incident.status in workflow.CLOCK_STATUSES
        and incident.stage_warn_at is not None
        and incident.stage_deadline is not None
        and not incident.stage_warned
        and incident.stage_warn_at <= now < incident.stage_deadline
    )


def breach_due(incident: Incident, now: datetime) -> bool:
    """The running clock's deadline has passed and the breach is not escalated yet."""
    return (
        incident.status in workflow.CLOCK_STATUSES
        and incident.stage_deadline is not None
        and not incident.stage_breached
        and incident.stage_deadline <= now
    )


def warnings_due(now: datetime) -> QuerySet[Incident]:
    """The cases `warning_due` at `now`, as a query (the partial index incidents_warn_due)."""
    return Incident.objects.filter(
        status__in=sorted(workflow.CLOCK_STATUSES),
        stage_warn_at__isnull=False,
        stage_warned=False,
        stage_warn_at__lte=now,
        stage_deadline__gt=now,
    )


def breaches_due(now: datetime) -> QuerySet[Incident]:
    """The cases `breach_due` at `now`, as a query (the partial index incidents_breach_due)."""
    return Incident.objects.filter(
        status__in=sorted(workflow.CLOCK_STATUSES),
        stage_deadline__isnull=False,
        stage_breached=False,
        stage_deadline__lte=now,
    )


def owner_above(incident: Incident) -> tuple[str, str]:
    """The owner one tier up (level, code): community → street → district; district stays."""
    index = OWNER_LEVEL_ORDER.index(incident.owner_level)
    level = OWNER_LEVEL_ORDER[min(index + 1, len(OWNER_LEVEL_ORDER) - 1)]
    code = {
        OwnerLevel.COMMUNITY: incident.community_code,
        OwnerLevel.STREET: incident.street_code,
        OwnerLevel.DISTRICT: incident.district_code,
    }[OwnerLevel(level)]
    return level, code


# --- the two services ---------------------------------------------------------------------------


def _clock(incident: Incident) -> dict[str, object]:
    return {
        "stage": incident.stage,
        "stage_started_at": incident.stage_started_at,
        "stage_warn_at": incident.stage_warn_at,
        "stage_deadline": incident.stage_deadline,
    }


def incident_warn(*, incident: Incident, now: datetime) -> Incident:
    """预警: 80 % of the running stage limit has passed. Marks the clock warned and tells the
    case's centres, department and assignee (incidents.incident_warned). NotDue when, under the
    lock, the case is not due (already warned, past its deadline, another clock, no clock)."""
    _require_now(now)
    with transaction.atomic():
        case = _lock(incident)
        if not warning_due(case, now):
            raise NotDue(f"{case.number}: no warning is due at {now.isoformat()}")
        before = _snapshot(case)
        case.stage_warned = True
        case.save(update_fields=["stage_warned", "updated_at"])
        transition = IncidentTransition.objects.create(
            incident=case,
            action="warn",
            from_status=case.status,
            to_status=case.status,
            actor=None,
            actor_role="",
            data=_clock(case),
            created_at=now,
        )
        audit_record(
            actor=None,
            action="incidents.incident_warn",
            obj_type="incidents.incident",
            obj_id=case.pk,
            before=before,
            after={**_snapshot(case), **_clock(case), "stage_warned": True},
        )
        publish(
            type=events.WARNED,
            payload=events.incident_warned(incident=case, transition=transition),
            scopes=events.incident_scopes(case),
        )
    log.debug("incident %s warned: %s due %s", case.number, case.stage, case.stage_deadline)
    return case


def incident_escalate(*, incident: Incident, now: datetime) -> Incident:
    """督办: the running stage limit was missed. Records a Supervision, raises the owner one tier
    (community → street → district; the district keeps it), counts the escalation, marks the
    breach, and tells the old and the new owner (incidents.incident_escalated). NotDue when,
    under the lock, the case is not due (already escalated, no clock, deadline not reached)."""
    _require_now(now)
    with transaction.atomic():
        case = _lock(incident)
        if not breach_due(case, now):
            raise NotDue(f"{case.number}: no breach to escalate at {now.isoformat()}")
        assert case.stage_deadline is not None  # breach_due checked it
        before = _snapshot(case)
        from_level, from_code = case.owner_level, case.owner_code
        to_level, to_code = owner_above(case)
        try:
            with transaction.atomic():  # a savepoint: the constraint's refusal is handled here
                supervision = Supervision.objects.create(
                    incident=case,
                    stage=case.stage,
                    stage_deadline=case.stage_deadline,
                    from_level=from_level,
                    from_code=from_code,
                    to_level=to_level,
                    to_code=to_code,
                    created_at=now,
                )
        except IntegrityError:
            raise NotDue(
                f"{case.number}: the {case.stage} deadline {case.stage_deadline.isoformat()} "
                "was already escalated (Supervision exists)"
            ) from None
        case.owner_level, case.owner_code = to_level, to_code
        case.escalations += 1
        case.stage_breached = True
        case.stage_warned = True  # the 督办 supersedes a warning that was not given yet
        case.save(
            update_fields=[
                "owner_level",
                "owner_code",
                "escalations",
                "stage_breached",
                "stage_warned",
                "updated_at",
            ]
        )
        transition = IncidentTransition.objects.create(
            incident=case,
            action="escalate",
            from_status=case.status,
            to_status=case.status,
            actor=None,
            actor_role="",
            data={
                **_clock(case),
                "from": [from_level, from_code],
                "to": [to_level, to_code],
                "escalations": case.escalations,
            },
            created_at=now,
        )
        audit_record(
            actor=None,
            action="incidents.incident_escalate",
            obj_type="incidents.incident",
            obj_id=case.pk,
            before=before,
            after={
                **_snapshot(case),
                **_clock(case),
                "supervision": supervision.pk,
                "escalations": case.escalations,
                "stage_breached": True,
            },
        )
        scopes = {
            *events.incident_scopes(case),
            f"{from_level}:{from_code}",
            f"{to_level}:{to_code}",
        }
        publish(
            type=events.ESCALATED,
            payload=events.incident_escalated(
                incident=case, transition=transition, supervision=supervision
            ),
            scopes=scopes,
        )
    log.debug(
        "incident %s escalated (督办): %s due %s, %s %s → %s %s",
        case.number,
        case.stage,
        case.stage_deadline,
        from_level,
        from_code,
        to_level,
        to_code,
    )
    return case


# --- the worker's pass --------------------------------------------------------------------------


@dataclass
class EscalationPass:
    """What one pass did."""

    escalated: int = 0
    warned: int = 0
    # Due when read, but taken by another worker or no longer due once locked.
    skipped: int = 0
    # Failed with an unexpected error (logged; the case stays due for the next pass).
    failed: int = 0
    # The batch was used up: more cases may be due, run the next pass at once.
    more: bool = False

    @property
    def handled(self) -> int:
        return self.escalated + self.warned + self.skipped + self.failed

    def as_text(self) -> str:
        return (
            f"{self.escalated} escalated, {self.warned} warned, {self.skipped} skipped, "
            f"{self.failed} failed{' (batch full: more due)' if self.more else ''}"
        )


def check_claiming_supported() -> None:
    """Several workers claim cases safely on PostgreSQL (SKIP LOCKED) and on SQLite only with
    transaction_mode=IMMEDIATE (every transaction takes the write lock when it begins)."""
    if connection.features.has_select_for_update_skip_locked:
        return
    mode = connection.settings_dict.get("OPTIONS", {}).get("transaction_mode")
    if connection.vendor == "sqlite" and mode == "IMMEDIATE":
        return
    raise ImproperlyConfigured(
        f"the escalation worker needs PostgreSQL or SQLite with transaction_mode=IMMEDIATE, "
        f"not {connection.vendor} with transaction_mode={mode!r}"
    )


def _candidates(due: QuerySet[Incident], order: str, limit: int) -> list[int]:
    if limit <= 0:
        return []
    return list(due.order_by(order, "pk").values_list("pk", flat=True)[:limit])


def _claim(due: QuerySet[Incident], pk: int) -> Incident | None:
    """Inside a transaction: the case, locked, if it is still due and no other worker holds it."""
    query = due.filter(pk=pk)
    if connection.features.has_select_for_update_skip_locked:
        query = query.select_for_update(skip_locked=True)
    return query.first()


def _take(
    due: QuerySet[Incident],
    pk: int,
    service: Callable[..., Incident],
    now: datetime,
    done: EscalationPass,
) -> bool:
    """Claim and handle one case in its own transaction; True if the service applied."""
    try:
        with transaction.atomic():
            case = _claim(due, pk)
            if case is None:
                done.skipped += 1
                return False
            service(incident=case, now=now)
            return True
    except NotDue as refusal:
        log.debug("escalation: %s", refusal)
        done.skipped += 1
    except Exception:
        log.exception("escalation: case id %s failed; it stays due", pk)
        done.failed += 1
    return False


def escalation_run_once(
    *,
    now: datetime,
    batch: int = DEFAULT_BATCH,
    stop: Callable[[], bool] | None = None,
) -> EscalationPass:
    """One pass of the worker at `now`: escalate the breached clocks (the most urgent, earliest
    deadline first), then warn those at 80 % (earliest first) — at most `batch` cases in all,
    each in its own transaction. `stop()` is asked before each case (a worker told to stop
    finishes the case in hand and returns)."""
    _require_now(now)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a whole number of at least 1, not {batch!r}")
    check_claiming_supported()
    done = EscalationPass()
    plan = (
        (breaches_due(now), "stage_deadline", incident_escalate, "escalated"),
        (warnings_due(now), "stage_warn_at", incident_warn, "warned"),
    )
    for due, order, service, counter in plan:
        found = _candidates(due, order, batch - done.handled)
        for pk in found:
            if stop is not None and stop():
                return done
            if _take(due, pk, service, now, done):
                setattr(done, counter, getattr(done, counter) + 1)
    done.more = done.handled >= batch
    return done
