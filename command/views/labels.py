"""Words shared by the pages' scripts."""

from __future__ import annotations

from django.utils.translation import gettext as _


def api_field_labels() -> dict[str, str]:
    """How the API's field names read in an error shown to the user."""
    return {
        "category": _("事项分类"),
        "description": _("问题描述"),
        "lon": _("位置"),
        "lat": _("位置"),
        "location": _("位置"),
        "photos": _("照片"),
        "severity": _("事件级别"),
        "feedback": _("处置情况"),
        "note": _("说明"),
        "reason": _("理由"),
        "reason_code": _("退单原因"),
        "until": _("延期至"),
        "satisfaction": _("满意度"),
        "department": _("处置部门"),
        "assignee": _("指派给"),
        "into": _("合并到"),
        "accuracy_m": _("定位精度"),
    }
