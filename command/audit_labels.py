"""The words of the audit page (审计日志): what each audited action and each kind of object is
called. An entry stores them as identifiers ("incidents.incident_dispatch", "gridmap.generation");
the page shows these words instead, and an identifier missing here as it is.

The workflow's steps are audited as "incidents.incident_<step>" and are named here by the
workflow itself (`incidents.workflow.action_label`), so a step is called the same on the case
page's timeline and in the audit trail. Every other action is in AUDIT_ACTION_LABELS;
tests/command/test_audit_page.py scans the code for the actions it records and fails when one
has no words here.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

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
