"""The words of the audit page (审计日志) and its CSV export: what each audited action, each
kind of object and each key of an entry's before/after is called, the words of the values that
are codes, and an entry's before/after key by key in those words (`audit_changes`). An entry
stores them as identifiers ("incidents.incident_dispatch", "gridmap.generation",
{"status": "dispatched"}); the page and the export show these words instead, and an identifier
missing here as it is.

The workflow's steps are audited as "incidents.incident_<step>" and are named here by the
workflow itself (`incidents.workflow.action_label`), so a step is called the same on the case
page's timeline and in the audit trail. Every other action is in AUDIT_ACTION_LABELS;
tests/command/test_audit_page.py scans the code for the actions it records and fails when one
has no words here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import capfirst
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.departments import department_name, department_short_names_text
from accounts.services import (
    PASSWORD_CHANGED,
    PASSWORD_NONE,
    PASSWORD_SET,
    SESSIONS_DEACTIVATED,
    SESSIONS_PASSWORD_CHANGED,
    SESSIONS_PASSWORD_SET,
    SESSIONS_STALE,
)
from dispatch.plans import known_plans
from gridmap.models import Level
from incidents.models import OwnerLevel, SendBackReason
from incidents.workflow import SYSTEM_STEPS, TRANSITIONS, action_label

# What a workflow step is audited as: WORKFLOW_ACTION_PREFIX + the step's name.
WORKFLOW_ACTION_PREFIX = "incidents.incident_"

_step_label = lazy(action_label, str)

# The workflow's steps: reporting, every row of its table, then the escalation worker's steps.
WORKFLOW_ACTION_LABELS: dict[str, Any] = {
    f"{WORKFLOW_ACTION_PREFIX}{step}": _step_label(step)
    for step in ("report", *TRANSITIONS, *SYSTEM_STEPS)
}

AUDIT_ACTION_LABELS: dict[str, Any] = {
    **WORKFLOW_ACTION_LABELS,
    # Cases, outside the workflow's table.
    "incidents.incident_report_bulk": _("批量上报"),
    "incidents.incident_photo_add": _step_label("add_photo"),
    # Reference data: categories, their time limits, the working calendar.
    "incidents.category_save": _("修改事项分类"),
    "incidents.stage_limit_save": _("修改环节时限"),
    "incidents.calendar_day_save": _("修改工作日历"),
    "incidents.calendar_day_delete": _("删除日历日"),
    "incidents.categories_load": _("导入事项分类"),
    "incidents.calendar_load": _("导入工作日历"),
    # Geography.
    "gridmap.regions_add": _("导入边界区域"),
    "gridmap.region_update_boundary": _("修改区域边界"),
    "gridmap.generation_activate": _("启用边界版本"),
    # The command centre.
    "command.screen_token_issue": _("签发大屏令牌"),
    "command.screen_token_revoke": _("吊销大屏令牌"),
    "command.queue_export": _("导出台账"),
    "command.audit_export": _("导出审计日志"),
    # Responders sharing their position.
    "responder.sharing_started": _("开始共享位置"),
    "responder.sharing_stopped": _("停止共享位置"),
    # Accounts: users, signing in, integrations' API keys.
    "accounts.user_create": _("新建用户"),
    "accounts.user_change": _("修改用户"),
    "accounts.user_password_change": _("修改密码"),
    "accounts.user_delete": _("删除用户"),
    "accounts.sign_in": _("登录"),
    "accounts.sign_out": _("退出登录"),
    "accounts.sign_in_failed": _("登录失败"),
    "accounts.sign_in_locked": _("登录锁定"),
    "accounts.old_password_failed": _("旧密码错误"),
    "accounts.session_expired": _("超时退出"),
    "accounts.sessions_revoked": _("强制下线"),
    "accounts.api_key_issue": _("签发接口密钥"),
    "accounts.api_key_revoke": _("吊销接口密钥"),
}

# The kinds of object an entry is about ("<app>.<model>"), named as the admin names the models.
AUDIT_OBJECT_LABELS: dict[str, Any] = {
    "incidents.incident": pgettext_lazy("model", "案件"),
    "incidents.incident_batch": _("批量上报批次"),
    "incidents.incidentphoto": pgettext_lazy("model", "案件照片"),
    "incidents.category": pgettext_lazy("model", "事项分类"),
    "incidents.stagelimit": pgettext_lazy("model", "环节时限"),
    "incidents.calendarday": pgettext_lazy("model", "节假日/调休日"),
    "gridmap.generation": pgettext_lazy("model", "边界版本"),
    "gridmap.region": pgettext_lazy("model", "区域"),
    "command.screentoken": pgettext_lazy("model", "大屏令牌"),
    "command.console": pgettext_lazy("audit object", "工作台"),
    "responder": pgettext_lazy("audit object", "响应人员"),
    "accounts.user": pgettext_lazy("model", "用户"),
    "accounts.apikey": pgettext_lazy("model", "接口密钥"),
    "audit.auditentry": pgettext_lazy("model", "审计记录"),
}


# The groups of the action filter's list, by the app an action belongs to (its first part).
AUDIT_ACTION_GROUPS: dict[str, Any] = {
    "incidents": _("案件与事项分类"),
    "gridmap": _("网格与边界"),
    "command": _("指挥中心"),
    "responder": _("响应人员"),
    "accounts": _("账号与登录"),
}


def audit_action_label(action: str) -> str:
    """An audited action in the reader's language; one this table does not know, as it is."""
    label = AUDIT_ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def audit_object_label(object_type: str) -> str:
    """A kind of object in the reader's language; one this table does not know, as it is."""
    label = AUDIT_OBJECT_LABELS.get(object_type)
    return str(label) if label is not None else object_type


