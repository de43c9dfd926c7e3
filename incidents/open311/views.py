"""Open311 GeoReport v2 endpoints (docs/open311.md).

GET discovery, GET services, GET services/<code>, POST requests, GET requests (with the paging
extension: page, page_size), GET requests/<id> — each as `.json` or `.xml`. The GETs are public
(rate-limited by the project's anonymous throttle); POST is for integrations: an `api_key`
parameter (an active key of an integration account whose channels include `open311`), never a
session — so there is no CSRF check either, and a signed-in browser gets exactly what an
anonymous caller gets. Every refusal uses the spec's error format,
`[{"code": 400, "description": "<field>：<reason>"}]` (the reason in the reader's language,
docs/decisions/0015), and stores nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.services import api_key_authenticate
from audit.services import request_ip
from config.api_errors import body_too_large_reason, parse_error_reason
from incidents import services
from incidents.models import Channel
from incidents.open311 import selectors
from incidents.open311.renderers import answer, error_answer, problem
from incidents.open311.serializers import (
    CLOSED,
    OPEN,
    OPEN311_FIELD,
    Open311InputError,
    created_out,
    discovery_out,
    given_more_than_once,
    report_input,
    request_out,
    service_definition_out,
    service_out,
)
from incidents.services import GeographyUnavailable, IncidentInputError, OutsideDistrict
from incidents.workflow import ActionNotPermitted

# GeoReport v2: a date range "may not span more than 90 days"; without one, the last 90 days.
MAX_SPAN = timedelta(days=90)
_W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})$")
# An offset's "+" not percent-encoded in a query string arrives as a space.
_UNENCODED_PLUS = re.compile(r" (\d{2}:\d{2})$")
_CODE = re.compile(r"^\d{5}$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
# The paging extension: the largest page number taken, so that an offset (page - 1) × page_size
# always fits the databases' integers. A 90-day window never holds this many pages of one case.
MAX_PAGE = 1_000_000


class _ParameterError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.description = problem(field, reason)


class LenientJSONParser(JSONParser):
    """JSON bodies may carry NaN/Infinity literals: the locator then refuses them naming the
    field (lat: must be a finite number), as for a form-encoded "NaN"."""

    strict = False


class FormatInUrl(BaseContentNegotiation):
    """The format is the URL's extension (.json/.xml), never the Accept header: the views build
    their own answers, so no DRF renderer is chosen and no 406 is ever raised."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        content_type = request.content_type.split(";")[0].strip().lower()
        for parser in parsers:
            if parser.media_type == content_type:
                return parser
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


@extend_schema(exclude=True)  # a standard of its own: docs/open311.md
class Open311View(APIView):
    # Key-authenticated machine clients and the public: never a session (hence no CSRF check).
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser, LenientJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FormatInUrl

    def get_throttles(self) -> list[BaseThrottle]:
        # Anonymous reads are limited like the rest of the public API (CITYOPS_ANON_RATE);
        # writes carry a key.
        return super().get_throttles() if self.request.method == "GET" else []

    @property
    def fmt(self) -> str:
        return str(self.kwargs.get("fmt", "json"))

    # DRF's finalize_response takes any HttpResponse; its stubs say Response.
    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        """DRF's refusals (throttled, unreadable body, wrong method) in the spec's format."""
        if isinstance(exc, exceptions.Throttled):
            seconds = getattr(exc, "wait", None)
            wait = math.ceil(seconds) if seconds is not None else None
            reason = (
                _("请求过于频繁，请 %(seconds)s 秒后重试。") % {"seconds": wait}
                if wait
                else _("请求过于频繁。")
            )
            response = error_answer(self.fmt, status.HTTP_429_TOO_MANY_REQUESTS, [reason])
            if wait:
                response["Retry-After"] = str(wait)
            return response
        if isinstance(exc, exceptions.ParseError):
            return error_answer(self.fmt, 400, [problem("body", parse_error_reason(exc))])
        if isinstance(exc, exceptions.UnsupportedMediaType):
            given = self.request.content_type
            reason = (
                _(
                    "不接受“%(value)s”；请发送 application/x-www-form-urlencoded"
                    "（或 application/json）。"
                )
                % {"value": given}
                if given
                else _(
                    "没有 Content-Type；请发送 application/x-www-form-urlencoded"
                    "（或 application/json）。"
                )
            )
            return error_answer(self.fmt, 415, [problem("Content-Type", reason)])
        if isinstance(exc, exceptions.MethodNotAllowed):
            allowed = ", ".join(m for m in self.allowed_methods if m not in ("OPTIONS", "HEAD"))
            reason = _("这里不接受 %(method)s，请使用 %(allowed)s。") % {
                "method": self.request.method,
                "allowed": allowed,
            }
            return error_answer(self.fmt, 405, [problem("method", reason)])
        if isinstance(exc, RequestDataTooBig):
            return error_answer(self.fmt, 413, [problem("body", body_too_large_reason())])
        if isinstance(exc, TooManyFieldsSent):
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            reason = _("参数过多，最多 %(limit)s 个。") % {"limit": limit}
            return error_answer(self.fmt, 413, [problem("body", reason)])
        if isinstance(exc, exceptions.APIException):
            return error_answer(self.fmt, exc.status_code, [str(exc.detail)])
        return super().handle_exception(exc)


