"""The grid worker's phone (网格员移动端, `/m/`): report what they find, see and act on their tasks.

Built for a phone in the hand of someone walking a grid cell with poor signal: small pages, no
build step, a service worker that keeps the shell available offline (`/m/sw.js`, scope `/m/`),
and reports that wait in the phone (IndexedDB) until the network is back — each with its
`Idempotency-Key`, so a retry never makes a second case (static/command/mobile.js).

Everything is read through the incidents selectors (what the user may see, what they may do);
every write goes to the REST API (`/api/v1/incidents/…`) with the session and the CSRF token.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.departments import (
    department_name,
    department_short_names,
    department_short_names_text,
)
from accounts.models import Role
from command.live import user_scopes
from command.views.labels import api_field_labels
from dispatch.services import RESPONDER_ROLES
from gridmap import selectors as gridmap_selectors
from incidents import selectors
from incidents.models import (
    CategoryKind,
    Incident,
    IncidentStatus,
    SendBackReason,
    Severity,
)
from incidents.services import DESCRIPTION_MAX
from incidents.workflow import SUPPORT_STEPS, action_label
from realtime.outbox import latest_seqs

# Who the phone pages are for: grid workers above all, and the staff who work in the field with
# them. Auditors read (the consoles), integrations have no pages.
MOBILE_ROLES = frozenset(
    {
        Role.GRID_WORKER,
        Role.COMMUNITY_STAFF,
        Role.STREET_OPERATOR,
        Role.DISTRICT_OPERATOR,
        Role.DEPARTMENT_HANDLER,
        Role.ADMIN,
    }
)

# The service worker's file; served from /m/sw.js so that its scope can be /m/.
SERVICE_WORKER = "command/mobile-sw.js"
# Assets the service worker keeps for opening the pages offline.
SHELL_ASSETS = (
    "command/mobile.css",
    "command/mobile.js",
    "command/favicon.svg",
    "realtime/live.js",
)


def _label(action: str) -> str:
    """An action's or step's name on the phone: the workflow's, with the two steps a field
    worker takes in their own words."""
    if action == "handle":
        return _("开始处置")
    if action == "feed_back":
        return _("处置反馈")
    return action_label(action)


# Actions whose button is the main one on a task (the next step of the loop for its actor).
PRIMARY_ACTIONS = (
    "accept",
    "handle",
    "feed_back",
    "verify",
    "register",
    "dispatch",
    "close",
    "confirm_arrival",
    "support_report",
)
# Actions the phone leaves to the console's case page: 增派协办 picks departments from a list
# of tick boxes, and response plans are started there.
CONSOLE_ONLY = frozenset({"call_out"})


def _may_use(user: Any) -> bool:
    return getattr(user, "role", "") in MOBILE_ROLES and user.is_active


def _refused(request: HttpRequest) -> HttpResponse:
    context = {"m_nav": "", **frame_context(request)}
    return render(request, "command/mobile_refused.html", context, status=403)


def _place(user: Any, generation: Any) -> dict[str, str] | None:
    """The user's place (code and name of their grid cell, community …) in the active generation."""
    code = getattr(user, "place_code", "") or ""
    if not code or generation is None:
        return None
    region = gridmap_selectors.region_by_code(generation=generation, code=code)
    return {"code": code, "name": region.name if region else ""}


def countdown(deadline: datetime | None, now: datetime) -> dict[str, Any] | None:
    """The clock of a task as the phone shows it first (mobile.js keeps it running): seconds
    left (negative when overdue) and the text."""
    if deadline is None:
        return None
    seconds = int((deadline - now).total_seconds())
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        span = _("%(days)d天%(hours)d小时") % {"days": days, "hours": hours}
    elif hours:
        span = _("%(hours)d小时%(minutes)d分") % {"hours": hours, "minutes": mins}
    else:
        span = _("%(minutes)d分") % {"minutes": mins}
    text = (
        _("剩余 %(span)s") % {"span": span}
        if seconds >= 0
        else _("已超时 %(span)s") % {"span": span}
    )
    state = "overdue" if seconds < 0 else ("soon" if seconds < 2 * 3600 else "ok")
    return {"seconds": seconds, "text": text, "state": state}


