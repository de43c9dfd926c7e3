"""What Open311 reads and writes: services out, the POST's parameters in, service requests out,
and the service discovery document.

Output is plain dicts in the spec's field order; renderers.py turns them into JSON or XML.
What a public reader may see of a case is decided here and nowhere else (ADR 0009): never a
name, phone number, e-mail or account; the description, the address as typed and the media URL
only of cases that came in through Open311 itself — other channels' free text is written by
grid workers and hotline operators about people and may name them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.models import (
    FINISHED_STATUSES,
    Category,
    CategoryKind,
    Channel,
    Incident,
    IncidentStatus,
    Stage,
    StageLimit,
    TimeUnit,
)
from incidents.open311.renderers import problem

OPEN, CLOSED = "open", "closed"

# --- services ------------------------------------------------------------------------------------

_KIND_TEXT = {
    CategoryKind.EVENT: "事件 event",
    CategoryKind.COMPONENT: "部件 component",
    CategoryKind.EMERGENCY: "突发事件 emergency",
}
# (Chinese unit, English singular, English plural) of a time limit.
_UNIT_TEXT = {
    TimeUnit.WORKING_HOURS: ("工作时", "working hour", "working hours"),
    TimeUnit.WORKING_DAYS: ("工作日", "working day", "working days"),
    TimeUnit.CALENDAR_HOURS: ("小时（自然时间）", "hour, day and night", "hours, day and night"),
    TimeUnit.CALENDAR_MINUTES: ("分钟（自然时间）", "minute", "minutes"),
}
EMERGENCY_NOTICE = "危及人身财产安全请先拨打 110/119/120 (in danger, call 110/119/120 first)"


def handling_limit_text(category: Category) -> str | None:
    """The category's handling limit (处置时限) in words, or None when it has none."""
    try:
        limit = category.limit_for(Stage.HANDLE)
    except StageLimit.DoesNotExist:
        return None
    zh, one, many = _UNIT_TEXT[TimeUnit(limit.unit)]
    return (
        f"处置时限 {limit.amount} {zh} "
        f"(handling limit: {limit.amount} {one if limit.amount == 1 else many})"
    )


def service_out(category: Category) -> dict[str, Any]:
    """One entry of GET services: a category (事项) as an Open311 service. GeoReport has no
    language: the names are the request's (`Category.label`: Chinese unless the client asks for
    English with `Accept-Language: en`, as for refusals; ADR 0016)."""
    kind = _KIND_TEXT[CategoryKind(category.kind)]
    parts = [kind, f"{category.major_code} {category.major_label}", category.label]
    limit = handling_limit_text(category)
    if limit:
        parts.append(limit)
    if category.is_emergency:
        parts.append(EMERGENCY_NOTICE)
    keywords = [kind, category.major_label]
    if category.component_name:
        keywords.append(category.component_label)
    return {
        "service_code": category.code,
        "service_name": category.label,
        "description": " · ".join(parts),
        # No attributes are defined: the service definition would add nothing to ask.
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": category.major_label,
    }


def service_definition_out(category: Category) -> dict[str, Any]:
    """GET services/<code>: the extra questions of a service. CityOps asks none (metadata is
    false), so the definition is the code with an empty attribute list."""
    return {"service_code": category.code, "attributes": []}


# --- POST requests: the parameters ----------------------------------------------------------------

# The media URL is recorded (never fetched) on the case's description, as its last line, where
# operators see it and this module finds it again. (Incident has no column for it.)
MEDIA_MARK = "媒体链接 media_url: "
_MEDIA_LINE = re.compile(r"(?:\A|\n\n)" + re.escape(MEDIA_MARK) + r"(https?://\S+)\Z")
MEDIA_URL_MAX = 500
NAME_MAX = 50  # Incident.reporter_name
ID_MAX = 100  # Incident.source_ref (device_id); account_id is held to the same bound
_CJK = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff·]+$")
_validate_url = URLValidator(schemes=["http", "https"])

# The POST's parameters (GeoReport v2, plus the CityOps extension `crs`). Others are ignored, as
# the spec lets clients send `attribute[…]` and the like to every server.
PARAMETERS = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "crs",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)

# Names of incident_report's arguments as the Open311 client knows them.
OPEN311_FIELD = {
    "lon": "long",
    "category": "service_code",
    "reporter_name": "first_name",
    "reporter_phone": "phone",
    "reporter_email": "email",
    "address": "address_string",
    "source_ref": "device_id",
}