class DiscoveryView(Open311View):
    """Service Discovery (wiki.open311.org/Service_Discovery): where the GeoReport v2 endpoint
    is, in which formats, whom to ask, and how to get a key."""

    def get(self, request: Request, fmt: str) -> HttpResponse:
        # The endpoint's base is where this document sits: /open311/v2 (no trailing slash, as in
        # the spec's example; clients append /services.json and the like).
        here = reverse("open311:discovery", kwargs={"fmt": fmt})
        url = request.build_absolute_uri(here.rsplit("/", 1)[0])
        document = discovery_out(url=url, services_changed=selectors.services_changed_at())
        return answer(fmt, "discovery", document)


class ServiceListView(Open311View):
    def get(self, request: Request, fmt: str) -> HttpResponse:
        return answer(fmt, "services", [service_out(c) for c in selectors.open311_services()])


class ServiceDefinitionView(Open311View):
    def get(self, request: Request, fmt: str, code: str) -> HttpResponse:
        category = selectors.open311_service(code)
        if category is None:
            return error_answer(fmt, 404, [problem("service_code", _not_a_service(code))])
        return answer(fmt, "service_definition", service_definition_out(category))


def _not_a_service(code: str) -> str:
    return _("“%(value)s”不是服务代码。") % {"value": code}


def _list_param(request: Request, name: str) -> list[str]:
    """A parameter that may be comma-delimited and repeated: its values, in order, once each."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        for value in raw.split(","):
            value = value.strip()
            if value and value not in values:
                values.append(value)
    return values


def _datetime_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    value = _UNENCODED_PLUS.sub(r"+\1", raw)
    reason = _(
        "“%(value)s”不是带时区的 W3C 日期时间，例如 2026-03-01T00:00:00+08:00 或 "
        "2026-02-28T16:00:00Z（+ 须编码为 %%2B）。"
    ) % {"value": raw}
    if not _W3C.match(value):
        raise _ParameterError(name, reason)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _ParameterError(name, reason) from None


def _window(request: Request, now: datetime) -> tuple[datetime, datetime]:
    start = _datetime_param(request, "start_date")
    end = _datetime_param(request, "end_date")
    if start and end:
        if end < start:
            raise _ParameterError("end_date", _("不能早于 start_date。"))
        if end - start > MAX_SPAN:
            raise _ParameterError(
                "end_date", _("时间范围不能超过 %(days)s 天。") % {"days": MAX_SPAN.days}
            )
        return start, end
    if start:
        return start, start + MAX_SPAN
    if end:
        return end - MAX_SPAN, end
    return now - MAX_SPAN, now


def _service_codes(request: Request) -> list[str]:
    codes = _list_param(request, "service_code")
    for code in codes:
        if not _CODE.match(code):
            raise _ParameterError(
                "service_code", _("“%(value)s”不是服务代码（5 位数字）。") % {"value": code}
            )
    known = selectors.known_service_codes(codes)
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise _ParameterError(
            "service_code", _("不是服务代码：%(codes)s。") % {"codes": ", ".join(unknown)}
        )
    return codes


def _statuses(request: Request) -> list[str]:
    statuses = _list_param(request, "status")
    for value in statuses:
        if value not in (OPEN, CLOSED):
            raise _ParameterError(
                "status", _("“%(value)s”不是 open 或 closed。") % {"value": value}
            )
    return statuses


def _page_param(request: Request, name: str, *, maximum: int) -> int | None:
    """`page` or `page_size`: a whole number from 1 to `maximum`, or None when not given (or
    empty)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise _ParameterError(name, given_more_than_once(len(values)))
    raw = values[0].strip() if values else ""
    if not raw:
        return None
    shown = {"value": raw if len(raw) <= 20 else raw[:20] + "…", "limit": maximum}
    page = name == "page"
    if not _INTEGER.match(raw):
        raise _ParameterError(name, _("“%(value)s”不是整数。") % shown)
    digits = raw.lstrip("+-").lstrip("0")
    if raw.startswith("-") or not digits:
        reason = _("%(value)s 小于 1：页码从 1 开始。") if page else _("%(value)s 小于 1。")
        raise _ParameterError(name, reason % shown)
    # Compared as text first: a thousand-digit number is refused without converting it.
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        reason = (
            _("%(value)s 超过最大页码 %(limit)s。")
            if page
            else _("%(value)s 超过每页条数的上限 %(limit)s。")
        )
        raise _ParameterError(name, reason % shown)
    return int(digits)