# --- the keys of an entry's before/after -----------------------------------------------------
#
# A key that is a field of the object's model is called by the field's verbose_name, and a value
# of a field with choices by its choice's label. The keys below are not fields (or mean
# something else in the entry than the field does), by the kind of object.

AUDIT_KEY_LABELS: dict[str, dict[str, Any]] = {
    "incidents.incident": {
        "owner": _("责任单位"),
        "department": _("处置部门"),
        "supports": _("协办部门"),
        "supports_arrived": _("已到场的协办部门"),
        "support_department": _("反馈部门"),
        "plan": _("应急预案"),
        "grid": _("网格"),
        "raw": _("原始输入（经度、纬度、坐标系）"),
        "location": _("位置（经度、纬度）"),
        "reason": _("理由"),
        "reason_code": _("退单原因"),
        "supervision": _("督办记录"),
    },
    "incidents.incident_batch": {
        "created": _("新建的案件"),
        "repeated": _("计为重复报警的案件"),
        "failed": _("未受理的条目数"),
    },
    "incidents.incidentphoto": {
        "incident": _("案件"),
        "bytes": _("原图大小（字节）"),
        "format": _("格式"),
        "display": _("展示图（格式、宽、高）"),
    },
    "incidents.category": {
        "categories": _("事项分类（条数）"),
        "limits": _("环节时限（条数）"),
        "updated": _("更新的分类"),
        "deactivated": _("停用的分类"),
        "reset": _("重置后台修改"),
    },
    "incidents.calendarday": {
        "days": _("日历日（条数）"),
        "updated": _("更新的日期"),
        "removed": _("删除的日期"),
        "reset": _("重置后台修改"),
    },
    "gridmap.generation": {
        "generation": _("版本号"),
        "level": _("层级"),
        "count": _("区域数"),
        "active": _("原启用版本"),
        "retired": _("停用的版本"),
    },
    "gridmap.region": {"extent": _("范围（经纬度）")},
    "accounts.user": {
        "known": _("有此账号"),
        "until": _("锁定至"),
        "expired_at": _("会话到期时间"),
        "last_active": _("最后使用时间"),
        "reason": _("原因"),
        "sessions": _("退出的会话数"),
        # How a change was made when no account made it (`manage.py changepassword`).
        "via": _("操作途径"),
    },
    "command.screentoken": {"district": _("区")},
    "command.console": {"filters": _("筛选条件"), "rows": _("导出行数")},
    "audit.auditentry": {"filters": _("筛选条件"), "rows": _("导出行数")},
    "responder": {"grid": _("网格"), "street": _("街道")},
}

_PASSWORD_WORDS = {
    PASSWORD_SET: _("已设置"),
    PASSWORD_NONE: _("未设置（不能登录）"),
    PASSWORD_CHANGED: _("已更改"),
}


# Why a user's sessions were ended (accounts.sessions_revoked).
_SESSIONS_REASON_WORDS = {
    SESSIONS_PASSWORD_CHANGED: _("本人修改密码"),
    SESSIONS_PASSWORD_SET: _("管理员设置密码"),
    SESSIONS_DEACTIVATED: _("账号停用"),
    SESSIONS_STALE: _("已失效（密码已更改或账号已停用）"),
}