class Open311InputError(ValueError):
    """Refused parameters: a list of (field, reason), each reported as `<field>：<reason>`."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))
        self.problems = problems

    @property
    def descriptions(self) -> list[str]:
        return [problem(field, reason) for field, reason in self.problems]


@dataclass(frozen=True)
class ReportInput:
    api_key: str
    service_code: str
    lat: Any  # as received: the locator checks it (NaN, range, swapped) and names the field
    long: Any
    crs: str
    address_string: str
    email: str
    phone: str
    device_id: str
    account_id: str
    reporter_name: str
    description: str  # with the media URL line when one was sent
    media_url: str


def _values(data: Any, name: str) -> list[Any]:
    if hasattr(data, "getlist"):  # form-encoded: a QueryDict
        return list(data.getlist(name))
    return [data[name]] if name in data else []


def _raw(data: Any, name: str, problems: list[tuple[str, str]]) -> Any:
    values = _values(data, name)
    if len(values) > 1:
        problems.append((name, given_more_than_once(len(values))))
        return None
    return values[0] if values else None


def given_more_than_once(count: int) -> str:
    return _("出现了 %(count)s 次，只能发送一次。") % {"count": count}


def _text(data: Any, name: str, problems: list[tuple[str, str]]) -> str:
    value = _raw(data, name, problems)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append((name, _("必须是文本。")))
        return ""
    return str(value).strip()


def _coordinate(data: Any, name: str, problems: list[tuple[str, str]]) -> Any:
    repeated = len(problems)
    value = _raw(data, name, problems)
    if len(problems) > repeated:
        return None
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(
            (
                name,
                _(
                    "不能为空：案件按坐标点定位，仅凭地址无法定位；请发送 lat 和 long"
                    "（WGS-84 十进制度）。"
                ),
            )
        )
        return None
    return value


def _too_long(limit: int, count: int) -> str:
    return _("最多 %(limit)s 个字符，现有 %(count)s 个。") % {"limit": limit, "count": count}


def reporter_name(first_name: str, last_name: str) -> str:
    """The reporter's name as it is written: 张 + 三 → 张三 (Chinese: family name first, no
    space); Jane + Doe → Jane Doe."""
    if first_name and last_name and _CJK.match(first_name) and _CJK.match(last_name):
        return last_name + first_name
    return " ".join(part for part in (first_name, last_name) if part)


def description_with_media(description: str, media_url: str) -> str:
    if not media_url:
        return description
    line = MEDIA_MARK + media_url
    return f"{description}\n\n{line}" if description else line


def split_media(stored: str) -> tuple[str, str | None]:
    """(description, media URL or None) of a description written by description_with_media."""
    match = _MEDIA_LINE.search(stored)
    if match is None:
        return stored, None
    return stored[: match.start()], match.group(1)


def report_input(data: Any, *, description_max: int) -> ReportInput:
    """The POST's parameters, checked as far as Open311 itself defines them (the intake service
    checks the rest and names the field); Open311InputError lists every problem found here."""
    if not isinstance(data, Mapping) and not hasattr(data, "getlist"):
        raise Open311InputError([("body", _("必须是参数的表单（或 JSON 对象）。"))])
    problems: list[tuple[str, str]] = []
    text = {name: _text(data, name, problems) for name in PARAMETERS if name not in ("lat", "long")}
    if not text["service_code"] and "service_code" not in {field for field, _ in problems}:
        problems.append(("service_code", _("不能为空。")))
    lat = _coordinate(data, "lat", problems)
    long = _coordinate(data, "long", problems)
    media_url = text["media_url"]
    if media_url:
        if len(media_url) > MEDIA_URL_MAX:
            problems.append(("media_url", _too_long(MEDIA_URL_MAX, len(media_url))))
        else:
            try:
                _validate_url(media_url)
            except ValidationError:
                problems.append(("media_url", _("不是 http(s) 网址。")))
    name = reporter_name(text["first_name"], text["last_name"])
    if len(name) > NAME_MAX:
        problems.append(
            (
                "last_name",
                _("first_name 和 last_name 合计 %(count)s 个字符，最多 %(limit)s 个。")
                % {"count": len(name), "limit": NAME_MAX},
            )
        )
    for field in ("device_id", "account_id"):
        if len(text[field]) > ID_MAX:
            problems.append((field, _too_long(ID_MAX, len(text[field]))))
    description = description_with_media(text["description"], media_url)
    if len(description) > description_max:
        room = description_max - (len(description) - len(text["description"]))
        count = len(text["description"])
        problems.append(
            (
                "description",
                _("连同这个 media_url，最多 %(limit)s 个字符，现有 %(count)s 个。")
                % {"limit": room, "count": count}
                if media_url
                else _too_long(room, count),
            )
        )
    if problems:
        raise Open311InputError(problems)
    return ReportInput(
        api_key=text["api_key"],
        service_code=text["service_code"],
        lat=lat,
        long=long,
        crs=text["crs"] or "wgs84",
        address_string=text["address_string"],
        email=text["email"],
        phone=text["phone"],
        device_id=text["device_id"],
        account_id=text["account_id"],
        reporter_name=name,
        description=description,
        media_url=media_url,
    )


# --- service requests out ------------------------------------------------------------------------


def w3c(moment: datetime | None) -> str | None:
    """W3C (ISO 8601) on the district's clock, with its offset: 2026-03-02T09:30:00+08:00."""
    if moment is None:
        return None
    return timezone.localtime(moment).isoformat(timespec="seconds")


