"""The consoles staff work in all day, and the operator's intake form.

* `/command/street/<code>/`, `/command/community/<code>/` — a street sub-centre's or community
  station's queue: filters, SLA countdowns, paging, live updates; beside it 在岗响应人员, the
  responders sharing a position inside the area (live too).
* `/command/department/` — a department handler's queue: the cases dispatched to their
  department.
* Each queue answers `?fragment=queue` with the queue alone (what its script fetches again) and
  `?fragment=numbers` with the numbers of every case its filters match, on every page, up to
  SELECT_ALL_MAX (选择全部 for 批量办理).
* `/command/cases/<number>/` — one case: details, timeline, photos, map, possible duplicates and
  a form for every action of the loop the user may take now.
* `/command/intake/` — the 12345 hotline / console intake form.
* `/command/` — "my console": where each role works.

Pages render with the incidents selectors (`incidents_visible_to` through `incident_queue`,
`incident_for_user`): a case the user may not see does not exist here either — 404, as in the
API. Writes are not made here: the pages' scripts (static/command/console.js, intake.js) post to
the REST API with the session, the CSRF token and an Idempotency-Key, and show its 4xx answers
beside the field they name. Live updates come from static/realtime/live.js; each page's HTTP
snapshot carries the sequence numbers of the feed's scopes so the feed resumes right after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.departments import department_short_names, department_short_names_text
from accounts.models import Role
from audit.services import request_ip
from command.exports import ExportTooLarge, export_limit, queue_export
from command.live import scopes_for_connection
from command.views.labels import api_field_labels
from dispatch.plans import ResponsePlan, graver_plans, known_plans, plans_for
from dispatch.selectors import may_see_responders, responders_near, responders_visible_to
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level, Region
from incidents import selectors as incident_selectors
from incidents.api.batch import BATCH_MAX
from incidents.models import (
    SATISFACTION_MAX,
    SATISFACTION_MIN,
    Channel,
    Incident,
    IncidentStatus,
    OwnerLevel,
    PhotoKind,
    SendBackReason,
    Severity,
    Stage,
)
from incidents.selectors import OPEN, QUEUE_ORDERS
from incidents.services import DESCRIPTION_MAX
from incidents.workflow import IN_HAND, SUPPORT_STEPS, action_label
from realtime.outbox import latest_seqs

# Rows per page of a queue (?size=): the first is the default.
PAGE_SIZES = ("20", "50", "100")
# A case page lists the responders sharing their position within this distance (metres), the
# nearest NEARBY_RESPONDERS_SHOWN of them; its script is given up to NEARBY_RESPONDERS_KNOWN (the
# next ones move up when a listed one leaves).
NEARBY_RESPONDERS_M = 3000
NEARBY_RESPONDERS_SHOWN = 5
NEARBY_RESPONDERS_KNOWN = 100

# Roles that may open every street's and community's console (and every case).
DISTRICT_WIDE = frozenset({Role.DISTRICT_OPERATOR, Role.ADMIN})
# Roles that take in reports by phone or at the console (the intake form).
INTAKE_ROLES = frozenset(
    {Role.DISTRICT_OPERATOR, Role.STREET_OPERATOR, Role.COMMUNITY_STAFF, Role.ADMIN}
)
INTAKE_CHANNELS = (Channel.HOTLINE_12345, Channel.CONSOLE)

S = IncidentStatus

# The queue's status filter: a name, its label and the statuses it keeps (OPEN: every case still
# in somebody's queue; "": all). The stages of the loop double as the chips above the queue.
STATUS_FILTERS: tuple[tuple[str, Any, str | tuple[str, ...]], ...] = (
    (OPEN, gettext_lazy("未办结（全部在办）"), OPEN),
    ("reported", gettext_lazy("待立案"), (S.REPORTED,)),
    ("registered", gettext_lazy("待派遣（含退单）"), (S.REGISTERED, S.RETURNED)),
    ("dispatched", gettext_lazy("待签收"), (S.DISPATCHED,)),
    ("handling", gettext_lazy("处置中（含已签收）"), (S.ACCEPTED, S.HANDLING)),
    ("fed_back", gettext_lazy("待核查"), (S.FED_BACK,)),
    ("verified", gettext_lazy("待结案"), (S.VERIFIED,)),
    ("parked", gettext_lazy("已挂账"), (S.PARKED,)),
    ("rejected", gettext_lazy("不予立案"), (S.REJECTED,)),
    ("closed", gettext_lazy("已结案"), (S.CLOSED,)),
    ("evaluated", gettext_lazy("已评价"), (S.EVALUATED,)),
    ("merged", gettext_lazy("已合并"), (S.MERGED,)),
    ("all", gettext_lazy("全部"), ""),
)
_STATUS_FILTER = {name: statuses for name, _label, statuses in STATUS_FILTERS}
# Short labels of the chips.
QUEUE_CHIPS: tuple[tuple[str, Any], ...] = (
    ("reported", gettext_lazy("待立案")),
    ("registered", gettext_lazy("待派遣")),
    ("dispatched", gettext_lazy("待签收")),
    ("handling", gettext_lazy("处置中")),
    ("fed_back", gettext_lazy("待核查")),
    ("verified", gettext_lazy("待结案")),
    ("parked", gettext_lazy("已挂账")),
)
DEPARTMENT_CHIPS = QUEUE_CHIPS[2:5]

# 批量办理: what a queue offers on the cases ticked in it (incidents.api.batch). Who opens a
# street's or community's console commands there, a department's handles; each case is still
# checked on its own (a case the district owns refuses a street operator's 立案, for one).
AREA_BATCH = ("register", "dispatch", "merge", "reject", "close")
DEPARTMENT_BATCH = ("accept",)
# Steps a department's queue offers on one row with a form to fill in (console_row_forms.html):
# 协办反馈 on a case it was called out on.
DEPARTMENT_ROW_FORMS = ("support_report",)
# 选择全部: a queue's 批量办理 may take every case its filters match, on every page (the page
# asks for their numbers, ?fragment=numbers), at most this many; beyond it the page asks the
# user to narrow the filters. The page sends them to the batch endpoint BATCH_MAX at a time, one
# request after the other (1,000 cases: ten requests), counting them and stoppable between two.
SELECT_ALL_MAX = 1000
BATCH_MERGE_HINT = gettext_lazy("从已选案件中选一件作为主案件，其余并入它")
BATCH_LABELS = {"merge": gettext_lazy("合并重复件")}

# --- the action forms of the case page ------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One input of an action form; `name` is the API's field name (errors come back under it)."""

    name: str
    label: Any
    kind: str = "text"  # text, textarea, select, datetime, file
    required: bool = False
    choices: tuple[tuple[str, Any], ...] = ()
    hint: Any = ""
    initial: str = ""


@dataclass(frozen=True)
class ActionForm:
    action: str  # the workflow's name; the API's slug spells it with hyphens
    label: Any
    fields: tuple[FormField, ...] = ()
    tone: str = "primary"  # primary (the loop goes on), secondary, danger (it stops or goes back)
    intro: Any = ""

    @property
    def slug(self) -> str:
        return self.action.replace("_", "-")


def _note(label: Any = None, required: bool = False) -> FormField:
    return FormField("note", label or gettext_lazy("备注"), "textarea", required)


def _reason(label: Any = None, required: bool = True) -> FormField:
    return FormField("reason", label or gettext_lazy("理由"), "textarea", required)