def _department_words(code: Any) -> str | None:
    """A department's full name in the reader's language; None for what is not a department."""
    return (department_name(code) or None) if isinstance(code, str) else None


def _departments_words(codes: Any) -> str | None:
    """Departments called out on a case (a list of codes): their short names, "应急、街道";
    none as （空）."""
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        return None
    return department_short_names_text(codes) if codes else gettext_now("（空）")


def _owner_words(owner: Any) -> str | None:
    """A case's owner as the entry stores it, [level, region code]: "社区工作站 440309001001"."""
    if isinstance(owner, list) and len(owner) == 2 and owner[0] in OwnerLevel.values:
        return f"{OwnerLevel(owner[0]).label} {owner[1]}"
    return None


def _plan_words(code: Any) -> str | None:
    """A response plan's code as its name (应急预案: "内涝积水较大及以上响应（三防联动）")."""
    plan = known_plans().get(code) if isinstance(code, str) else None
    return plan.label if plan is not None else None


def _choice_words(choices: Any) -> Any:
    table = dict(choices)

    def words(value: Any) -> str | None:
        return str(table[value]) if isinstance(value, str) and value in table else None

    return words


# Values that are codes of keys that are not fields with choices, by kind of object and key.
_VALUE_WORDS: dict[tuple[str, str], Any] = {
    ("incidents.incident", "department"): _department_words,
    ("incidents.incident", "supports"): _departments_words,
    ("incidents.incident", "supports_arrived"): _departments_words,
    ("incidents.incident", "support_department"): _department_words,
    ("incidents.incident", "plan"): _plan_words,
    ("incidents.incident", "owner"): _owner_words,
    ("incidents.incident", "reason_code"): _choice_words(SendBackReason.choices),
    ("incidents.category", "department_code"): _department_words,
    ("accounts.user", "department_code"): _department_words,
    ("accounts.user", "password"): _choice_words(_PASSWORD_WORDS.items()),
    ("accounts.user", "reason"): _choice_words(_SESSIONS_REASON_WORDS.items()),
    ("gridmap.generation", "level"): _choice_words(Level.choices),
}


@functools.cache
def _model(object_type: str) -> type[models.Model] | None:
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):  # not "<app>.<model>", or no such model
        return None


def _field(object_type: str, key: str) -> Any:
    model = _model(object_type)
    if model is None:
        return None
    try:
        return model._meta.get_field(key)
    except FieldDoesNotExist:
        return None


def audit_key_label(object_type: str, key: str) -> str:
    """What a key of an entry's before/after is called in the reader's language: from the table
    above, else the verbose name of the model's field, else the key as it is."""
    label = AUDIT_KEY_LABELS.get(object_type, {}).get(key)
    if label is not None:
        return str(label)
    field = _field(object_type, key)
    verbose_name = getattr(field, "verbose_name", None)
    return capfirst(str(verbose_name)) if verbose_name else key


def audit_value_words(object_type: str, key: str, value: Any) -> str | None:
    """A value of an entry's before/after in words, where it is a code that has words (a
    choice's label, a department's name, yes or no, an empty text as （空）: a case not yet
    dispatched has the department ""); None where the value is to be shown as it is."""
    if isinstance(value, bool):
        return capfirst(gettext_now("是") if value else gettext_now("否"))
    if value == "":
        return gettext_now("（空）")
    words = _VALUE_WORDS.get((object_type, key))
    if words is not None:
        return words(value)
    field = _field(object_type, key)
    choices = getattr(field, "choices", None)
    if choices and isinstance(value, str | int):
        label = dict(field.flatchoices).get(value)
        return str(label) if label is not None else None
    return None


# --- an entry's before/after, key by key ---------------------------------------------------------
#
# As the page's table shows it (templates/command/_audit_value.html) and the export's 变更
# column writes it (command.exports), one line a changed key.

# A value longer than this is cut where it is shown in words (a bulk report's entry holds every
# case it created); the export's JSON columns, the admin and the database keep it whole.
VALUE_SHOWN_MAX = 2000
# The key of the one row of an entry whose before or after is not a JSON object.
WHOLE_VALUE = "—"
# A side that does not have the key (a new row's before), as the page shows it.
NO_SIDE = "—"


@dataclass(frozen=True)
class AuditSide:
    """One side of a change: the value as shown (`text`), its words where it is a code that has
    words (a status, a department, yes or no), and whether it is JSON null."""

    text: str
    words: str | None
    empty: bool

    def read(self) -> str:
        """The side as a line of text reads it: its words, else the value as shown."""
        if self.empty:
            return gettext_now("（空）")
        return self.words if self.words is not None else self.text


