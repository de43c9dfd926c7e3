"""The closed loop (闭环) as data: which action moves a case from which statuses to which, and who
may take it.

    上报 report ─► 立案 register ─► 派遣 dispatch ─► 签收 accept ─► 处置 handle ─► 反馈 feed back
        │              │               ▲   │            │                               │
        │              └► 不予立案      │   └► 退单      └► 延期 extend (request/approve)  ▼
        │                 reject       │      send back (3× → district arbitration)  核查 verify
        └► 合并 merge (duplicate)        └──────────── 返工 rework (verify failed) ◄──────┤
                                                                                         ▼
          挂账 park / unpark (registered … handling)      评价 evaluate ◄── 结案 close ◄───┘
          重新打开 reopen (closed, evaluated → registered)

          While a case is in hand (dispatched … handling), beside the loop: 增派协办 call out
          more departments (and 升级响应, a graver response plan and severity); each department
          called out confirms it is on the scene, 确认到场 confirm arrival, and says what it
          has done as often as it has news, 协办反馈 support report.

Each row of `TRANSITIONS` names the statuses an action is allowed from, the status it leads to
(`SAME`: the status does not change — an extension request; `PREVIOUS`: back to where the case
was before it was parked or merged), an optional guard on the case, and the kinds of actor who
may take it (`Actor`). `incidents.services` has one function per action; each checks the row
inside the lock on the case, so two concurrent actions can never both apply.

The actor kinds, checked against the user's role and place (accounts.User, ADR 0002):

* COMMAND — an operator of the command centre that owns the case, or of one above it: community
  staff of the case's community while a community owns it; a street operator of its street while
  the community or street owns it; a district operator always. Escalation and arbitration raise
  the owner, and with it who may decide.
* HANDLER — whoever the case is dispatched to: handlers of the assigned department, or the
  assigned user.
* FIELD — a grid worker whose place covers the case's grid cell (on-site verification).
* REPORTER — the user who reported the case (evaluation).
* SUPPORT — handlers of a department called out beside the one dispatched (协办部门,
  Incident.support_department_codes): they see the case, confirm their arrival and report what
  they have done (协办反馈), nothing else.

An admin may take any action a row allows but those in `OWN_WORD`; an auditor never acts; a
user without a role neither.
Who may *report* is decided at intake (incidents.services.incident_report), not here.

Two steps are the system's, not a user's, and are therefore not rows of `TRANSITIONS` (so no
user is ever offered or allowed them: `allowed_actions`, `actions_for` and `transition_for`
never name them): `SYSTEM_STEPS`, taken by the escalation worker (incidents.services.escalation,
actor None) on the running clock of a status in `CLOCK_STATUSES`. Neither changes the status:
预警 `warn` marks the clock at 80 % of its limit; 督办 `escalate` records a missed limit and
raises the owner one tier (community → street → district), which changes who counts as COMMAND.
Both leave a timeline row, an audit entry and an event like every action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from accounts.models import Role
from incidents.models import OWNER_LEVEL_ORDER, Incident, IncidentStatus, OwnerLevel, Stage

S = IncidentStatus

# Special targets: the status does not change / the status before park or merge comes back.
SAME = "=same"
PREVIOUS = "=previous"


class Actor(StrEnum):
    COMMAND = "command"
    HANDLER = "handler"
    FIELD = "field"
    REPORTER = "reporter"
    SUPPORT = "support"


@dataclass(frozen=True)
class Transition:
    action: str
    label: Any  # a lazy translation: the action's name on the pages and in refusals
    sources: frozenset[str]
    target: str  # a status, SAME or PREVIOUS
    actors: frozenset[Actor]
    # A condition on the case besides its status (e.g. an extension request is pending).
    guard: Callable[[Incident], bool] | None = None
    guard_text: Any = ""

    def allows(self, incident: Incident) -> bool:
        return incident.status in self.sources and (self.guard is None or self.guard(incident))


def _pending(incident: Incident) -> bool:
    return incident.extension_pending


def _not_pending(incident: Incident) -> bool:
    return not incident.extension_pending


def _arrival_owed(incident: Incident) -> bool:
    """Some department called out on the case has not yet confirmed it is on the scene."""
    return bool(set(incident.support_department_codes) - set(incident.support_arrived_codes))


def _called_out(incident: Incident) -> bool:
    """Some department is called out on the case beside the one handling it (协办)."""
    return bool(incident.support_department_codes)


def _row(
    action: str,
    label: Any,
    sources: set[str],
    target: str,
    actors: set[Actor],
    guard: Callable[[Incident], bool] | None = None,
    guard_text: Any = "",
) -> Transition:
    return Transition(
        action, label, frozenset(sources), target, frozenset(actors), guard, guard_text
    )


C, H, F, R = Actor.COMMAND, Actor.HANDLER, Actor.FIELD, Actor.REPORTER
SUP = Actor.SUPPORT

# Who an actor kind is, as a refusal names them ("只有案件 … 的承办部门或承办人可以办理").
ACTOR_LABELS: dict[Actor, Any] = {
    C: gettext_lazy("指挥中心值班人员"),
    H: gettext_lazy("承办部门或承办人"),
    F: gettext_lazy("所在网格的网格员"),
    R: pgettext_lazy("who may act", "上报人"),
    SUP: gettext_lazy("协办部门"),
}
# Statuses in which a case can be parked: registered and not yet handled to the end.
PARKABLE: set[str] = {S.REGISTERED, S.RETURNED, S.DISPATCHED, S.ACCEPTED, S.HANDLING}
# Statuses in which a case is in a department's hands: more departments may be called out
# beside it (增派协办) and those called out confirm their arrival and report.
IN_HAND: set[str] = {S.DISPATCHED, S.ACCEPTED, S.HANDLING}

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _row("register", gettext_lazy("立案"), {S.REPORTED}, S.REGISTERED, {C}),
        _row("reject", gettext_lazy("不予立案"), {S.REPORTED}, S.REJECTED, {C}),
        _row("merge", gettext_lazy("合并"), {S.REPORTED, S.REGISTERED}, S.MERGED, {C}),
        _row("unmerge", gettext_lazy("撤销合并"), {S.MERGED}, PREVIOUS, {C}),
        _row("dispatch", gettext_lazy("派遣"), {S.REGISTERED, S.RETURNED}, S.DISPATCHED, {C}),
        _row("accept", gettext_lazy("签收"), {S.DISPATCHED}, S.ACCEPTED, {H}),
        _row("send_back", gettext_lazy("退单"), {S.DISPATCHED}, S.RETURNED, {H}),
        _row("handle", gettext_lazy("处置"), {S.ACCEPTED}, S.HANDLING, {H}),
        _row("feed_back", gettext_lazy("反馈"), {S.ACCEPTED, S.HANDLING}, S.FED_BACK, {H}),
        _row("verify", gettext_lazy("核查通过"), {S.FED_BACK}, S.VERIFIED, {F, C}),
        _row("rework", gettext_lazy("核查不通过（返工）"), {S.FED_BACK}, S.DISPATCHED, {F, C}),
        _row("close", gettext_lazy("结案"), {S.VERIFIED}, S.CLOSED, {C}),
        _row("evaluate", gettext_lazy("评价"), {S.CLOSED}, S.EVALUATED, {R, C}),
        _row("reopen", gettext_lazy("重新打开"), {S.CLOSED, S.EVALUATED}, S.REGISTERED, {C}),
        _row(
            "request_extension",
            gettext_lazy("申请延期"),
            {S.ACCEPTED, S.HANDLING},
            SAME,
            {H},
            _not_pending,
            gettext_lazy("没有待审批的延期申请"),
        ),
        _row(
            "approve_extension",
            gettext_lazy("批准延期"),
            {S.ACCEPTED, S.HANDLING},
            SAME,
            {C},
            _pending,
            gettext_lazy("有待审批的延期申请"),
        ),
        _row(
            "decline_extension",
            gettext_lazy("驳回延期"),
            {S.ACCEPTED, S.HANDLING},
            SAME,
            {C},
            _pending,
            gettext_lazy("有待审批的延期申请"),
        ),
        _row("call_out", gettext_lazy("增派协办"), IN_HAND, SAME, {C}),
        _row(
            "confirm_arrival",
            gettext_lazy("确认到场"),
            IN_HAND,
            SAME,
            {SUP},
            _arrival_owed,
            gettext_lazy("有尚未确认到场的协办部门"),
        ),
        # Any number of times, arrived or not: a report is news from a department at work on
        # the case (已疏散群众 12 人), wherever it is made (供电 cuts the power from its own
        # dispatch room). Refusing one because nobody tapped 确认到场 would lose the news. The
        # guard keeps it out of the allowed actions of a case no department is called out on.
        _row(
            "support_report",
            gettext_lazy("协办反馈"),
            IN_HAND,
            SAME,
            {SUP},
            _called_out,
            gettext_lazy("有协办部门"),
        ),
        _row("park", gettext_lazy("挂账"), PARKABLE, S.PARKED, {C}),
        _row("unpark", gettext_lazy("取消挂账"), {S.PARKED}, PREVIOUS, {C}),
    )
}

# The steps of a department called out (确认到场, 协办反馈): the step's data names the
# department that spoke (its `department`), not the one handling the case.
SUPPORT_STEPS: frozenset[str] = frozenset(
    action for action, row in TRANSITIONS.items() if Actor.SUPPORT in row.actors
)

# Actions that are a statement only their actors can make (a department saying it is on the
# scene, or what it has done there): an admin, who may take any other action, may not take
# these for them.
OWN_WORD: frozenset[str] = frozenset({"confirm_arrival", "support_report"})

# The statuses an action's PREVIOUS may restore: where park and merge can come from.
RESTORABLE: dict[str, frozenset[str]] = {
    "unpark": TRANSITIONS["park"].sources,
    "unmerge": TRANSITIONS["merge"].sources,
}

# The clock that runs in each status (incidents.models.Stage); none runs in the others.
STAGE_OF_STATUS: dict[str, str] = {
    S.REPORTED: Stage.REGISTER,
    S.REGISTERED: Stage.DISPATCH,
    S.RETURNED: Stage.DISPATCH,
    S.DISPATCHED: Stage.ACCEPT,
    S.ACCEPTED: Stage.HANDLE,
    S.HANDLING: Stage.HANDLE,
    S.FED_BACK: Stage.VERIFY,
}

# The statuses in which a clock runs (and the escalation worker may warn and escalate).
CLOCK_STATUSES: frozenset[str] = frozenset(STAGE_OF_STATUS)

# Timeline steps the system takes on its own (actor None); never user actions (see above).
SYSTEM_STEPS: dict[str, Any] = {
    "warn": gettext_lazy("超时预警"),
    "escalate": gettext_lazy("超时督办"),
}

# Steps that are neither rows nor system steps but have a name on the pages and in refusals.
OTHER_STEPS: dict[str, Any] = {
    "report": gettext_lazy("上报"),
    "add_photo": gettext_lazy("添加照片"),
}

# After this many send-backs the case goes to the district command centre for arbitration.
ARBITRATION_AFTER_SEND_BACKS = 3

_COMMAND_ROLE_LEVEL: dict[str, str] = {
    Role.COMMUNITY_STAFF: OwnerLevel.COMMUNITY,
    Role.STREET_OPERATOR: OwnerLevel.STREET,
    Role.DISTRICT_OPERATOR: OwnerLevel.DISTRICT,
}


class WorkflowError(Exception):
    """An action refused by the workflow; the message is meant for the person who asked."""


class IllegalTransition(WorkflowError):
    """The action is not allowed in the case's current status (the API answers 409).

    `allowed` lists the actions the table allows now, whoever may take them, less a step the
    asking user's department has already taken (`allowed_actions(incident, user)`); `needs` is
    the row's condition that is not met (e.g. no extension request is pending).
    """

    def __init__(self, *, action: str, status: str, allowed: list[str], needs: Any = "") -> None:
        words = {"action": action_label(action), "status": IncidentStatus(status).label}
        if needs:
            refusal = _("案件当前为“%(status)s”，且不满足条件（%(needs)s），不能“%(action)s”。") % {
                **words,
                "needs": needs,
            }
        else:
            refusal = _("案件当前为“%(status)s”，不能“%(action)s”。") % words
        if allowed:
            now = _("现在可以：%(actions)s。") % {"actions": _join(map(action_label, allowed))}
        else:
            now = _("现在不能办理任何操作。")
        super().__init__(refusal + now)
        self.action = action
        self.status = status
        self.allowed = allowed


class ActionNotPermitted(WorkflowError):
    """The user may not take this action on this case (role, place, or the four-eyes rule).

    `action` is a workflow action or one of OTHER_STEPS; `reason` is already in the reader's
    language (docs/decisions/0015)."""

    def __init__(self, *, action: str, reason: str) -> None:
        super().__init__(
            _("无权“%(action)s”：%(reason)s") % {"action": action_label(action), "reason": reason}
        )
        self.action = action
        self.reason = reason


def action_label(action: str) -> str:
    """The name of an action or step in the reader's language, as the pages and the timeline
    show it (an unknown code is shown as it is)."""
    row = TRANSITIONS.get(action)
    label = row.label if row is not None else SYSTEM_STEPS.get(action, OTHER_STEPS.get(action))
    return str(label) if label is not None else action


def _join(words: Iterable[Any]) -> str:
    """Words listed in the reader's language: "立案、派遣" / "Register, Dispatch"."""
    return pgettext("list separator", "、").join(str(word) for word in words)


