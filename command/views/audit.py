"""审计日志: the auditor's page of the audit trail (`/command/audit/`).

Auditors and system administrators read here who changed what, when, from where, and what it was
before and after (audit.models.AuditEntry), newest first, fifty to a page, narrowed by time,
user, action and object (a case may be named by its number). Every row opens to its before/after
values, key by key.

Each request also checks the entries it shows against the hash chain
(audit.selectors.entries_check): every entry's content against its own hash, and its link to the
entry before it by sequence, which on an unfiltered page is the row below it (and, for the
lowest row, one entry read from the next page). The page names the first entry that fails. The
whole chain — from the first entry to the head — is verified by `manage.py audit_verify`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from accounts.models import Role
from accounts.selectors import user_id_for_username
from audit import selectors as audit_selectors
from audit.models import AuditEntry
from audit.services import request_ip
from command.audit_labels import (
    AUDIT_ACTION_GROUPS,
    AUDIT_ACTION_LABELS,
    AUDIT_OBJECT_LABELS,
    audit_action_label,
    audit_changes,
    audit_object_label,
)
from command.exports import audit_export, export_limit
from command.views.consoles import _role, csv_download, days_filter, page_links
from incidents import selectors as incident_selectors
from incidents.models import Stage

PAGE_SIZE = 50
# Roles that may read the audit trail.
AUDIT_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})
# The object type of a case; its entries name the case by id, the page by its number.
CASE = "incidents.incident"
USER = "accounts.user"
# A case number as people write it: LH-20261124-000123.
CASE_NUMBER = re.compile(r"[A-Za-z]{1,8}-\d{8}-\d{1,9}")
# The longest username and object id an entry holds (AuditEntry's fields).
ACTOR_MAX = 150
OBJECT_ID_MAX = 100
# How an identifier of an action or object type is spelled ("incidents.incident_dispatch").
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")

# The filter fields as the form labels them, to name a bad one above the list.
FILTER_LABELS = {
    "since": gettext_lazy("时间从"),
    "until": gettext_lazy("时间至"),
    "actor": gettext_lazy("操作人"),
    "action": gettext_lazy("操作"),
    "object_type": gettext_lazy("对象类型"),
    "object": gettext_lazy("对象"),
}


@dataclass
class AuditFilters:
    since: str = ""  # written on or after this local day (YYYY-MM-DD)
    until: str = ""  # written on or before this local day
    actor: str = ""  # the username the entry recorded
    action: str = ""
    object_type: str = ""
    object: str = ""  # an object's id, or a case's number
    page: str = "1"
    errors: dict[str, str] = field(default_factory=dict)
    # What `object_type` and `object` select in the entries (a case number becomes its id).
    object_query: dict[str, str] = field(default_factory=dict)

    def labelled_errors(self) -> list[tuple[str, str]]:
        """(the field's label, what is wrong) for each bad filter."""
        return [
            (str(capfirst(FILTER_LABELS[name])), message) for name, message in self.errors.items()
        ]

    @property
    def active(self) -> bool:
        """Whether the list is narrowed: the entries shown are then not consecutive."""
        return bool(self.since or self.until or self.actor or self.action or self.object_query)

    def query(self, **changes: str) -> str:
        """The query string of these filters with `changes` (empty values left out)."""
        values = {
            "since": self.since,
            "until": self.until,
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object": self.object,
            "page": self.page,
            **changes,
        }
        if values["page"] == "1":
            values["page"] = ""
        return urlencode({k: v for k, v in values.items() if v})


def _filters(request: HttpRequest) -> AuditFilters:
    """The filters from the query string; a bad value is named in `errors` (the page answers 400
    with the message above the list) and left out of the query."""
    params = request.GET
    filters = AuditFilters(page=params.get("page", "1"))
    filters.since, filters.until, day_errors = days_filter(params)
    filters.errors.update(day_errors)

    actor = params.get("actor", "").strip()
    if len(actor) > ACTOR_MAX:
        filters.errors["actor"] = _("用户名最长 %(limit)s 个字符") % {"limit": ACTOR_MAX}
    else:
        filters.actor = actor

    action = params.get("action", "").strip()
    if not action or action in AUDIT_ACTION_LABELS or _is_identifier(action):
        filters.action = action
    else:
        filters.errors["action"] = _("未知的操作")

    object_type = params.get("object_type", "").strip()
    if not object_type or object_type in AUDIT_OBJECT_LABELS or _is_identifier(object_type):
        filters.object_type = object_type
    else:
        filters.errors["object_type"] = _("未知的对象类型")

    text = params.get("object", "").strip()
    if len(text) > OBJECT_ID_MAX:
        filters.errors["object"] = _("对象标识最长 %(limit)s 个字符") % {"limit": OBJECT_ID_MAX}
        text = ""
    filters.object = text
    query = {"object_type": filters.object_type} if filters.object_type else {}
    if text and filters.object_type in ("", CASE) and CASE_NUMBER.fullmatch(text):
        number = text.upper()
        case_id = incident_selectors.incident_id_for_number(request.user, number)
        if case_id is None:
            filters.errors["object"] = _("没有编号为 %(number)s 的案件") % {"number": number}
            filters.object = ""
        else:
            query = {"object_type": CASE, "object_id": str(case_id)}
            filters.object = number
    elif text and filters.object_type == USER and not text.isdigit():
        # A user by username: their account's id; else the name itself, which is the object of
        # a failed sign-in with a username no account has.
        user_id = user_id_for_username(text)
        query["object_id"] = str(user_id) if user_id is not None else text
    elif text:
        query["object_id"] = text
    filters.object_query = query
    return filters


def _is_identifier(text: str) -> bool:
    return len(text) <= OBJECT_ID_MAX and bool(_IDENTIFIER.fullmatch(text))


# --- the rows ------------------------------------------------------------------------------------


# A row's summary names at most this many of the keys that changed.
KEYS_NAMED = 4


def _keys_text(keys: list[str]) -> str:
    """The keys that changed, as a row's summary lists them: "status、department、stage" or, for
    more than KEYS_NAMED, the first ones and "等"."""
    text = pgettext("list separator", "、").join(keys[:KEYS_NAMED])
    if len(keys) > KEYS_NAMED:
        text = _("%(keys)s 等") % {"keys": text}
    return text


def _break_words(problem: audit_selectors.EntryBreak) -> str:
    if problem.problem == audit_selectors.PREDECESSOR_MISSING:
        return _("前一条记录 #%(previous)s 不存在：记录被删除过") % {
            "previous": problem.predecessor
        }
    if problem.problem == audit_selectors.LINK_BROKEN:
        if problem.predecessor == 0:
            return _("不是审计链的第一条，却没有前一条记录")
        return _(
            "与前一条记录 #%(previous)s 的哈希不衔接：前一条被改动过，或有记录被删除、插入"
        ) % {"previous": problem.predecessor}
    return _("内容与其哈希不符：写入后被改动过")


def _rows(
    user: Any, entries: list[AuditEntry], breaks: dict[int, audit_selectors.EntryBreak]
) -> list[dict[str, Any]]:
    numbers = _case_numbers(user, entries)
    roles = dict(Role.choices)
    rows = []
    for entry in entries:
        number = numbers.get(entry.sequence)
        actor = entry.actor
        problem = breaks.get(entry.sequence)
        changes = audit_changes(entry.object_type, entry.before, entry.after)
        changed = [change.label for change in changes if change.changed]
        rows.append(
            {
                "entry": entry,
                "actor_name": entry.actor_username,
                "actor_full_name": actor.get_full_name() if actor is not None else "",
                "role_label": str(roles.get(entry.actor_role, entry.actor_role)),
                "action_label": audit_action_label(entry.action),
                # The identifier in its parts, to break a long one at its dots only.
                "action_parts": entry.action.split("."),
                "object_label": capfirst(audit_object_label(entry.object_type)),
                "case_number": number,
                "object_name": _object_name(entry),
                "changes": changes,
                "changed_count": len(changed),
                "changed_keys_text": _keys_text(changed),
                "broken": _break_words(problem) if problem else "",
            }
        )
    return rows


def _case_numbers(user: Any, entries: list[AuditEntry]) -> dict[int, str]:
    """The number of the case each entry names, by the entry's sequence (one query)."""
    ids = {
        entry.sequence: int(entry.object_id)
        for entry in entries
        if entry.object_type == CASE and entry.object_id.isdigit()
    }
    numbers = incident_selectors.incident_numbers_by_id(user, list(ids.values()))
    return {sequence: numbers[pk] for sequence, pk in ids.items() if pk in numbers}


def _export_words(user: Any) -> Any:
    """What the export writes beside each entry's identifiers: its action and object in words,
    as the page shows them."""

    def words(entries: list[AuditEntry]) -> list[tuple[str, str]]:
        numbers = _case_numbers(user, entries)
        named = []
        for entry in entries:
            kind = capfirst(audit_object_label(entry.object_type))
            name = numbers.get(entry.sequence) or _object_name(entry)
            what = f"{name} #{entry.object_id}" if name else entry.object_id
            named.append((str(audit_action_label(entry.action)), f"{kind} {what}"))
        return named

    return words


def _object_name(entry: AuditEntry) -> str:
    """What the object is called, from the entry itself (no query; it may have been renamed or
    deleted since): a user's username (recorded, or the actor's when the user acted on
    themselves, as in a sign-in), a calendar day's date, a category's code, a stage limit's
    category and stage. Empty when the entry does not say, or the name is the id itself (a
    failed sign-in with an unknown username)."""
    facts = [f for f in (entry.after, entry.before) if isinstance(f, dict)]

    def recorded(key: str) -> str:
        return next((str(f[key]) for f in facts if isinstance(f.get(key), str)), "")

    name = ""
    if entry.object_type == USER:
        name = recorded("username")
        if not name and entry.actor_id is not None and str(entry.actor_id) == entry.object_id:
            name = entry.actor_username
    elif entry.object_type == "incidents.calendarday":
        name = recorded("date")
    elif entry.object_type == "incidents.category":
        name = recorded("code")
    elif entry.object_type == "incidents.stagelimit":
        category, stage = recorded("category"), recorded("stage")
        if category and stage in Stage.values:
            name = f"{category} {Stage(stage).label}"
    return name if name != entry.object_id else ""


def _chain(rows: list[dict[str, Any]], breaks: dict[int, Any], filtered: bool) -> dict[str, Any]:
    """The page's chain check in words."""
    count = len(rows)
    if not breaks:
        summary = ngettext(
            "本页 %(count)s 条记录校验通过。", "本页 %(count)s 条记录校验通过。", count
        ) % {"count": count}
        return {"ok": True, "summary": summary, "filtered": filtered}
    first = min(breaks)
    row = next(row for row in rows if row["entry"].sequence == first)
    summary = ngettext(
        "本页 %(count)s 条记录中有 %(broken)s 条未通过校验。",
        "本页 %(count)s 条记录中有 %(broken)s 条未通过校验。",
        len(breaks),
    ) % {"count": count, "broken": len(breaks)}
    first_words = _("最早的一条是 #%(sequence)s（%(time)s，%(action)s）：%(reason)s。") % {
        "sequence": first,
        "time": timezone.localtime(row["entry"].occurred_at).strftime("%Y-%m-%d %H:%M:%S"),
        "action": row["action_label"],
        "reason": row["broken"],
    }
    return {"ok": False, "summary": summary, "first": first_words, "filtered": filtered}


def _action_choices(current: str) -> list[dict[str, Any]]:
    """The actions of the filter's list by their words, grouped by app, in the table's order
    (which keeps an app's actions together); an action the table does not know (asked for by
    its identifier) is offered as it is, last."""
    groups: dict[str, dict[str, Any]] = {}
    actions = [(action, str(label)) for action, label in AUDIT_ACTION_LABELS.items()]
    if current and current not in AUDIT_ACTION_LABELS:
        actions.append((current, current))
    for action, label in actions:
        app = action.split(".", 1)[0]
        group = groups.setdefault(
            app, {"label": str(AUDIT_ACTION_GROUPS.get(app, app)), "choices": []}
        )
        group["choices"].append((action, label))
    return list(groups.values())


def _object_choices(current: str) -> list[tuple[str, str]]:
    choices = [(kind, str(capfirst(label))) for kind, label in AUDIT_OBJECT_LABELS.items()]
    if current and current not in AUDIT_OBJECT_LABELS:
        choices.append((current, current))
    return choices


def _export(request: HttpRequest, entries: Any, filters: AuditFilters) -> HttpResponse:
    """审计日志导出 (?export=csv): every entry the filters select, as a CSV download."""
    return csv_download(
        lambda: audit_export(
            user=request.user,
            entries=entries,
            filters=dict(parse_qsl(filters.query(page="1"))),
            words=_export_words(request.user),
            ip=request_ip(request),
        ),
        name="cityops-audit",
        too_large=_(
            "export：符合条件的记录有 %(count)s 条，一个文件最多 %(limit)s 条；"
            "请缩小筛选范围（时间、操作人、操作、对象）后再导出。"
        ),
    )


@login_required
def audit_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    if _role(user) not in AUDIT_ROLES:
        raise Http404(_("审计日志只供审计员和系统管理员查看。"))
    filters = _filters(request)
    since, until = incident_selectors.day_bounds(
        date.fromisoformat(filters.since) if filters.since else None,
        date.fromisoformat(filters.until) if filters.until else None,
    )
    entries = audit_selectors.audit_entries(
        since=since,
        before=until,
        actor_username=filters.actor,
        action=filters.action,
        **filters.object_query,
    )
    if request.GET.get("export") == "csv" and not filters.errors:
        return _export(request, entries, filters)
    page: Page[AuditEntry] = Paginator(entries, PAGE_SIZE).get_page(filters.page)
    filters.page = str(page.number)
    shown = list(page.object_list)
    breaks = audit_selectors.entries_check(shown)
    rows = _rows(user, shown, breaks)
    context = {
        "nav": "audit",
        "filters": filters,
        "page": page,
        "rows": rows,
        "chain": _chain(rows, breaks, filters.active),
        "action_choices": _action_choices(filters.action),
        "object_choices": _object_choices(filters.object_type),
        "page_links": page_links(page, filters),
        "export_url": "?" + filters.query(page="1", export="csv"),
        "export_limit": export_limit(),
    }
    return render(request, "command/audit.html", context, status=400 if filters.errors else 200)