def _next_page_link(
    request: Request, *, page: int, start: datetime, end: datetime, now: datetime
) -> str:
    """The absolute URL of the next page, for `Link: <…>; rel="next"`: the same query with
    page + 1. A window still open at `now` (no end_date, or one not yet reached) is fixed to
    [start, now] in the link, so that cases received between two pages cannot push cases of
    this page onto the next one and show them twice."""
    query = request.query_params.copy()
    query["page"] = str(page + 1)
    if end >= now:
        for name, moment in (("start_date", start), ("end_date", now)):
            query[name] = timezone.localtime(moment).isoformat(timespec="microseconds")
    return request.build_absolute_uri(request.path) + "?" + query.urlencode()


def _api_key(data: Any) -> ApiKey:
    """The key of an integration allowed to report on Open311; _ParameterError (answered 403)
    otherwise."""
    values: list[Any] = []
    if hasattr(data, "getlist"):
        values = list(data.getlist("api_key"))
    elif isinstance(data, dict) and data.get("api_key") is not None:
        values = [data["api_key"]]
    if len(values) > 1:
        raise _ParameterError("api_key", _("只能发送一个密钥。"))
    raw = values[0].strip() if values and isinstance(values[0], str) else ""
    if not raw:
        raise _ParameterError("api_key", _("创建服务请求需要接口密钥。"))
    key = api_key_authenticate(raw)
    if key is None:
        raise _ParameterError("api_key", _("密钥不存在或已停用。"))
    if Channel.OPEN311 not in key.channel_list:
        raise _ParameterError(
            "api_key",
            _("这个密钥不能在 %(channel)s 渠道上报。") % {"channel": Channel.OPEN311.value},
        )
    return key


class RequestListView(Open311View):
    def get(self, request: Request, fmt: str) -> HttpResponse:
        next_link = ""
        try:
            numbers = _list_param(request, "service_request_id")
            if numbers:
                # The spec: service_request_id overrides all other arguments — paging too (at
                # most MAX_REQUESTS ids, all answered at once).
                if len(numbers) > selectors.MAX_REQUESTS:
                    raise _ParameterError(
                        "service_request_id",
                        _("一次最多 %(limit)s 个编号。") % {"limit": selectors.MAX_REQUESTS},
                    )
                cases = selectors.public_requests_by_number(numbers)
            else:
                now = timezone.now()
                start, end = _window(request, now)
                service_codes = _service_codes(request)
                statuses = _statuses(request)
                page = _page_param(request, "page", maximum=MAX_PAGE) or 1
                # Without page_size a page is what the list was before paging: the first 1,000.
                page_size = _page_param(request, "page_size", maximum=selectors.MAX_REQUESTS)
                found = selectors.public_requests(
                    start=start,
                    end=end,
                    service_codes=service_codes,
                    statuses=statuses,
                    page=page,
                    page_size=page_size,
                )
                cases = found.cases
                if found.has_next and page < MAX_PAGE:
                    next_link = _next_page_link(request, page=page, start=start, end=end, now=now)
        except _ParameterError as exc:
            return error_answer(fmt, 400, [exc.description])
        response = answer(fmt, "service_requests", [request_out(case) for case in cases])
        if next_link:
            response["Link"] = f'<{next_link}>; rel="next"'
        return response

    def post(self, request: Request, fmt: str) -> HttpResponse:
        data = request.data
        try:
            key = _api_key(data)
        except _ParameterError as exc:
            return error_answer(fmt, 403, [exc.description])
        try:
            form = report_input(data, description_max=services.DESCRIPTION_MAX)
        except Open311InputError as exc:
            return error_answer(fmt, 400, exc.descriptions)
        category = selectors.report_category(form.service_code)
        if category is None:
            return error_answer(
                fmt, 400, [problem("service_code", _not_a_service(form.service_code))]
            )
        try:
            incident = services.incident_report(
                channel=Channel.OPEN311,
                category=category,
                lon=form.long,
                lat=form.lat,
                crs=form.crs,
                description=form.description,
                reporter=key.user,
                reporter_name=form.reporter_name,
                reporter_phone=form.phone,
                reporter_email=form.email,
                address=form.address_string,
                source_ref=form.device_id,
                ip=request_ip(request),
            )
        except OutsideDistrict as exc:
            return error_answer(fmt, 400, [problem("lat/long", exc.reason)])
        except IncidentInputError as exc:
            field = OPEN311_FIELD.get(exc.field, exc.field)
            return error_answer(fmt, 400, [problem(field, exc.reason)])
        except ActionNotPermitted as exc:
            return error_answer(fmt, 403, [problem("api_key", str(exc))])
        except GeographyUnavailable as exc:
            reason = _("服务暂不可用：%(reason)s") % {"reason": exc}
            return error_answer(fmt, 503, [reason])
        return answer(fmt, "service_requests", [created_out(incident)], status.HTTP_201_CREATED)


class RequestDetailView(Open311View):
    def get(self, request: Request, fmt: str, number: str) -> HttpResponse:
        case = selectors.public_request(number)
        if case is None:
            reason = _("没有编号为 %(number)s 的服务请求。") % {"number": number}
            return error_answer(fmt, 404, [problem("service_request_id", reason)])
        return answer(fmt, "service_requests", [request_out(case)])