def _arrived_already(user: Any, action: str, incident: Incident) -> bool:
    """确认到场 is said once per department: whether `action` is it and `user`'s department has
    said it on this case (the row stays allowed while other departments still owe theirs)."""
    department = getattr(user, "department_code", "") or ""
    return (
        action == "confirm_arrival"
        and bool(department)
        and department in incident.support_arrived_codes
    )


def allowed_actions(incident: Incident, user: Any = None) -> list[str]:
    """The actions the table allows in the case's current state, in table order, whoever may
    take them; with `user`, less a step their department has already taken (确认到场, once per
    department), so that a refusal does not tell them to take it again."""
    return [
        action
        for action, row in TRANSITIONS.items()
        if row.allows(incident)
        and not (user is not None and _arrived_already(user, action, incident))
    ]


def transition_for(action: str, incident: Incident, user: Any = None) -> Transition:
    """The row of `action` if it is allowed in the case's current state, and for `user` (when
    given) not a step their department has already taken; IllegalTransition (with the actions
    allowed, for `user`) otherwise."""
    row = TRANSITIONS.get(action)
    if row is None:
        raise ValueError(f"unknown workflow action {action!r}")
    if not row.allows(incident):
        unmet = incident.status in row.sources and row.guard_text
        raise IllegalTransition(
            action=action,
            status=incident.status,
            allowed=allowed_actions(incident, user),
            needs=row.guard_text if unmet else "",
        )
    if user is not None and _arrived_already(user, action, incident):
        raise IllegalTransition(
            action=action,
            status=incident.status,
            allowed=allowed_actions(incident, user),
            needs=_("本部门尚未确认到场"),
        )
    return row