SEND_BACK_CHOICES = tuple((value, label) for value, label in SendBackReason.choices)
SATISFACTION_CHOICES = tuple(
    (str(n), f"{n} ★") for n in range(SATISFACTION_MAX, SATISFACTION_MIN - 1, -1)
)

ACTION_FORMS: dict[str, ActionForm] = {
    form.action: form
    for form in (
        ActionForm("register", gettext_lazy("立案"), (_note(),)),
        ActionForm(
            "dispatch",
            gettext_lazy("派遣"),
            (
                FormField("department", gettext_lazy("处置部门"), "select", True),
                FormField(
                    "assignee",
                    gettext_lazy("指派给个人（用户名，可不填）"),
                    hint=gettext_lazy("例：gridworker；不填则派给部门"),
                ),
                _note(gettext_lazy("派遣说明")),
            ),
        ),
        ActionForm("accept", gettext_lazy("签收"), (_note(),)),
        ActionForm("handle", gettext_lazy("开始处置"), (_note(gettext_lazy("处置说明")),)),
        ActionForm(
            "feed_back",
            gettext_lazy("反馈"),
            (
                FormField("feedback", gettext_lazy("处置结果"), "textarea", True),
                FormField(
                    "photos",
                    gettext_lazy("处置后照片"),
                    "file",
                    hint=gettext_lazy("可选多张，JPEG、PNG 或 WebP"),
                ),
            ),
        ),
        ActionForm("verify", gettext_lazy("确认核查通过"), (_note(gettext_lazy("核查意见")),)),
        ActionForm("close", gettext_lazy("结案"), (_note(),)),
        ActionForm(
            "evaluate",
            gettext_lazy("评价"),
            (
                FormField(
                    "satisfaction", gettext_lazy("满意度"), "select", True, SATISFACTION_CHOICES
                ),
                FormField("comment", gettext_lazy("评价意见"), "textarea"),
            ),
        ),
        ActionForm(
            "request_extension",
            gettext_lazy("申请延期"),
            (
                FormField("until", gettext_lazy("延期至"), "datetime", True),
                _reason(gettext_lazy("延期理由")),
            ),
            tone="secondary",
        ),
        ActionForm(
            "approve_extension",
            gettext_lazy("批准延期"),
            (
                FormField(
                    "until",
                    gettext_lazy("批准延期至（不填则按申请时间）"),
                    "datetime",
                ),
                _note(),
            ),
            tone="secondary",
        ),
        ActionForm(
            "decline_extension",
            gettext_lazy("驳回延期"),
            (_note(gettext_lazy("驳回理由"), required=True),),
            tone="secondary",
        ),
        ActionForm(
            "merge",
            gettext_lazy("合并到另一案件"),
            (
                FormField(
                    "into",
                    gettext_lazy("主案件编号"),
                    required=True,
                    hint=gettext_lazy("本案作为重复件并入该案件；可在下方“疑似重复”中一键选择"),
                ),
                _reason(required=False),
            ),
            tone="secondary",
        ),
        ActionForm("unmerge", gettext_lazy("撤销合并"), (_reason(required=False),), "secondary"),
        ActionForm(
            "call_out",
            gettext_lazy("增派协办"),
            (
                FormField(
                    "supports",
                    gettext_lazy("增派部门"),
                    "checkboxes",
                    True,
                    hint=gettext_lazy("所选部门与处置部门协同，可查看本案并接收动态，到场后确认。"),
                ),
                _note(gettext_lazy("增派说明")),
            ),
            tone="secondary",
        ),
        ActionForm("confirm_arrival", gettext_lazy("确认到场"), (_note(gettext_lazy("到场情况")),)),
        ActionForm(
            "support_report",
            gettext_lazy("协办反馈"),
            (
                FormField(
                    "note",
                    gettext_lazy("处置情况"),
                    "textarea",
                    True,
                    hint=gettext_lazy("例：已疏散群众 12 人，水泵 2 台到位。"),
                ),
            ),
        ),
        ActionForm("park", gettext_lazy("挂账"), (_reason(gettext_lazy("挂账理由")),), "secondary"),
        ActionForm("unpark", gettext_lazy("取消挂账"), (_note(),), tone="secondary"),
        ActionForm(
            "send_back",
            gettext_lazy("退单"),
            (
                FormField(
                    "reason_code", gettext_lazy("退单原因"), "select", True, SEND_BACK_CHOICES
                ),
                _reason(gettext_lazy("说明（原因为“其他”时必填）"), required=False),
            ),
            tone="danger",
        ),
        ActionForm(
            "rework",
            gettext_lazy("核查不通过（返工）"),
            (_note(gettext_lazy("不通过的原因"), required=True),),
            tone="danger",
        ),
        ActionForm("reject", gettext_lazy("不予立案"), (_reason(),), tone="danger"),
        ActionForm("reopen", gettext_lazy("重新打开"), (_reason(),), tone="danger"),
    )
}


def _strings() -> dict[str, Any]:
    """Text the console scripts show, translated on the server (Django i18n) for them."""
    return {
        "left": _("剩余 %(time)s"),
        "late": _("超时 %(time)s"),
        "day": _("天"),
        "newCase": _("新案件"),
        "queueHeld": _("队列有更新，鼠标移出列表或点此刷新"),
        "batchSelected": _("已选 %(n)s 件"),
        "batchTooMany": _("一次最多办理 %(max)s 件，请减少选择。"),
        "batchSubmit": _("%(action)s（%(n)s 件）"),
        "batchDone": _("%(action)s：%(done)s 件已办理。"),
        "batchMerged": _("%(action)s：%(done)s 件已并入 %(into)s。"),
        "batchFailed": _("%(failed)s 件未办理："),
        "batchMergeNeedsTwo": _("合并需要至少选择 2 件案件：1 件主案件和要并入它的案件。"),
        "batchDropped": _("%(n)s 件已选案件已不在当前列表中，已取消选择。"),
        "batchRunning": _("正在办理 %(n)s 件…"),
        "batchProgress": _("正在办理 %(done)s / %(n)s 件…"),
        "batchStopping": _("正在停止…"),
        "batchStopped": _("已停止：%(n)s 件未发送，仍为选中状态。"),
        "batchLeft": _("%(n)s 件尚无结果，仍为选中状态。"),
        "batchResume": _("继续%(action)s（剩余 %(n)s 件）"),
        "batchElsewhere": _("（其中 %(n)s 件在其他页）"),
        "batchPageChosen": _("已选本页 %(n)s 件。"),
        "batchAll": _("选择全部 %(n)s 件符合筛选的案件"),
        "batchAllLoading": _("正在读取符合筛选的案件…"),
        "batchAllChosen": _("已选全部 %(n)s 件符合筛选的案件（含其他页）。"),
        "batchPageOnly": _("只选本页 %(n)s 件"),
        "batchAllTooMany": _("符合筛选的共 %(n)s 件，超过一次可选的 %(max)s 件，请缩小筛选范围。"),
        "batchAllFailed": _("未能读取符合筛选的案件，请重试。"),
        "batchAllBadFilters": _("筛选条件有误（见列表上方），请改正后再选择全部。"),
        "batchReason": _("：%(reason)s"),
        "dismiss": _("关闭"),
        "caseChanged": _("案件已有新的进展，页面已更新。"),
        "saving": _("正在提交…"),
        "done": _("已完成：%(action)s"),
        "networkError": _("网络中断，未能确认是否提交成功；请重试（重试不会重复办理）。"),
        "notFound": _("案件不存在，或您无权查看。"),
        "forbidden": _("您无权执行此操作"),
        "conflict": _("案件状态已变化，此操作已不可用"),
        "tooLarge": _("提交的内容过大"),
        "busy": _("上一次提交仍在处理中，请稍后重试"),
        "keyReused": _("提交内容与上一次不一致，请刷新页面后重试"),
        "failed": _("提交失败"),
        "noPhotos": _("暂无照片"),
        "noDuplicates": _("未发现疑似重复案件"),
        "mergeInto": _("合并到此案件"),
        "metres": _("相距 %(metres)s 米"),
        "refreshFailed": _("刷新失败，稍后自动重试"),
        "caseGone": _(
            "此案件已不在您的办理范围内（例如已退单，或已改派给其他单位），无需您再办理。"
        ),
        "backToConsole": _("返回工作台"),
        "accepted": _("已签收"),
        "required": _("不能为空。"),
        "withCoords": _("%(text)s（%(coords)s）"),
        "labelled": _("%(label)s：%(value)s"),
        "fields": api_field_labels(),
        "zoomIn": _("放大"),
        "zoomOut": _("缩小"),
        "outside": _("该点不在辖区内（距区界 %(metres)s 米）"),
        "locating": _("正在查询位置…"),
        "locateFailed": _("位置查询失败"),
        "pickPoint": _("请在地图上点击问题位置。"),
        # Times the script draws read as the server's, whatever the browser's own zone.
        "timeZone": settings.TIME_ZONE,
        "chooseCategory": _("请选择事项分类。"),
        "created": _("已受理"),
        "nearbyMetres": _("%(m)s 米"),
        "nearbyKilometres": _("%(km)s 公里"),
        "reportedAt": _("%(at)s 上报"),
        "showOnMap": _("在地图上查看"),
        "justNow": _("刚刚"),
        "minutesAgo": _("%(n)s 分钟前"),
        "hoursAgo": _("%(n)s 小时前"),
        "responderRoles": {
            Role.GRID_WORKER.value: str(Role.GRID_WORKER.label),
            Role.DEPARTMENT_HANDLER.value: str(Role.DEPARTMENT_HANDLER.label),
        },
        "statuses": {value: str(label) for value, label in S.choices},
        "owners": {value: str(label) for value, label in OwnerLevel.choices},
        "photoKinds": {value: str(label) for value, label in PhotoKind.choices},
    }