def open311_status(incident: Incident) -> str:
    """Open311 knows open and closed: finished cases (rejected, closed, evaluated, merged) are
    closed; everything still in somebody's queue, parked cases included, is open."""
    return CLOSED if incident.status in FINISHED_STATUSES else OPEN


def status_notes(incident: Incident) -> str:
    """The finer CityOps state in words (Chinese, then English). Names only departments (by
    code) and case numbers — never a person."""
    status = incident.status
    department = incident.assigned_department_code
    by = department or "the assigned handler"
    notes: dict[str, str] = {
        IncidentStatus.REPORTED: "已上报（待立案） received, awaiting registration",
        IncidentStatus.REGISTERED: "已立案（待派遣） registered, awaiting dispatch",
        IncidentStatus.REJECTED: "不予立案 not taken on as a case",
        IncidentStatus.DISPATCHED: f"已派遣 dispatched to {department or 'a handler'}",
        IncidentStatus.RETURNED: "已退单（待重新派遣） sent back, awaiting a new dispatch",
        IncidentStatus.ACCEPTED: f"已签收 accepted by {by}",
        IncidentStatus.HANDLING: f"处置中 being handled by {by}",
        IncidentStatus.FED_BACK: f"已反馈（待核查） {by} reports it done, awaiting verification",
        IncidentStatus.VERIFIED: "核查通过（待结案） the fix was verified, awaiting closure",
        IncidentStatus.CLOSED: "已结案 closed: fixed and verified",
        IncidentStatus.EVALUATED: "已结案（已评价） closed: fixed, verified and evaluated",
        IncidentStatus.PARKED: "挂账 parked: cannot be solved for now, kept on the books",
    }
    if status == IncidentStatus.MERGED:
        primary = incident.merged_into.number if incident.merged_into else "another case"
        return f"已合并 merged into {primary}: a duplicate, follow that service request"
    text = notes.get(status, status)
    if incident.escalations and incident.is_open:
        text += f"；已督办 {incident.escalations} 次 (escalated {incident.escalations}×)"
    return text


def place_text(incident: Incident) -> str:
    """Where a case is, by the regions it was located in: 龙华区龙华街道三联社区."""
    return f"{incident.district_name}{incident.street_name}{incident.community_name}"


def request_out(incident: Incident) -> dict[str, Any]:
    """One service request as the public may read it (ADR 0009)."""
    own = incident.channel == Channel.OPEN311
    description: str | None = None
    media_url: str | None = None
    if own:
        description, media_url = split_media(incident.description)
    return {
        "service_request_id": incident.number,
        "status": open311_status(incident),
        "status_notes": status_notes(incident),
        "service_name": incident.category.label,
        "service_code": incident.category.code,
        "description": description,
        "agency_responsible": incident.assigned_department_code or None,
        "service_notice": handling_limit_text(incident.category),
        "requested_datetime": w3c(incident.created_at),
        "updated_datetime": w3c(incident.updated_at),
        "expected_datetime": w3c(incident.stage_deadline),
        "address": (incident.address if own and incident.address else place_text(incident)),
        "lat": round(incident.location.y, 6),
        "long": round(incident.location.x, 6),
        "media_url": media_url,
    }


def created_out(incident: Incident) -> dict[str, Any]:
    """The answer to POST requests: the case number and what happens next."""
    notice = f"已受理 received as {incident.number}"
    limit = handling_limit_text(incident.category)
    if limit:
        notice += f"；{limit}"
    return {"service_request_id": incident.number, "service_notice": notice, "account_id": None}


# --- service discovery ---------------------------------------------------------------------------

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# The media types of the formats every endpoint answers in (.json, .xml).
FORMAT_MEDIA_TYPES = ["application/json", "text/xml"]
# When this server's Open311 interface last changed (2026-11-26 00:00 +08:00: services and
# requests name the category in English for a client that asks for English; before, 2026-11-25:
# service discovery and the paging extension). Move it forward with any change to the
# endpoints, their parameters or their answers: discovery's changeset is never earlier than this.
INTERFACE_CHANGED = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
CONTACT = (
    "区指挥中心 CityOps 管理员 — the CityOps administrators of the district command centre "
    "that runs this server"
)
KEY_SERVICE = (
    "API key 由 CityOps 管理员签发 — keys are issued by the CityOps administrators to an "
    "integration account with the open311 channel (manage.py accounts_issue_api_key); "
    "only POST requests needs one, every GET is public"
)


def discovery_out(*, url: str, services_changed: datetime | None) -> dict[str, Any]:
    """The Service Discovery document: this one production endpoint at `url` (absolute, no
    trailing slash, as the spec's example). Its changeset is the later of the interface's last
    change and the service list's (services_changed), so a client that caches GET services
    learns when to fetch it again."""
    changed = max(INTERFACE_CHANGED, services_changed or INTERFACE_CHANGED)
    return {
        "changeset": w3c(changed),
        "contact": CONTACT,
        "key_service": KEY_SERVICE,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": w3c(changed),
                "type": "production",
                "formats": list(FORMAT_MEDIA_TYPES),
            }
        ],
    }