def _is_command(user: Any, incident: Incident) -> bool:
    level = _COMMAND_ROLE_LEVEL.get(getattr(user, "role", ""))
    if level is None:
        return False
    if OWNER_LEVEL_ORDER.index(level) < OWNER_LEVEL_ORDER.index(incident.owner_level):
        return False  # the case is owned above this operator's centre
    place = getattr(user, "place_code", "") or ""
    own_code: dict[str, str] = {
        OwnerLevel.COMMUNITY: incident.community_code,
        OwnerLevel.STREET: incident.street_code,
        OwnerLevel.DISTRICT: incident.district_code,
    }
    return bool(place) and place == own_code[level]


def _is_handler(user: Any, incident: Incident) -> bool:
    if incident.assignee_id is not None and incident.assignee_id == user.pk:
        return True
    department = getattr(user, "department_code", "") or ""
    return (
        getattr(user, "role", "") == Role.DEPARTMENT_HANDLER
        and bool(department)
        and department == incident.assigned_department_code
    )


def _is_support(user: Any, incident: Incident) -> bool:
    department = getattr(user, "department_code", "") or ""
    return (
        getattr(user, "role", "") == Role.DEPARTMENT_HANDLER
        and bool(department)
        and department in incident.support_department_codes
    )


def _is_field(user: Any, incident: Incident) -> bool:
    place = getattr(user, "place_code", "") or ""
    return (
        getattr(user, "role", "") == Role.GRID_WORKER
        and bool(place)
        and incident.grid_code.startswith(place)
    )