# --- access --------------------------------------------------------------------------------------


def _role(user: Any) -> str:
    return str(getattr(user, "role", "") or "") if user.is_active else ""


def _place(user: Any) -> str:
    return str(getattr(user, "place_code", "") or "")


def _department(user: Any) -> str:
    return str(getattr(user, "department_code", "") or "")


def _district_wide(user: Any) -> bool:
    return _role(user) in DISTRICT_WIDE


def _may_open_street(user: Any, code: str) -> bool:
    role = _role(user)
    if role in DISTRICT_WIDE:
        return code.startswith(_place(user))  # an admin has no place: every street
    return role == Role.STREET_OPERATOR and _place(user) == code


def _may_open_community(user: Any, code: str) -> bool:
    role = _role(user)
    place = _place(user)
    if role in DISTRICT_WIDE:
        return code.startswith(place)
    if role == Role.STREET_OPERATOR:
        return bool(place) and code.startswith(place)  # the communities of their street
    return role == Role.COMMUNITY_STAFF and place == code


def _region_or_404(level: str, code: str) -> Region:
    generation = gridmap_selectors.active_generation()
    region = (
        gridmap_selectors.region_by_code(generation=generation, code=code) if generation else None
    )
    if region is None or region.level != level:
        raise Http404(_("没有代码为 %(code)s 的区域。") % {"code": code})
    return region


def home_console_url(user: Any) -> str | None:
    """Where a user works: their street's or community's console, their department's, or the
    list of consoles for the district; None for roles without a console."""
    role = _role(user)
    if role == Role.STREET_OPERATOR and _place(user):
        return reverse("console-street", args=[_place(user)])
    if role == Role.COMMUNITY_STAFF and _place(user):
        return reverse("console-community", args=[_place(user)])
    if role == Role.DEPARTMENT_HANDLER and _department(user):
        return reverse("console-department")
    if role in DISTRICT_WIDE:
        return reverse("console-index")
    return None


def workplace_url(user: Any) -> str:
    """Where a user lands after signing in with no page to return to: a grid worker on the
    phone's report page (/m/, its tasks one tab away), an auditor on the audit trail
    (/command/audit/), everyone with a console on it (district operators and admins on the list
    of consoles), the rest on the home page."""
    role = _role(user)
    if role == Role.GRID_WORKER:
        return reverse("mobile-report")
    if role == Role.AUDITOR:
        return reverse("console-audit")
    return home_console_url(user) or reverse("home")


# --- the live feed -------------------------------------------------------------------------------


def _feed(request: HttpRequest) -> dict[str, Any]:
    """What the page's live feed starts from: the scopes the server lets this user join and the
    latest sequence number of each (the snapshot being rendered is at least that recent)."""
    scopes = scopes_for_connection(request.user, request.session)
    return {"scopes": scopes, "seqs": latest_seqs(scopes)}


def days_filter(params: Any) -> tuple[str, str, dict[str, str]]:
    """The 从/至 days of a list page's filters (`since`, `until`: local days, both inclusive) as
    the form shows them again, and what is wrong with each bad one, in words. A day that is not
    a date is left out; a reversed range keeps `since` only."""
    since, until, problems = incident_selectors.received_days(
        params.get("since", ""), params.get("until", "")
    )
    words = {
        incident_selectors.DAYS_REVERSED: _("结束日期早于开始日期"),
        incident_selectors.BAD_DAY: _("日期格式为 年-月-日，例如 2026-11-24"),
        incident_selectors.DAY_OUT_OF_RANGE: _("日期须在 %(first)s 至 %(last)s 之间")
        % {"first": incident_selectors.FIRST_DAY, "last": incident_selectors.LAST_DAY},
    }
    return (
        since.isoformat() if since else "",
        until.isoformat() if until and "until" not in problems else "",
        {name: words[problem] for name, problem in problems.items()},
    )


# --- queues --------------------------------------------------------------------------------------


# The filter fields as the form labels them, to name a bad one above the queue.
FILTER_LABELS = {
    "status": gettext_lazy("办理状态"),
    "category": gettext_lazy("事项分类"),
    "overdue": gettext_lazy("时限"),
    "response": gettext_lazy("应急响应"),
    "since": gettext_lazy("受理日期从"),
    "until": gettext_lazy("受理日期至"),
    "order": gettext_lazy("排序"),
    "size": gettext_lazy("每页"),
    "owner": gettext_lazy("负责层级"),
    "share": gettext_lazy("承办或协办"),
}
# A department's part in its cases (部门工作台): dispatched to it, or called out beside (协办).
DEPARTMENT_SHARES = ("", "lead", "support")