def _strings() -> dict[str, Any]:
    """Text the phone's script shows, translated here (Django i18n)."""
    return {
        "fields": api_field_labels(),
        # Times the script draws read as the server's, whatever the phone's own zone.
        "timeZone": settings.TIME_ZONE,
        "online": _("在线"),
        "offline": _("离线"),
        "locating": _("正在定位…"),
        "located": _("已定位"),
        "accuracy": _("精度约 %(metres)s 米"),
        "lowAccuracy": _("精度较低，建议到开阔处重新定位。"),
        "geoDenied": _("未获得定位权限。请在浏览器设置中允许本网站使用位置信息，然后重新定位。"),
        "geoUnavailable": _("暂时无法获取位置，请到开阔处重新定位。"),
        "geoTimeout": _("定位超时，请重新定位。"),
        "geoUnsupported": _("此浏览器不支持定位。"),
        "lookingUpGrid": _("正在查询所属网格…"),
        "gridOffline": _("离线：暂时无法查询所属网格，坐标已记录，可照常上报。"),
        "gridOutside": _("该位置不在本区辖区内（距区界约 %(metres)s 米），无法上报。"),
        "gridFailed": _("所属网格查询失败，坐标已记录。"),
        "notMyPlace": _("该位置不在您负责的区域（%(place)s）内，上报会被拒绝。"),
        "nearest": _("不在任何网格内，按属地兜底归属最近的网格。"),
        "chooseCategory": _("请选择事项分类。"),
        "needLocation": _("请先获取位置。"),
        "saved": _("已保存到待发送，网络恢复后自动上报。"),
        "sending": _("正在上报…"),
        "delivered": _("已上报，案件编号"),
        "deliveredState": _("已送达"),
        "signIn": _("登录"),
        "relocate": _("重新定位"),
        "required": _("不能为空。"),
        "labelled": _("%(label)s：%(value)s"),
        "pending": _("待发送"),
        "sendingState": _("发送中"),
        "failed": _("上报失败"),
        "authNeeded": _("登录已失效，请重新登录后自动发送。"),
        "otherUser": _("此条由账号 %(user)s 保存，需以该账号登录才能发送。"),
        "nextTry": _("将于 %(time)s 重试"),
        "waitingNetwork": _("等待网络"),
        "attempts": _("已尝试 %(n)s 次"),
        "retryNow": _("立即重试"),
        "remove": _("删除"),
        "edit": _("修改后重新上报"),
        "confirmRemove": _("删除这条未发送的上报？"),
        "photoCount": _("%(n)s 张照片"),
        "noPhoto": _("无照片"),
        "noResults": _("没有匹配的事项"),
        "categoryChosen": _("%(name)s（%(code)s）"),
        "recent": _("最近使用"),
        "common": _("常用"),
        "remaining": _("剩余 %(span)s"),
        "overdue": _("已超时 %(span)s"),
        "days": _("%(days)d天%(hours)d小时"),
        "hours": _("%(hours)d小时%(minutes)d分"),
        "minutes": _("%(minutes)d分"),
        "liveConnecting": _("实时连接中…"),
        "liveOn": _("实时更新已连接"),
        "liveInterrupted": _("实时连接中断，稍后自动重连"),
        "liveResyncing": _("正在同步…"),
        "liveSignedOut": _("登录已失效，实时更新已停止。"),
        "newTasks": _("任务已更新"),
        "acting": _("正在提交…"),
        "actionDone": _("已完成：%(action)s"),
        "networkError": _("网络异常，未能提交。请检查网络后重试（重试不会重复提交）。"),
        "retry": _("重试"),
        "staleShell": _("当前离线，显示的是 %(time)s 保存的页面。"),
        "photoNotImage": _("所选文件不是 JPEG、PNG 或 WebP 图片。"),
        "photoTooLarge": _("照片过大（%(size)s MB，最多 %(max)s MB），请重新拍摄。"),
        "serverError": _("服务器暂时无法处理（%(status)s），将自动重试。"),
        "error": _("错误"),
        "shareOff": _("未共享。开启后，指挥中心可在地图上看到您的位置。"),
        "shareStarting": _("正在定位，准备共享…"),
        "shareSending": _("正在共享位置…"),
        "shareOn": _("位置已共享 · %(time)s"),
        "shareOnAccuracy": _("位置已共享 · %(time)s · 精度约 %(metres)s 米"),
        "shareOffline": _("离线：暂停共享，网络恢复后继续（上次共享 %(time)s）。"),
        "shareOfflineNever": _("离线：暂停共享，网络恢复后开始共享。"),
        "shareOutside": _("当前位置不在本区辖区内，未共享。"),
        "shareRefused": _("无法共享位置：%(reason)s"),
        "shareRetry": _("共享失败（%(reason)s），将于 1 分钟内重试。"),
        "shareStopping": _("正在停止共享…"),
        "shareStopFailed": _(
            "网络异常，未能通知停止共享；网络恢复后自动通知，位置最迟 %(minutes)s 分钟后不再显示。"
        ),
        "caseChanged": _("此案件刚有新进展（%(what)s）。"),
        "caseChangedReload": _("刷新查看"),
        "caseChangedSomething": _("状态或内容有变化"),
        "statusLabels": {status.value: str(status.label) for status in IncidentStatus},
        "unsentOnLogout": _(
            "还有 %(n)s 条上报未发送，仍保存在本机，重新登录同一账号后自动发送。确定退出？"
        ),
    }