def actor_kinds(user: Any, incident: Incident) -> set[Actor]:
    """Every kind of actor `user` is for this case (empty for auditors and users without a role)."""
    if user is None or getattr(user, "pk", None) is None or not user.is_active:
        return set()
    kinds: set[Actor] = set()
    if _is_command(user, incident):
        kinds.add(Actor.COMMAND)
    if _is_handler(user, incident):
        kinds.add(Actor.HANDLER)
    if _is_field(user, incident):
        kinds.add(Actor.FIELD)
    if _is_support(user, incident):
        kinds.add(Actor.SUPPORT)
    if incident.reporter_id is not None and incident.reporter_id == user.pk:
        kinds.add(Actor.REPORTER)
    return kinds


def may(user: Any, action: str, incident: Incident) -> bool:
    """Whether `user` may take `action` on the case, by role and place (not by status)."""
    role = getattr(user, "role", "")
    if role == Role.AUDITOR or user is None or getattr(user, "pk", None) is None:
        return False
    if not user.is_active:
        return False
    if role == Role.ADMIN and action not in OWN_WORD:
        return True
    return bool(TRANSITIONS[action].actors & actor_kinds(user, incident))


def check_permitted(user: Any, action: str, incident: Incident) -> None:
    if may(user, action, incident):
        return
    if user is None or getattr(user, "pk", None) is None:
        reason = _("办理案件需要先登录。")
    elif getattr(user, "role", "") == Role.AUDITOR:
        reason = _("审计员只查阅，不办理案件。")
    else:
        who = pgettext("list of alternatives", "或").join(
            str(ACTOR_LABELS[actor]) for actor in sorted(TRANSITIONS[action].actors)
        )
        reason = _("只有案件 %(number)s 的%(who)s可以办理（案件现归%(owner)s）。") % {
            "number": incident.number,
            "who": who,
            "owner": incident.owner_label,
        }
    raise ActionNotPermitted(action=action, reason=reason)


def actions_for(user: Any, incident: Incident) -> list[str]:
    """The actions `user` may take on the case now: allowed by the table and by role and place
    (what a console shows as buttons). The four-eyes rule of verification is checked by the
    service itself. A department called out that has confirmed its arrival is not offered
    确认到场 again (once per department: transition_for refuses a second)."""
    return [action for action in allowed_actions(incident, user) if may(user, action, incident)]