@dataclass
class QueueFilters:
    status: str = OPEN
    category: str = ""
    owner: str = ""  # "" or an OwnerLevel: the tier that owns the case now
    share: str = ""  # a department's console: "" all, "lead" dispatched to it, "support" 协办
    overdue: str = ""  # "", "true", "false"
    response: str = ""  # "", "true": only the cases with departments called out (应急响应)
    q: str = ""
    since: str = ""  # received on or after this local day (YYYY-MM-DD)
    until: str = ""  # received on or before this local day
    order: str = "deadline"
    size: str = PAGE_SIZES[0]
    page: str = "1"
    errors: dict[str, str] = field(default_factory=dict)

    def labelled_errors(self) -> list[tuple[str, str]]:
        """(the field's label, what is wrong) for each bad filter."""
        return [(str(FILTER_LABELS[name]), message) for name, message in self.errors.items()]

    def days(self) -> tuple[date | None, date | None]:
        """The received-date range as dates (a bad value has been emptied by _filters)."""
        since = date.fromisoformat(self.since) if self.since else None
        until = date.fromisoformat(self.until) if self.until else None
        return since, until

    def narrowing(self) -> dict[str, Any]:
        """The filters besides status and time limit, as incident_queue's arguments: what the
        queue and its chips both narrow by."""
        since, until = self.days()
        return {
            "category_code": self.category,
            "owner_level": self.owner,
            "department_share": self.share,
            "text": self.q,
            "since": since,
            "until": until,
        }

    @property
    def narrows(self) -> bool:
        return bool(self.category or self.owner or self.share or self.q or self.since or self.until)

    def query(self, **changes: str) -> str:
        """The query string of these filters with `changes` (empty values left out)."""
        values = {
            "status": self.status,
            "category": self.category,
            "owner": self.owner,
            "share": self.share,
            "overdue": self.overdue,
            "response": self.response,
            "q": self.q,
            "since": self.since,
            "until": self.until,
            "order": self.order,
            "size": self.size,
            "page": self.page,
            **changes,
        }
        if values["status"] == OPEN:
            values["status"] = ""  # the default
        if values["order"] == "deadline":
            values["order"] = ""
        if values["size"] == PAGE_SIZES[0]:
            values["size"] = ""
        if values["page"] == "1":
            values["page"] = ""
        return urlencode({k: v for k, v in values.items() if v})


def _filters(request: HttpRequest) -> QueueFilters:
    """The queue's filters from the query string; a bad value is named in `errors` (the page
    answers 400 with the message beside the field) and left out of the query."""
    params = request.GET
    filters = QueueFilters(q=params.get("q", "").strip()[:100], page=params.get("page", "1"))
    status = params.get("status", "") or OPEN
    if status in _STATUS_FILTER or status in S.values:
        filters.status = status
    else:
        filters.errors["status"] = _("“%(value)s”不是有效的状态") % {"value": status}
    category = params.get("category", "").strip()
    if category:
        if category.isdigit() and len(category) == 5:
            filters.category = category
        else:
            filters.errors["category"] = _("事项代码为 5 位数字")
    owner = params.get("owner", "")
    if owner in ("", *OwnerLevel.values):
        filters.owner = owner
    else:
        filters.errors["owner"] = _("只能为社区、街道或区")
    share = params.get("share", "")
    if share in DEPARTMENT_SHARES:
        filters.share = share
    else:
        filters.errors["share"] = _("只能为“承办”或“协办”")
    overdue = params.get("overdue", "")
    if overdue in ("", "true", "false"):
        filters.overdue = overdue
    else:
        filters.errors["overdue"] = _("只能为“已超时”或“未超时”")
    response = params.get("response", "")
    if response in ("", "true"):
        filters.response = response
    else:
        filters.errors["response"] = _("只能为“应急响应中”")
    filters.since, filters.until, day_errors = days_filter(params)
    filters.errors.update(day_errors)
    order = params.get("order", "") or "deadline"
    if order in QUEUE_ORDERS:
        filters.order = order
    else:
        filters.errors["order"] = _("未知的排序方式")
    size = params.get("size", "") or PAGE_SIZES[0]
    if size in PAGE_SIZES:
        filters.size = size
    else:
        filters.errors["size"] = _("每页只能显示 %(sizes)s 件") % {"sizes": "、".join(PAGE_SIZES)}
    return filters


def _statuses(name: str) -> str | tuple[str, ...]:
    """What the selector's `status` takes for a filter value (a filter name or a status)."""
    return _STATUS_FILTER.get(name, name)


def _categories_grouped() -> list[dict[str, Any]]:
    """The active categories grouped by major class, for pickers and filters; classes and
    categories are named in the reader's language (`Category.major_label`, `label`)."""
    groups: dict[str, dict[str, Any]] = {}
    for category in incident_selectors.categories_for_picker():
        group = groups.setdefault(
            category.major_code,
            {"code": category.major_code, "name": category.major_label, "items": []},
        )
        group["items"].append(category)
    return list(groups.values())


def _department_names() -> dict[str, str]:
    return dict(incident_selectors.departments())


def _deadline_state(incident: Incident, now: datetime) -> str:
    """ok / warn (80 % of the stage's time used, or a warning was given) / late / "" (no clock)."""
    deadline, started = incident.stage_deadline, incident.stage_started_at
    if deadline is None:
        return ""
    if deadline <= now:
        return "late"
    if incident.stage_warned:
        return "warn"
    if started is not None and deadline > started:
        used = (now - started) / (deadline - started)
        if used >= 0.8:
            return "warn"
    return "ok"


@dataclass
class QueueRow:
    incident: Incident
    deadline_state: str
    department_name: str
    # The queue's column names the department short ("水务", "Water Affairs"), the full name
    # and code in its title.
    department_short_name: str
    extension_pending: bool
    summary: str  # its tick box's (pick_summary)
    response: dict[str, Any] | None = None  # _response: departments called out (应急响应)


def _response(incident: Incident) -> dict[str, Any] | None:
    """What a queue row says of a case with departments called out (协办: a response plan, or
    增派 by hand): how many of them have confirmed their arrival, and in its title the plan,
    who has arrived and who not, by short name. None for a case without."""
    codes = incident.support_department_codes
    if not codes:
        return None
    arrived = [code for code in codes if code in incident.support_arrived_codes]
    owed = [code for code in codes if code not in arrived]
    plan = known_plans().get(incident.plan_code)
    parts = [plan.label if plan is not None else _("增派协办")]
    if arrived:
        parts.append(_("已到场：%(names)s") % {"names": department_short_names_text(arrived)})
    if owed:
        parts.append(_("未到场：%(names)s") % {"names": department_short_names_text(owed)})
    return {"arrived": len(arrived), "called": len(codes), "title": " · ".join(parts)}


def pick_summary(incident: Incident) -> str:
    """What the batch bar calls a ticked case (the merge's list of primaries): its category,
    grid and when it was received, "暴露垃圾 · 三联社区第1网格 · 11-26 09:14". The row's tick box
    carries it (data-summary), and ?fragment=numbers gives it for the cases of the other pages."""
    received = formats.date_format(timezone.localtime(incident.created_at), "m-d H:i")
    return f"{incident.category.label} · {incident.grid_name} · {received}"


def _rows(incidents: Iterable[Incident], departments: dict[str, str]) -> list[QueueRow]:
    now = timezone.now()
    short_names = department_short_names()
    return [
        QueueRow(
            incident=incident,
            deadline_state=_deadline_state(incident, now),
            department_name=departments.get(incident.assigned_department_code, ""),
            department_short_name=short_names.get(incident.assigned_department_code, ""),
            extension_pending=incident.extension_pending,
            summary=pick_summary(incident),
            response=_response(incident),
        )
        for incident in incidents
    ]