def _config(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "user": {"id": user.pk, "username": user.get_username()},
        "place": getattr(user, "place_code", "") or "",
        "csrfCookie": settings.CSRF_COOKIE_NAME,
        "loginUrl": f"{reverse('login')}?next={request.path}",
        "reportUrl": reverse("incident-list"),
        "incidentUrl": reverse("incident-detail", args=["NUMBER"]),
        "locateUrl": reverse("locate"),
        "sessionUrl": reverse("mobile-session"),
        "tasksUrl": reverse("mobile-tasks"),
        "taskUrl": reverse("mobile-task", args=["NUMBER"]),
        "swUrl": reverse("mobile-sw"),
        "swScope": reverse("mobile-report"),
        "renderedAt": timezone.now().isoformat(),
        # The server refuses bigger photos (incidents.services.photos); the phone says so at once.
        "maxPhotoBytes": settings.CITYOPS_PHOTO_MAX_BYTES,
        # Field roles may share their position (the switch on every page); None for the others.
        "positionUrl": reverse("responder-my-position")
        if getattr(user, "role", "") in RESPONDER_ROLES
        else None,
        "positionMaxAgeMinutes": settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES,
    }


def frame_context(request: HttpRequest) -> dict[str, Any]:
    """What the frame of every phone page shows (mobile_base.html): the boundaries' provenance
    and the user's place."""
    generation = gridmap_selectors.active_generation()
    return {"generation": generation, "place": _place(request.user, generation)}


def _context(request: HttpRequest, nav: str, **extra: Any) -> dict[str, Any]:
    return {
        "m_nav": nav,
        "m_config": _config(request),
        "m_strings": _strings(),
        **frame_context(request),
        **extra,
    }