@dataclass(frozen=True)
class AuditChange:
    """One key of an entry's before/after: the key as stored and in words, each side (None when
    that side does not have the key), and whether the two differ."""

    key: str
    label: str
    before: AuditSide | None
    after: AuditSide | None
    changed: bool

    def line(self) -> str:
        """The change as one line of text, "状态：已立案（待派遣）→ 已派遣（待签收）"; a side
        without the key as —."""
        before = self.before.read() if self.before is not None else NO_SIDE
        after = self.after.read() if self.after is not None else NO_SIDE
        return gettext_now("%(label)s：%(value)s") % {
            "label": self.label,
            "value": f"{before} → {after}",
        }


def audit_changes(object_type: str, before: Any, after: Any) -> list[AuditChange]:
    """An entry's before/after as changes key by key, in `_key_order`. A value that is not a
    JSON object is one change, keyed WHOLE_VALUE. No query: the words come from the tables
    above, the models' fields and the department list shipped with the code."""
    if not isinstance(before, dict | None) or not isinstance(after, dict | None):
        return [_change(object_type, WHOLE_VALUE, True, before, True, after)]
    before_map = before or {}
    after_map = after or {}
    keys = sorted({*before_map, *after_map}, key=_key_order(object_type))
    return [
        _change(
            object_type,
            key,
            key in before_map,
            before_map.get(key),
            key in after_map,
            after_map.get(key),
        )
        for key in keys
    ]


@functools.cache
def _key_order(object_type: str) -> Callable[[str], tuple[int, int, str]]:
    """The order an entry's keys are read in, the same on every database (PostgreSQL's jsonb
    keeps an object's keys by their length, SQLite as written): the model's fields in the
    model's order, then the keys of AUDIT_KEY_LABELS in the table's order, then any other key
    alphabetically."""
    model = _model(object_type)
    # Concrete fields only: a reverse relation (a case's `supports`) is not where a key of that
    # name comes from.
    fields = [field.name for field in model._meta.concrete_fields] if model is not None else []
    ranks = {
        **{key: (1, index) for index, key in enumerate(AUDIT_KEY_LABELS.get(object_type, {}))},
        **{name: (0, index) for index, name in enumerate(fields)},
    }

    def order(key: str) -> tuple[int, int, str]:
        rank = ranks.get(key, (2, 0))
        return (rank[0], rank[1], key)

    return order


def audit_changes_text(object_type: str, before: Any, after: Any) -> str:
    """The keys that changed, one line each ("处置部门：（空）→ 龙华区城市管理和综合执法局");
    empty when nothing changed."""
    changes = audit_changes(object_type, before, after)
    return "\n".join(change.line() for change in changes if change.changed)


def _change(
    object_type: str, key: str, had: bool, before: Any, has: bool, after: Any
) -> AuditChange:
    return AuditChange(
        key=key,
        label=key if key == WHOLE_VALUE else audit_key_label(object_type, key),
        before=_side(object_type, key, before) if had else None,
        after=_side(object_type, key, after) if has else None,
        changed=(had, before) != (has, after),
    )


def _side(object_type: str, key: str, value: Any) -> AuditSide:
    return AuditSide(
        text=_shown(value),
        words=audit_value_words(object_type, key, value),
        empty=value is None,
    )


def _shown(value: Any) -> str:
    """A value as shown: text as it is, anything else as compact JSON, cut after
    VALUE_SHOWN_MAX characters."""
    # Text as it is (a moment in the local time the rows use), but an empty text as "" (not to
    # be read as a missing value).
    text = _local_moment(value) if isinstance(value, str) and value else _compact_json(value)
    if len(text) > VALUE_SHOWN_MAX:
        cut = gettext_now("…（共 %(total)s 个字符，此处只显示前 %(shown)s 个）") % {
            "total": len(text),
            "shown": VALUE_SHOWN_MAX,
        }
        return text[:VALUE_SHOWN_MAX] + cut
    return text


# A moment as the entries store it (DjangoJSONEncoder: ISO 8601 with its offset or Z).
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _local_moment(text: str) -> str:
    """`text` as it is, unless it is a moment with its offset: then in the server's time zone,
    as the rows' times read ("2026-11-26 12:11:58"), whatever zone it was written in."""
    if not _MOMENT.fullmatch(text):
        return text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=False)