def _chips(
    user: Any,
    area: dict[str, Any],
    chips: Iterable[tuple[str, Any]],
    filters: QueueFilters,
    *,
    department: bool = False,
) -> list[dict[str, Any]]:
    """The counts above a queue: open cases per stage of the loop, and the overdue ones, within
    the queue's other filters (category, search, received days), so that a console narrowed to
    积水 on a typhoon day reads how many of those wait at each stage. Each chip's link keeps
    those filters and picks its stage (the overdue chip: every open case past its time).

    A street's, community's or the district's console has one more chip, 应急响应: the open
    cases with departments called out (a response plan started, or 增派协办), whose rows say
    who is called out and who has arrived. A department's console (`department`) counts at each
    stage the cases dispatched to it, the ones it is to accept and handle, and has one more chip
    instead, 协办: the open cases it was called out on beside another department."""
    share = "lead" if department else filters.share
    narrowed = {**filters.narrowing(), **area, "department_share": share}

    def chip(name: str, label: Any, count: int, **picks: str) -> dict[str, Any]:
        """A chip: its link picks its status, share, overdue and response (the other filters
        kept), and it is current when the queue shows just that."""
        chosen = {"status": OPEN, "share": share, "overdue": "", "response": "", **picks}
        return {
            "name": name,
            "label": label,
            "count": count,
            "href": "?" + filters.query(**chosen, page="1"),
            "current": all(getattr(filters, key) == value for key, value in chosen.items()),
        }

    counts = incident_selectors.incident_status_counts(
        incident_selectors.incident_queue(user, status=OPEN, **narrowed)
    )
    result = [
        chip(name, label, sum(counts.get(s, 0) for s in _statuses(name)), status=name)
        for name, label in chips
    ]
    overdue = incident_selectors.incident_queue(user, status=OPEN, overdue=True, **narrowed)
    result.append(chip("overdue", _("超过时限"), overdue.count(), overdue="true"))
    if department:
        supported = {**narrowed, "department_share": "support"}
        count = incident_selectors.incident_queue(user, status=OPEN, **supported).count()
        result.append(chip("support", _("协办"), count, share="support"))
    else:
        responding = incident_selectors.incident_queue(
            user, status=OPEN, in_response=True, **narrowed
        )
        result.append(chip("response", _("应急响应"), responding.count(), response="true"))
    return result