@login_required
@never_cache
def report(request: HttpRequest) -> HttpResponse:
    """上报: category, description, GPS, photos; queued on the phone while offline."""
    if not _may_use(request.user):
        return _refused(request)
    # Compact: the class (大类) of each category is named once, in `majors`. Names are in the
    # reader's language; on an English page `zh` holds the Chinese ones, which the search also
    # matches.
    categories: list[dict[str, str]] = []
    majors: dict[str, dict[str, str]] = {}
    for c in selectors.categories_for_picker():
        major = majors.setdefault(c.major_code, {"name": c.major_label, "kind": c.kind})
        row = {"code": c.code, "name": c.label, "major": c.major_code}
        if c.search_aliases:
            row["zh"] = c.name
            major["zh"] = c.major_name
        if c.default_severity:
            row["severity"] = c.default_severity
        categories.append(row)
    severities = [{"value": value, "label": str(label)} for value, label in Severity.choices]
    kinds = {value: str(label) for value, label in CategoryKind.choices}
    return render(
        request,
        "command/mobile_report.html",
        _context(
            request,
            "report",
            picker={
                "categories": categories,
                "majors": majors,
                "common": selectors.categories_common_for(request.user),
                "severities": severities,
                "kinds": kinds,
            },
            category_count=len(categories),
            description_max=DESCRIPTION_MAX,
        ),
    )


# The most tasks the phone lists (most urgent first); beyond it the list says how many wait.
TASKS_SHOWN = 200


def _task_rows(user: Any) -> tuple[list[dict[str, Any]], int]:
    """The phone's task rows, and how many tasks wait in all."""
    now = timezone.now()
    rows = []
    tasks, total = selectors.incidents_needing_action_page(user, limit=TASKS_SHOWN)
    for incident, actions in tasks:
        rows.append(
            {
                "incident": incident,
                "actions": [{"action": a, "label": _label(a)} for a in actions],
                "clock": countdown(incident.stage_deadline, now),
                "mine": incident.assignee_id == user.pk,
            }
        )
    return rows, total


@login_required
@never_cache
def tasks(request: HttpRequest) -> HttpResponse:
    """我的任务: the cases waiting for this user, most urgent first. `?fragment=1` answers the
    list alone (the page reloads it when the live feed reports a change)."""
    if not _may_use(request.user):
        return _refused(request)
    # The feed's position (of the scopes the live feed lets this user follow, command.live)
    # before the data: an event in between is in both, and the page only refreshes again.
    seqs = latest_seqs(user_scopes(request.user))
    # All that wait beside the rows, so a list cut at TASKS_SHOWN says so (a surge).
    rows, total = _task_rows(request.user)
    context = _context(
        request,
        "tasks",
        tasks=rows,
        tasks_total=total,
        seqs=seqs,
        now=timezone.now(),
    )
    template = "command/mobile_tasks_list.html" if request.GET.get("fragment") else None
    return render(request, template or "command/mobile_tasks.html", context)


def _dispatch_departments() -> list[dict[str, str]]:
    """The departments of the dispatch form, each with its short name: the phone's select, 360 px
    wide and unable to wrap, names them "Urban Management" / "城管" (a full English name,
    "Longhua District Urban Management and Comprehensive Law Enforcement Bureau (CGJ)", was cut
    to its first words) and the chosen one's full name and code are written under it."""
    short_names = department_short_names()
    return [
        {"code": code, "name": name, "short_name": short_names.get(code) or name}
        for code, name in selectors.departments()
    ]


def _action_forms(incident: Incident, actions: list[str]) -> list[dict[str, Any]]:
    """A form per action, the next step of the loop first (in the workflow's order)."""
    actions = [action for action in actions if action not in CONSOLE_ONLY]
    ordered = sorted(actions, key=lambda a: (a not in PRIMARY_ACTIONS, actions.index(a)))
    return [
        {
            "action": action,
            "url": reverse(f"incident-{action.replace('_', '-')}", args=[incident.number]),
            "label": _label(action),
            "primary": action in PRIMARY_ACTIONS,
        }
        for action in ordered
    ]


