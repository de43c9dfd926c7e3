"""台账导出: a console's queue as a CSV file, for the street sub-centre, community station or
department that keeps a register of its cases in a spreadsheet; and 审计日志导出, the audit
trail's entries as the audit page filters them, for an auditor's working papers.

The file holds exactly the cases the console's queue shows with the same filters — the queue
starts from `incidents_visible_to`, so an export never holds a case its reader could not open —
every page of them, up to `CITYOPS_EXPORT_MAX_ROWS`. Reporter phones are masked as on the case
page for roles without a need. Each export is recorded in the audit chain (who, which console,
which filters, how many rows): the file leaves the system with reporters' names in it.

The file is in the reader's language, as the page it is exported from: the column headings, the
choices' labels, and the category's and department's names (ADR 0016); what people typed stays
as typed. It is UTF-8 with a byte-order mark (Excel, which most stations open it in, reads UTF-8
without one as the local code page) and cells a spreadsheet would run as a formula (starting
with =, +, -, @, a tab or a carriage return) are prefixed with an apostrophe: a citizen's
description is text, never a formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from accounts.models import Role
from audit.models import AuditEntry
from audit.services import audit_record
from command.audit_labels import audit_changes_text
from incidents.models import Incident

EXPORT_ACTION = "command.queue_export"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportTooLarge(Exception):
    """More cases match than one file may hold."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} cases match; at most {limit} per file")
        self.count = count
        self.limit = limit


def export_limit() -> int:
    return int(settings.CITYOPS_EXPORT_MAX_ROWS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _header() -> list[str]:
    return [
        capfirst(name)
        for name in (
            _("案件编号"),
            _("上报时间"),
            _("来源渠道"),
            _("事项代码"),
            _("事项名称"),
            _("紧急程度"),
            _("办理状态"),
            _("街道"),
            _("社区"),
            _("网格"),
            _("地址"),
            _("问题描述"),
            _("上报人"),
            _("上报人电话"),
            _("责任单位"),
            _("处置部门"),
            _("当前环节"),
            _("环节时限"),
            _("是否超时"),
            _("督办次数"),
            _("退单次数"),
            _("返工次数"),
            _("合并至"),
            _("结案时间"),
            _("满意度"),
        )
    ]


def _rows(
    user: Any, cases: Iterable[Incident], departments: Mapping[str, str], now: datetime
) -> Iterable[list[str]]:
    yes, no = _("是"), _("否")
    for case in cases:
        department = case.assigned_department_code
        if department:
            department = f"{department} {departments.get(department, '')}".strip()
        late = case.stage_deadline is not None and case.stage_deadline < now
        yield [
            _cell(value)
            for value in (
                case.number,
                _when(case.created_at),
                case.get_channel_display(),
                case.category.code,
                case.category.label,
                case.get_severity_display() if case.severity else "",
                case.get_status_display(),
                case.street_name,
                case.community_name,
                f"{case.grid_name} ({case.grid_code})",
                case.address,
                case.description,
                case.reporter_name,
                case.phone_for(user),
                case.owner_label,
                department,
                case.get_stage_display() if case.stage else "",
                _when(case.stage_deadline),
                (yes if late else no) if case.stage_deadline else "",
                case.escalations,
                case.send_backs,
                case.reworks,
                case.merged_into.number if case.merged_into is not None else "",
                _when(case.closed_at),
                case.satisfaction,
            )
        ]


def queue_export(
    *,
    user: Any,
    cases: QuerySet[Incident],
    console: str,
    filters: Mapping[str, str],
    departments: Mapping[str, str],
    ip: str | None = None,
) -> bytes:
    """The CSV file of `cases` (a console's queue, already narrowed to what `user` may see),
    audited as one `command.queue_export` entry naming the console and the filters. Raises
    ExportTooLarge, writing nothing, when more cases match than CITYOPS_EXPORT_MAX_ROWS."""
    limit = export_limit()
    # One more than the limit is enough to know the file would be too large.
    chosen = list(cases.select_related("category", "merged_into")[: limit + 1])
    if len(chosen) > limit:
        raise ExportTooLarge(cases.count(), limit)
    data = _csv(_header(), _rows(user, chosen, departments, timezone.now()))
    with transaction.atomic():
        audit_record(
            actor=user,
            action=EXPORT_ACTION,
            obj_type="command.console",
            obj_id=console,
            before=None,
            after={"filters": dict(filters), "rows": len(chosen)},
            ip=ip,
        )
    return data


def _csv(header: list[str], rows: Iterable[list[str]]) -> bytes:
    """A CSV file as Excel opens it: UTF-8 with a byte-order mark, CRLF line ends."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


# --- 审计日志导出 ----------------------------------------------------------------------------

AUDIT_EXPORT_ACTION = "command.audit_export"


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _audit_row(
    entry: AuditEntry, role_words: str, action_words: str, object_words: str
) -> tuple[Any, ...]:
    return (
        entry.sequence,
        _when(entry.occurred_at),
        entry.actor_username,
        role_words,
        action_words,
        entry.action,
        object_words,
        entry.object_type,
        entry.object_id,
        entry.ip,
        audit_changes_text(entry.object_type, entry.before, entry.after),
        _json(entry.before),
        _json(entry.after),
        entry.hash,
        entry.prev_hash,
    )


def audit_export(
    *,
    user: Any,
    entries: QuerySet[AuditEntry],
    filters: Mapping[str, str],
    words: Callable[[list[AuditEntry]], list[tuple[str, str]]],
    ip: str | None = None,
) -> bytes:
    """The CSV file of audit `entries` (the audit page's, with its filters): every field of each
    entry whole (before and after as JSON, the hash and the previous hash, to hold against the
    trail later), with the actor's role, the action and the object also in words (`words` gives
    (action, object) for a list of entries), and what changed in words as the page names it
    (command.audit_labels.audit_changes_text: one line a changed key, "状态：已立案（待派遣）→
    已派遣（待签收）", no query). Audited as one `command.audit_export` entry with the filters
    and the row count. Raises ExportTooLarge, writing nothing, when more entries match than
    CITYOPS_EXPORT_MAX_ROWS."""
    limit = export_limit()
    chosen = list(entries[: limit + 1])
    if len(chosen) > limit:
        raise ExportTooLarge(entries.count(), limit)
    header = [
        capfirst(name)
        for name in (
            _("序号"),
            _("时间"),
            _("操作人"),
            _("角色"),
            _("操作"),
            _("操作标识"),
            _("对象"),
            _("对象类型"),
            _("对象标识"),
            _("IP 地址"),
            _("变更"),
            _("变更前"),
            _("变更后"),
            _("哈希"),
            _("前一条哈希"),
        )
    ]
    roles = dict(Role.choices)
    rows = (
        [
            _cell(value)
            for value in _audit_row(
                entry, str(roles.get(entry.actor_role, entry.actor_role)), *named
            )
        ]
        for entry, named in zip(chosen, words(chosen), strict=True)
    )
    data = _csv(header, rows)
    with transaction.atomic():
        audit_record(
            actor=user,
            action=AUDIT_EXPORT_ACTION,
            obj_type="audit.auditentry",
            obj_id="*",
            before=None,
            after={"filters": dict(filters), "rows": len(chosen)},
            ip=ip,
        )
    return data