def _ago(moment: datetime, now: datetime) -> str:
    """How long ago a responder reported, as the consoles show it ("3 分钟前"); console.js
    (`agoText`) words it the same way when it refreshes the text."""
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return _("刚刚")
    if minutes < 60:
        return _("%(n)s 分钟前") % {"n": minutes}
    return _("%(n)s 小时前") % {"n": minutes // 60}


def _area_responders(user: Any, area: Mapping[str, str]) -> dict[str, Any] | None:
    """在岗响应人员 of a street's or community's console: the responders sharing a position
    inside the area that `user` may see (dispatch.selectors: stale positions are left out there),
    by grid code then name, each with its role and "ago" text. None when the user's role sees
    nobody's position (an admin without a place): the page then shows no panel at all."""
    if not may_see_responders(user):
        return None
    now = timezone.now()
    roles = dict(Role.choices)
    level, code = next(iter(area.items()))  # {"street": code} or {"community": code}
    shown = []
    for responder in responders_visible_to(user, now=now):
        if responder[level]["code"] != code:
            continue
        at = datetime.fromisoformat(responder["at"].replace("Z", "+00:00"))
        responder["role_label"] = str(roles.get(responder["role"], responder["role"]))
        responder["ago"] = _ago(at, now)
        shown.append(responder)
    shown.sort(
        key=lambda responder: (responder["grid"]["code"], responder["name"], responder["id"])
    )
    return {
        "responders": shown,
        "config": {
            "match": dict(area),
            "now": now.isoformat().replace("+00:00", "Z"),
            "maxAgeMinutes": settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES,
            # Reloaded from here after a resync (the user's place; the script keeps the area's).
            "listUrl": reverse("responder-positions"),
            "responders": shown,
        },
        "max_age_minutes": settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES,
    }


def _queue_page(
    request: HttpRequest,
    *,
    area: dict[str, Any],
    chips: Iterable[tuple[str, Any]],
    template: str,
    context: dict[str, Any],
    batch: tuple[str, ...] = (),
    responders_area: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Render a console (or, with ?fragment=queue, only its queue: what the script fetches when
    the filters change or the live feed reports a change). `batch`: the actions offered on the
    cases ticked in the queue (批量办理; none: no tick boxes). `responders_area`
    ({"street": code} or {"community": code}) adds the panel of the responders on duty there
    (full page only)."""
    user = request.user
    filters = _filters(request)
    cases = incident_selectors.incident_queue(
        user,
        status=_statuses(filters.status),
        overdue={"true": True, "false": False}.get(filters.overdue),
        in_response=True if filters.response else None,
        order=filters.order,
        **filters.narrowing(),
        **area,
    )
    if request.GET.get("fragment") == "numbers":
        return _queue_numbers(cases, filters)
    departments = _department_names()
    if request.GET.get("export") == "csv" and not filters.errors:
        return _export(request, cases, filters, area, departments)
    # The feed's position is read before the data (`cases` is not read yet): an event committed
    # in between is replayed on top of a snapshot that may already have it (reloading the
    # queue, replacing a responder's position are both harmless twice), never lost.
    feed = _feed(request)
    page: Page[Incident] = Paginator(cases, int(filters.size)).get_page(filters.page)
    filters.page = str(page.number)
    context = {
        **context,
        "export_url": "?" + filters.query(page="1", export="csv"),
        "export_limit": export_limit(),
        "filters": filters,
        "page": page,
        "rows": _rows(page.object_list, departments),
        "chips": _chips(user, area, chips, filters, department="department_code" in area),
        "feed": feed,
        "status_filters": [(name, label) for name, label, _kept in STATUS_FILTERS],
        "category_groups": _categories_grouped(),
        "page_links": page_links(page, filters),
        "strings": _strings(),
        "generation": gridmap_selectors.active_generation(),
        "batch": batch,
        "page_sizes": PAGE_SIZES,
        "owner_levels": OwnerLevel.choices,
    }
    status = 400 if filters.errors else 200
    if request.GET.get("fragment") == "queue":
        return render(request, "command/console_queue.html", context, status=status)
    context["batch_forms"] = _action_forms(batch, None, departments)
    context["batch_max"] = BATCH_MAX
    context["select_max"] = SELECT_ALL_MAX
    if responders_area is not None:
        context["duty"] = _area_responders(user, responders_area)
    return render(request, template, context, status=status)


def _queue_numbers(cases: QuerySet[Incident], filters: QueueFilters) -> JsonResponse:
    """选择全部 (?fragment=numbers): every case the queue's filters match, on every page, in the
    queue's order, as `{"total": n, "max": SELECT_ALL_MAX, "too_many": false, "cases":
    [{"number": …, "summary": …}]}` (the summary its tick box carries); more than SELECT_ALL_MAX
    → `too_many` true, their `total` and no cases. The same queryset as the queue: its filters
    and the user's scope. A bad filter → 400 `{"<filter>": ["reason"]}` (the queue leaves it
    out and says so; a selection must not silently take more than was asked for). One query
    (two when there are too many: the count)."""
    if filters.errors:
        return JsonResponse(
            {name: [message] for name, message in filters.errors.items()}, status=400
        )
    limit = SELECT_ALL_MAX
    picked = list(
        cases.select_related(None)
        .select_related("category")
        .only("number", "grid_name", "created_at", "category__name", "category__name_en")[
            : limit + 1
        ]
    )
    answer: dict[str, Any] = {"total": len(picked), "max": limit, "too_many": False, "cases": []}
    if len(picked) > limit:
        answer.update(total=cases.count(), too_many=True)
    else:
        answer["cases"] = [
            {"number": case.number, "summary": pick_summary(case)} for case in picked
        ]
    return JsonResponse(answer)


def _export(
    request: HttpRequest,
    cases: QuerySet[Incident],
    filters: QueueFilters,
    area: Mapping[str, str],
    departments: dict[str, str],
) -> HttpResponse:
    """台账导出 (?export=csv): every case of the queue with its filters, as a CSV download."""
    ((level, code),) = area.items()
    console = f"{level.removesuffix('_code')}:{code}"
    return csv_download(
        lambda: queue_export(
            user=request.user,
            cases=cases,
            console=console,
            filters=dict(parse_qsl(filters.query(page="1"))),
            departments=departments,
            ip=request_ip(request),
        ),
        name=f"cityops-{console.replace(':', '-')}",
        too_large=_(
            "export：符合条件的案件有 %(count)s 件，一个文件最多 %(limit)s 件；"
            "请缩小筛选范围（状态、事项、时限、受理日期、搜索）后再导出。"
        ),
    )


def csv_download(produce: Callable[[], bytes], *, name: str, too_large: str) -> HttpResponse:
    """An export (command.exports) as a download, `<name>-<local time>.csv`; or, when more rows
    match than one file holds, 400 with `too_large` (its %(count)s and %(limit)s filled in)."""
    try:
        data = produce()
    except ExportTooLarge as exc:
        message = too_large % {"count": exc.count, "limit": exc.limit}
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(data, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def page_links(page: Page[Any], filters: Any) -> dict[str, str]:
    """The pager's links of a list page: its filters' query string (`filters.query`) with the
    previous or next page's number."""
    links = {}
    if page.has_previous():
        links["previous"] = "?" + filters.query(page=str(page.previous_page_number()))
    if page.has_next():
        links["next"] = "?" + filters.query(page=str(page.next_page_number()))
    return links


@login_required
def console_index(request: HttpRequest) -> HttpResponse:
    """The consoles a district operator may open: every street and its communities."""
    user = request.user
    if not _district_wide(user):
        url = home_console_url(user)
        if url is None:
            raise Http404(_("您的账号没有工作台。"))
        return redirect(url)
    generation = gridmap_selectors.active_generation()
    streets: list[dict[str, Any]] = []
    if generation is not None:
        communities: dict[str, list[Region]] = {}
        for region in gridmap_selectors.regions_for_listing(
            generation=generation, level=Level.COMMUNITY, parent_code=None
        ):
            communities.setdefault(region.parent.code if region.parent else "", []).append(region)
        counts = incident_selectors.incident_street_open_counts(user)
        for street in gridmap_selectors.regions_for_listing(
            generation=generation, level=Level.STREET, parent_code=None
        ):
            if street.code.startswith(_place(user)):
                streets.append(
                    {
                        "region": street,
                        "open": counts.get(street.code, 0),
                        "communities": communities.get(street.code, []),
                    }
                )
    return render(
        request,
        "command/console_index.html",
        {"nav": "console", "streets": streets, "generation": generation},
    )


@login_required
def district_console(request: HttpRequest) -> HttpResponse:
    """区指挥中心: every case of the district in one queue, filtered like a street's; 负责层级 区
    picks the district's own (its triage 属地兜底, what escalation raised to it, arbitration)."""
    user = request.user
    if not _district_wide(user):
        raise Http404(_("没有这个工作台，或您无权查看。"))
    generation = gridmap_selectors.active_generation()
    region = next(
        (
            district
            for district in (
                gridmap_selectors.regions_for_listing(
                    generation=generation, level=Level.DISTRICT, parent_code=None
                )
                if generation is not None
                else ()
            )
            if district.code.startswith(_place(user))  # an admin has no place: the district
        ),
        None,
    )
    if region is None:
        raise Http404(_("尚无启用的边界版本。"))
    return _queue_page(
        request,
        area={"district_code": region.code},
        chips=QUEUE_CHIPS,
        template="command/console_area.html",
        batch=AREA_BATCH,
        context={
            "nav": "console",
            "kind": "district",
            "region": region,
            "live_match": {},
            "title": f"{region.name} {OwnerLevel.DISTRICT.label}",
        },
    )


@login_required
def street_console(request: HttpRequest, code: str) -> HttpResponse:
    if not _may_open_street(request.user, code):
        raise Http404(_("没有这个工作台，或您无权查看。"))
    region = _region_or_404(Level.STREET, code)
    return _queue_page(
        request,
        area={"street_code": code},
        chips=QUEUE_CHIPS,
        template="command/console_area.html",
        batch=AREA_BATCH,
        responders_area={"street": code},
        context={
            "nav": "console",
            "kind": "street",
            "region": region,
            "live_match": {"street": code},
            "title": _("%(name)s分中心") % {"name": region.name},
        },
    )


@login_required
def community_console(request: HttpRequest, code: str) -> HttpResponse:
    if not _may_open_community(request.user, code):
        raise Http404(_("没有这个工作台，或您无权查看。"))
    region = _region_or_404(Level.COMMUNITY, code)
    return _queue_page(
        request,
        area={"community_code": code},
        chips=QUEUE_CHIPS,
        template="command/console_area.html",
        batch=AREA_BATCH,
        responders_area={"community": code},
        context={
            "nav": "console",
            "kind": "community",
            "region": region,
            "live_match": {"community": code},
            "title": _("%(name)s工作站") % {"name": region.name},
        },
    )


@login_required
def department_console(request: HttpRequest) -> HttpResponse:
    user = request.user
    department = _department(user)
    if _role(user) != Role.DEPARTMENT_HANDLER or not department:
        raise Http404(_("部门工作台只供职能部门处置人员使用。"))
    name = _department_names().get(department, department)
    return _queue_page(
        request,
        area={"department_code": department},
        chips=DEPARTMENT_CHIPS,
        template="command/console_department.html",
        batch=DEPARTMENT_BATCH,
        context={
            "nav": "console",
            "kind": "department",
            "department_code": department,
            "in_hand": sorted(IN_HAND),
            "row_forms": _action_forms(DEPARTMENT_ROW_FORMS, None, {}),
            "department_name": name,
            "live_match": {"department": department},
            "title": name,
        },
    )


# --- the case page -------------------------------------------------------------------------------

# Keys of a timeline step's details that the page shows, with their labels (the escalation
# worker's steps have their own: _clock_details).
DETAIL_LABELS: dict[str, Any] = {
    "department": gettext_lazy("部门"),
    "plan": gettext_lazy("应急预案"),
    "severity": gettext_lazy("事件级别"),
    "supports": gettext_lazy("协办部门"),
    "stage_deadline": gettext_lazy("新时限"),
    "requested_until": gettext_lazy("申请延期至"),
    "granted_until": gettext_lazy("批准延期至"),
    "into": gettext_lazy("并入"),
    "from": gettext_lazy("原主案件"),
    "satisfaction": gettext_lazy("满意度"),
    "send_backs": gettext_lazy("退单次数"),
    "reworks": gettext_lazy("返工次数"),
}


def _detail_value(key: str, value: Any, departments: dict[str, str], *, short: bool = False) -> str:
    if key == "department" and value and short:
        return department_short_names().get(value) or value
    if key == "department" and value:
        return f"{value} {departments.get(value, '')}".strip()
    if key == "supports" and isinstance(value, list):
        return department_short_names_text(str(code) for code in value)
    if key == "plan" and value in known_plans():
        return known_plans()[value].label
    if key == "severity" and isinstance(value, list):  # raised by a graver plan: [before, after]
        return " → ".join(str(Severity(level).label) if level else _("（空）") for level in value)
    if key in ("stage_deadline", "requested_until", "granted_until") and value:
        moment = value if isinstance(value, datetime) else _parse_iso(str(value))
        if moment is not None:
            return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# The escalation worker's steps: their data is the clock as it stood (not a new deadline) and,
# for a 督办, the owner before and after (not a merge's former primary).
CLOCK_STEPS = ("warn", "escalate")


def _clock_details(incident: Incident, action: str, data: dict[str, Any]) -> list[tuple[Any, str]]:
    details: list[tuple[Any, str]] = []
    if data.get("stage_deadline"):
        deadline = _detail_value("stage_deadline", data["stage_deadline"], {})
        details.append((_("环节时限"), deadline))
    owners = [data.get("from"), data.get("to")]
    if action == "escalate" and all(isinstance(o, list) and len(o) == 2 for o in owners):
        moved = " → ".join(_owner_words(incident, str(o[0]), str(o[1])) for o in owners if o)
        details.append((_("督办"), moved))
    if action == "escalate" and data.get("escalations"):
        details.append((capfirst(_("督办次数")), str(data["escalations"])))
    return details


def _owner_words(incident: Incident, level: str, code: str) -> str:
    """A centre that owned the case: "三联社区 社区工作站", by the case's own place names."""
    names: dict[tuple[str, str], str] = {
        (OwnerLevel.COMMUNITY, incident.community_code): incident.community_name,
        (OwnerLevel.STREET, incident.street_code): incident.street_name,
        (OwnerLevel.DISTRICT, incident.district_code): incident.district_name,
    }
    label = OwnerLevel(level).label if level in OwnerLevel.values else level
    return f"{names.get((level, code)) or code} {label}"


def _timeline(incident: Incident, departments: dict[str, str]) -> list[dict[str, Any]]:
    steps = []
    roles = dict(Role.choices)
    reasons = dict(SendBackReason.choices)
    statuses = dict(S.choices)
    for step in incident_selectors.incident_timeline(incident):
        data = step.data or {}
        if step.action in CLOCK_STEPS:
            details = _clock_details(incident, step.action, data)
        else:
            # A step that keeps the status keeps its clock: no "new deadline" unless an
            # extension was granted.
            kept = step.from_status == step.to_status and "granted_until" not in data
            # A 协办 step's department is the one that spoke, named as the 协办 list names it.
            short = step.action in SUPPORT_STEPS
            details = [
                (capfirst(str(label)), _detail_value(key, data[key], departments, short=short))
                for key, label in DETAIL_LABELS.items()
                if data.get(key) not in (None, "") and not (kept and key == "stage_deadline")
            ]
        if data.get("arbitration"):
            details.append((_("仲裁"), _("退单满三次，转区指挥中心")))
        if "approved" in data:
            details.append((_("结果"), _("批准") if data["approved"] else _("驳回")))
        actor = step.actor
        steps.append(
            {
                "step": step,
                "label": action_label(step.action),
                "actor": actor.display_name if actor else "",
                "role": roles.get(step.actor_role, step.actor_role),
                "from": statuses.get(step.from_status, step.from_status),
                "to": statuses.get(step.to_status, step.to_status),
                "reason_code": reasons.get(step.reason_code, step.reason_code),
                "details": details,
            }
        )
    return steps


def _action_forms(
    actions: Iterable[str], incident: Incident | None, departments: dict[str, str]
) -> list[dict[str, Any]]:
    """The forms of `actions` with their fields' choices and first values: for one case's page,
    or (`incident` None) for a batch on the queue, where a dispatch names no department until
    one is chosen and a merge's primary is chosen among the selected cases (the script fills
    that list)."""
    forms = []
    for action in actions:
        form = ACTION_FORMS.get(action)
        if form is None:
            continue
        fields = []
        for spec in form.fields:
            choices = spec.choices
            initial = spec.initial
            if action == "dispatch" and spec.name == "department":
                choices = tuple((code, f"{code} · {name}") for code, name in departments.items())
                if incident is None:
                    choices = (("", _("请选择部门")), *choices)
                else:
                    initial = incident.assigned_department_code or incident.category.department_code
            if action == "call_out" and spec.name == "supports" and incident is not None:
                on_case = {incident.assigned_department_code, *incident.support_department_codes}
                short_names = department_short_names()
                choices = tuple(
                    (code, short_names.get(code) or name)
                    for code, name in departments.items()
                    if code not in on_case
                )
            if action == "merge" and spec.name == "into" and incident is None:
                spec = replace(spec, kind="select", hint=BATCH_MERGE_HINT)
            fields.append({"spec": spec, "choices": choices, "initial": initial})
        label = BATCH_LABELS.get(action, form.label) if incident is None else form.label
        forms.append({"form": form, "fields": fields, "label": label})
    return forms


# 一键调派: the response plan form, first on the case page of an emergency that may be dispatched
# now (dispatch.services.plan_activate registers a case still 已上报 first). Posted to
# /api/v1/incidents/<number>/plans/.
PLAN_FORM = ActionForm(
    "plans",
    gettext_lazy("一键调派（启动应急预案）"),
    (
        FormField("plan", gettext_lazy("应急预案"), "select", True),
        _note(gettext_lazy("调派说明")),
    ),
)
# On a case in hand a plan calls its departments out beside the one handling it (增派), and a
# graver one raises the response (升级响应): a deliberate step, not the page's first.
PLAN_IN_HAND_FORM = replace(PLAN_FORM, label=gettext_lazy("启动或升级应急预案"), tone="secondary")
_PLAN_STATUSES = (S.REPORTED, S.REGISTERED, S.RETURNED)


def _plan_words(plan: ResponsePlan) -> str:
    """A plan in words: "内涝积水一般响应：水务牵头，街道、交警协办。" and what each does."""
    return _("%(plan)s：%(lead)s牵头，%(supports)s协办。%(instructions)s") % {
        "plan": plan.label,
        "lead": department_short_names_text([plan.lead]),
        "supports": department_short_names_text(plan.supports),
        "instructions": plan.instructions_label,
    }


def _plan_choice(plan: ResponsePlan, severity: str) -> tuple[str, str]:
    """A plan as the form offers it; one graver than the case says it raises the severity."""
    if plan.raises(severity):
        return plan.code, _("%(plan)s（升级为%(severity)s）") % {
            "plan": plan.label,
            "severity": Severity(plan.min_severity).label,
        }
    return plan.code, plan.label


def _plan_forms(incident: Incident, actions: list[str]) -> list[dict[str, Any]]:
    """The 一键调派 form, when plans exist for the case's category and the user may register or
    dispatch it now, or call departments out on it in hand (增派). Its choices: the plans that
    apply, gravest first, then those that would raise the case's severity (升级响应) — on a case
    in hand only those that would call out a department or raise the severity. Chosen
    first: the plan the case's severity calls for; on a case in hand that already has a plan,
    the next graver one."""
    if incident.status in _PLAN_STATUSES and {"register", "dispatch"} & set(actions):
        form = PLAN_FORM
    elif incident.status in IN_HAND and "call_out" in actions:
        form = PLAN_IN_HAND_FORM
    else:
        return []
    applying = plans_for(incident.category.code, incident.severity)
    graver = graver_plans(incident.category.code, incident.severity)
    plans = [plan for plan in (*applying, *graver) if not plan.lesser_than(incident.plan_code)]
    if form is PLAN_IN_HAND_FORM:  # only a plan that would change something
        on_case = {incident.assigned_department_code, *incident.support_department_codes}
        plans = [
            plan
            for plan in plans
            if plan.raises(incident.severity) or {plan.lead, *plan.supports} - on_case
        ]
    if not plans:
        return []
    initial = graver[0].code if incident.plan_code and graver else plans[0].code
    plan_field, note_field = form.fields
    hint = " ".join(_plan_words(plan) for plan in plans)
    return [
        {
            "form": form,
            "label": form.label,
            "fields": [
                {
                    "spec": replace(plan_field, hint=hint),
                    "choices": tuple(_plan_choice(plan, incident.severity) for plan in plans),
                    "initial": initial,
                },
                {"spec": note_field, "choices": (), "initial": ""},
            ],
        }
    ]


def _case_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    user = request.user
    departments = _department_names()
    actions = incident_selectors.incident_actions_for(user, incident)
    called_out = (
        incident_selectors.incident_supports(incident) if incident.support_department_codes else []
    )
    plans = known_plans()
    for row in called_out:
        row["plan_label"] = plans[row["plan"]].label if row["plan"] in plans else row["plan"]
    return {
        "incident": incident,
        "row": _rows([incident], departments)[0],
        "status_label": S(incident.status).label,
        "stage_label": Stage(incident.stage).label if incident.stage else "",
        "channel_label": Channel(incident.channel).label,
        "severity_label": Severity(incident.severity).label if incident.severity else "",
        "owner_label": incident.owner_label,
        "department_name": departments.get(incident.assigned_department_code, ""),
        "reporter_phone": incident.phone_for(user),
        "timeline": _timeline(incident, departments),
        "actions": actions,
        "action_forms": [
            *_plan_forms(incident, actions),
            *_action_forms(actions, incident, departments),
        ],
        "called_out": called_out,
        "arrived_count": sum(1 for row in called_out if row["arrived_at"] is not None),
        "may_merge": "merge" in actions,
        "merged": incident_selectors.incident_merged_cases(incident, user),
    }


def _distance_text(metres: int) -> str:
    """A distance as the case page shows it: "40 米", "2.4 公里" (console.js `distanceText`
    words it the same way)."""
    if metres < 1000:
        return _("%(m)s 米") % {"m": metres}
    return _("%(km)s 公里") % {"km": f"{metres / 1000:.1f}"}


def _nearby_responders(user: Any, incident: Incident) -> dict[str, Any] | None:
    """附近的响应人员: who shares a position near the case, nearest first, with the distance and
    the time of their last report as the page shows them, and the config of the script that
    keeps the list live (None when the user's role sees nobody's position)."""
    if not may_see_responders(user):
        return None
    now = timezone.now()
    roles = dict(Role.choices)
    lon, lat = incident.location.x, incident.location.y
    nearby = responders_near(
        user, lon=lon, lat=lat, within_m=NEARBY_RESPONDERS_M, limit=NEARBY_RESPONDERS_KNOWN
    )
    for responder in nearby:
        responder["distance_text"] = _distance_text(responder["distance_m"])
        responder["role_label"] = str(roles.get(responder["role"], responder["role"]))
        at = datetime.fromisoformat(responder["at"].replace("Z", "+00:00"))
        responder["at_local"] = timezone.localtime(at).strftime("%H:%M")
        responder["ago"] = _ago(at, now)
    return {
        "responders": nearby[:NEARBY_RESPONDERS_SHOWN],
        "config": {
            "lon": lon,
            "lat": lat,
            "radiusM": NEARBY_RESPONDERS_M,
            # The radius of incidents.selectors.haversine_m: the page's distances agree.
            "earthRadiusM": incident_selectors.EARTH_RADIUS_M,
            "shown": NEARBY_RESPONDERS_SHOWN,
            "now": now.isoformat().replace("+00:00", "Z"),
            "timeZone": timezone.get_current_timezone_name(),
            "maxAgeMinutes": settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES,
            # Reloaded from here after a resync (the user's place; the script keeps the radius).
            "listUrl": reverse("responder-positions"),
            "responders": nearby,
        },
    }


@login_required
def case_page(request: HttpRequest, number: str) -> HttpResponse:
    try:
        incident = incident_selectors.incident_for_user(request.user, number)
    except Incident.DoesNotExist:
        missing = _("没有编号为 %(number)s 的案件，或您无权查看。") % {"number": number}
        raise Http404(missing) from None
    context = _case_context(request, incident)
    if request.GET.get("fragment") == "case":
        context["feed"] = _feed(request)
        return render(request, "command/console_case_state.html", context)
    console = home_console_url(request.user)
    nearby = _nearby_responders(request.user, incident)
    nearby_config = nearby["config"] if nearby else None
    context.update(
        {
            "nav": "console",
            "back_url": console,
            "feed": _feed(request),
            "strings": _strings(),
            "generation": gridmap_selectors.active_generation(),
            "map_config": {
                "lon": incident.location.x,
                "lat": incident.location.y,
                "community": incident.community_code,
                "street": incident.street_code,
                "regionsUrl": reverse("region-list"),
                "gridUrl": reverse("region-detail", args=[incident.grid_code])
                + f"?generation={incident.generation_number}",
                "generation": incident.generation_number,
            },
            "nearby_responders": nearby["responders"] if nearby else [],
            # The list and its map marks, kept live by console.js (setupNearby).
            "nearby_config": nearby_config,
            "nearby_within_km": f"{NEARBY_RESPONDERS_M / 1000:g}",
            "page_config": {
                "number": incident.number,
                "me": request.user.pk,
                "detailUrl": reverse("incident-detail", args=[incident.number]),
                "fragmentUrl": reverse("console-case", args=[incident.number]) + "?fragment=case",
                "caseUrl": reverse("console-case", args=["NUMBER"]),
                "consoleUrl": console,
            },
        }
    )
    return render(request, "command/case.html", context)


# --- intake --------------------------------------------------------------------------------------


@login_required
def intake(request: HttpRequest) -> HttpResponse:
    """The operator's intake form: a call to the 12345 hotline (or a walk-in at the console)
    typed in, located by a click on the map, and posted to the incidents API."""
    user = request.user
    if _role(user) not in INTAKE_ROLES:
        raise Http404(_("您的账号不能受理登记。"))
    generation = gridmap_selectors.active_generation()
    place = _place(user)
    groups = _categories_grouped()
    return render(
        request,
        "command/intake.html",
        {
            "nav": "intake",
            "generation": generation,
            "category_groups": groups,
            "channels": [(c.value, c.label) for c in INTAKE_CHANNELS],
            "severities": Severity.choices,
            "description_max": DESCRIPTION_MAX,
            "strings": _strings(),
            "intake_config": {
                "reportUrl": reverse("incident-list"),
                "locateUrl": reverse("locate"),
                "regionsUrl": reverse("region-list"),
                "caseUrl": reverse("console-case", args=["NUMBER"]),
                "generation": generation.number if generation else None,
                "place": place,
                "emergencies": [
                    c.code for group in groups for c in group["items"] if c.is_emergency
                ],
            },
        },
    )