@login_required
@never_cache
def task(request: HttpRequest, number: str) -> HttpResponse:
    """One case: what, where, the clock, the timeline, and a form per action the user may take."""
    if not _may_use(request.user):
        return _refused(request)
    # The feed's position before the case is read (the page follows the feed and offers a
    # refresh when this case changes).
    seqs = latest_seqs(user_scopes(request.user))
    try:
        incident = selectors.incident_for_user(request.user, number)
    except Incident.DoesNotExist:
        raise Http404(_("没有这个案件，或您无权查看。")) from None
    actions = selectors.incident_actions_for(request.user, incident)
    timeline = list(selectors.incident_timeline(incident))
    short_names = department_short_names()
    steps = [
        {
            "label": _label(step.action),
            # A step that keeps the status (确认到场, 协办反馈, 申请延期 …) moves nothing: no arrow.
            "to": IncidentStatus(step.to_status).label
            if step.to_status and step.to_status != step.from_status
            else "",
            "actor": step.actor.display_name if step.actor else "",
            # The department that spoke in a 协办 step (确认到场, 协办反馈), by its short name.
            "department": short_names.get(code, code)
            if step.action in SUPPORT_STEPS and (code := (step.data or {}).get("department"))
            else "",
            "reason": step.reason,
            "at": step.created_at,
        }
        for step in timeline
    ]
    own_department = getattr(request.user, "department_code", "") or ""
    return render(
        request,
        "command/mobile_task.html",
        _context(
            request,
            "tasks",
            incident=incident,
            status_label=IncidentStatus(incident.status).label,
            clock=countdown(incident.stage_deadline, timezone.now()),
            forms=_action_forms(incident, actions),
            steps=list(reversed(steps)),
            send_back_reasons=SendBackReason.choices,
            departments=_dispatch_departments(),
            department_name=department_name(incident.assigned_department_code),
            supports_text=department_short_names_text(incident.support_department_codes),
            own_support=own_department in incident.support_department_codes,
            own_arrived=own_department in incident.support_arrived_codes,
            photos=[
                {
                    "url": reverse("incident-photo", args=[incident.number, photo.pk]),
                    "kind": photo.kind,
                    "label": photo.get_kind_display(),
                }
                for photo in selectors.incident_photos(incident)
            ],
            lon=incident.location.x,
            lat=incident.location.y,
            seqs=seqs,
        ),
    )


@require_GET
@never_cache
def session(request: HttpRequest) -> JsonResponse:
    """Who the browser is signed in as and a CSRF token: the outbox asks before it sends a
    queued report after a 403 (expired session, or a refusal) and before it sends as anyone."""
    user = request.user
    return JsonResponse(
        {
            "user": {"id": user.pk, "username": user.get_username()}
            if user.is_authenticated
            else None,
            "csrfToken": get_token(request),
        }
    )


def _static_file(name: str) -> str | None:
    """The file behind a static name, or None (a finder may answer a miss with [] or [None])."""
    found = finders.find(name)
    return found if isinstance(found, str) else None


@cache
def _service_worker_source() -> str:
    path = _static_file(SERVICE_WORKER)
    if path is None:
        raise Http404
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker of the phone pages, served under /m/ so that its scope is /m/. The
    list of shell assets (with their hashed names in production) is prepended; the version
    changes whenever the worker or an asset name does, which makes phones update."""
    source = _service_worker_source()
    shell = [static(name) for name in SHELL_ASSETS if _static_file(name)]
    pages = [reverse("mobile-report"), reverse("mobile-tasks")]
    version = hashlib.sha256("\n".join([source, *shell, *pages]).encode()).hexdigest()[:16]
    header = (
        f"const CITYOPS_SW_VERSION = {json.dumps(version)};\n"
        f"const CITYOPS_SHELL_ASSETS = {json.dumps(shell)};\n"
        f"const CITYOPS_SHELL_PAGES = {json.dumps(pages)};\n"
    )
    response = HttpResponse(header + source, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = reverse("mobile-report")
    response["Cache-Control"] = "no-cache"
    return response
