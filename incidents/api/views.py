"""HTTP API of cases: report, list, read, and one endpoint per workflow action.

Thin views (docs/incidents.md, "REST API"): validate with the input serializer, call one
service or selector, serialise with the output serializer. Errors have the project's shape —
`{"<field>": ["reason"]}` (400), `{"detail": …}` otherwise; a case the user may not see is 404
exactly like a number that does not exist. Writes honour `Idempotency-Key`
(incidents.api.idempotency).

The report and the feed-back action also take multipart/form-data with `photos` file parts
(incidents.services.photos): the photos are checked before anything is stored, then the step
and its photos are one transaction. Photos are served here, scoped like their case, never from
a public /media/ URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from django.http import FileResponse, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, Role, User
from audit.services import request_ip
from config.api_errors import body_too_large_reason
from incidents import services
from incidents.api import serializers as io
from incidents.api.idempotency import HEADER, idempotent
from incidents.models import Category, Incident, IncidentPhoto, IncidentStatus, PhotoKind
from incidents.selectors import (
    BAD_DAY,
    DAY_OUT_OF_RANGE,
    DAYS_REVERSED,
    FIRST_DAY,
    LAST_DAY,
    incident_for_user,
    incident_photo_for_user,
    incidents_visible_to,
    photo_original_allowed,
    received_days,
    received_within,
)
from incidents.services import (
    GeographyUnavailable,
    IllegalTransition,
    IncidentInputError,
    OutsideDistrict,
)
from incidents.services.photos import (
    CONTENT_TYPES,
    EXTENSIONS,
    CheckedPhoto,
    PhotoLimits,
    PhotoRejected,
    PhotoTooLarge,
    incident_photo_add,
    photo_label,
    photos_check,
    size_text,
    too_large_reason,
)
from incidents.workflow import ActionNotPermitted

log = logging.getLogger(__name__)

# --- parsing -------------------------------------------------------------------------------------


class LenientJSONParser(JSONParser):
    """DRF's JSON parser, except that NaN and Infinity literals parse: the locator then refuses
    them naming the field (`{"lon": ["必须是有限的数字…"]}`) instead of a bare parse
    error."""

    strict = False


class PhotoUploadLimit(FileUploadHandler):
    """The first upload handler of a multipart request: while the body streams in, it refuses a
    file over CITYOPS_PHOTO_MAX_BYTES (413) and more files than a request may carry (400), so
    an oversized upload is stopped at the cap instead of being spooled to disk whole.
    DATA_UPLOAD_MAX_MEMORY_SIZE bounds only the form's other fields."""

    def __init__(self, request: HttpRequest | None, limits: PhotoLimits) -> None:
        super().__init__(request)
        self.limits = limits
        self.files = 0
        self.label = ""

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        self.files += 1
        if self.files > self.limits.max_per_request:
            raise PhotoRejected(
                _("收到的文件超过 %(limit)s 个，每次请求最多 %(limit)s 张照片。")
                % {"limit": self.limits.max_per_request}
            )
        self.label = photo_label(self.files, file_name)
        super().new_file(field_name, file_name, *args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limits.max_bytes:
            raise PhotoTooLarge(too_large_reason(self.label, self.limits.max_bytes))
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) keeps the bytes


def _accepts_multipart(request: Request) -> bool:
    return request.content_type.startswith("multipart/form-data") and any(
        isinstance(parser, MultiPartParser) for parser in request.parsers or ()
    )


def _too_large(body: dict[str, Any]) -> Response:
    return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def _parsed(request: Request) -> Response | None:
    """Parse the body before anything else (a key is claimed only for a readable body): None, or
    the answer to a body too large (413; Django refuses to read more than
    DATA_UPLOAD_MAX_MEMORY_SIZE of JSON or form fields; a multipart request may in addition
    carry CITYOPS_PHOTO_MAX_PER_REQUEST photos of CITYOPS_PHOTO_MAX_BYTES each, and its
    Content-Length is checked before a byte is read). A malformed body raises ParseError (400)."""
    if _accepts_multipart(request):
        limits = PhotoLimits.from_settings()
        cap = limits.max_per_request * limits.max_bytes + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > cap:
            return _too_large(
                {
                    "photos": [
                        _(
                            "请求大小为 %(size)s，最多 %(limit)s（%(count)s 张照片，每张最多 "
                            "%(photo_limit)s，另加其他字段）。"
                        )
                        % {
                            "size": size_text(length),
                            "limit": size_text(cap),
                            "count": limits.max_per_request,
                            "photo_limit": size_text(limits.max_bytes),
                        }
                    ]
                }
            )
        request.upload_handlers.insert(0, PhotoUploadLimit(request._request, limits))
    try:
        request.data  # noqa: B018
    except PhotoTooLarge as exc:
        return _too_large({"photos": [exc.reason]})
    except PhotoRejected as exc:
        return _field_error("photos", exc.reason)
    except RequestDataTooBig:
        return _too_large({"detail": body_too_large_reason()})
    return None


def _add_photos(
    incident: Incident, kind: str, photos: list[CheckedPhoto], by: Any, ip: str | None
) -> None:
    for photo in photos:
        incident_photo_add(incident=incident, kind=kind, upload=photo, by=by, ip=ip)


# --- answers -------------------------------------------------------------------------------------

# Service argument names that the API spells differently.
_API_FIELD = {"department_code": "department"}


def _field_error(field: str, reason: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({_API_FIELD.get(field, field): [reason]}, status=code)


def _no_case(number: str) -> str:
    return _("没有编号为 %(number)s 的案件。") % {"number": number}


def _not_found(number: str) -> Response:
    return Response({"detail": _no_case(number)}, status=status.HTTP_404_NOT_FOUND)


def _refusal(exc: Exception) -> Response:
    """The answer to a refusal by a service."""
    if isinstance(exc, PhotoTooLarge):
        return _too_large({"photos": [exc.reason]})
    if isinstance(exc, OutsideDistrict):
        return Response(
            {"lon": [exc.reason], "lat": [exc.reason], "distance_m": round(exc.distance_m, 1)},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IncidentInputError):
        return _field_error(exc.field, exc.reason)
    if isinstance(exc, IllegalTransition):
        return Response(
            {"detail": str(exc), "status": exc.status, "allowed_actions": exc.allowed},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, ActionNotPermitted):
        return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, GeographyUnavailable):
        return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    raise exc


_REFUSALS = (IncidentInputError, IllegalTransition, ActionNotPermitted, GeographyUnavailable)


def _incident_out(
    incident: Incident, request: Request, code: int = 200, *, reread: bool = True
) -> Response:
    # Re-read with the related rows the representation shows. Not re-scoped: whoever just acted
    # on the case gets its new state even when the step took it out of their view (a send-back).
    # A case incident_report has just written is its row as stored, with its category and
    # reporter and no assignee or merge: it is shown as it is (`reread=False`).
    fresh = (
        Incident.objects.select_related("category", "reporter", "assignee", "merged_into")
        .filter(pk=incident.pk)
        .get()
        if reread
        else incident
    )
    return Response(io.IncidentOut(fresh, context={"user": request.user}).data, status=code)


_IDEMPOTENCY_PARAM = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    description="a fresh key (UUID) per write, the same on every retry of it: a retry gets the "
    "first answer; the same key with another body → 422; while the first is in flight → 409. "
    "Keys expire after 24 h.",
)
_ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(description='bad input: {"<field>": ["reason"]}'),
    403: OpenApiResponse(description="not signed in, or not permitted"),
    413: OpenApiResponse(description="request body too large"),
    422: OpenApiResponse(description="Idempotency-Key reused for another request"),
}


# --- report and list -----------------------------------------------------------------------------


class IncidentPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class IncidentListView(APIView):
    parser_classes = [LenientJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="incidents_list",
        summary="Cases you may see, newest first",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=IncidentStatus.values),
            OpenApiParameter("category", OpenApiTypes.STR, description="category code"),
            OpenApiParameter("street", OpenApiTypes.STR, description="street code"),
            OpenApiParameter("community", OpenApiTypes.STR, description="community code"),
            OpenApiParameter(
                "overdue", OpenApiTypes.BOOL, description="true: the running clock is past"
            ),
            OpenApiParameter(
                "since", OpenApiTypes.DATE, description="received on or after this local day"
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATE, description="received on or before this local day"
            ),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="at most 200"),
        ],
        responses={200: io.IncidentPageOut, 400: _ERRORS[400], 403: _ERRORS[403]},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        cases = incidents_visible_to(request.user).select_related("category")
        value = params.get("status")
        if value:
            if value not in IncidentStatus.values:
                return _field_error("status", _("“%(value)s”不是案件状态。") % {"value": value})
            cases = cases.filter(status=value)
        for name, field in (
            ("category", "category__code"),
            ("street", "street_code"),
            ("community", "community_code"),
        ):
            value = params.get(name)
            if value:
                if not value.isdigit():
                    return _field_error(name, _("代码只能由数字组成。"))
                cases = cases.filter(**{field: value})
        overdue = params.get("overdue")
        if overdue:
            if overdue not in ("true", "false"):
                return _field_error("overdue", _("必须是 true 或 false。"))
            late = {"stage_deadline__lt": timezone.now()}
            cases = cases.filter(**late) if overdue == "true" else cases.exclude(**late)
        since, until, day_errors = received_days(params.get("since", ""), params.get("until", ""))
        if day_errors:
            reasons = {
                DAYS_REVERSED: _("不能早于 since。"),
                BAD_DAY: _("日期的格式是 YYYY-MM-DD。"),
                DAY_OUT_OF_RANGE: _("必须在 %(first)s 到 %(last)s 之间。")
                % {"first": FIRST_DAY, "last": LAST_DAY},
            }
            errors = {name: [reasons[problem]] for name, problem in day_errors.items()}
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        cases = received_within(cases, since, until)
        paginator = IncidentPagination()
        page = paginator.paginate_queryset(cases.order_by("-created_at", "-id"), request, self)
        assert page is not None
        return paginator.get_paginated_response(io.IncidentListOut(page, many=True).data)

    @extend_schema(
        operation_id="incidents_create",
        summary="Report a case (上报), with photos when sent as multipart/form-data",
        request={"application/json": io.ReportIn, "multipart/form-data": io.ReportIn},
        parameters=[_IDEMPOTENCY_PARAM],
        responses={
            201: io.IncidentOut,
            **_ERRORS,
            409: OpenApiResponse(description="a request with this Idempotency-Key is in flight"),
            503: OpenApiResponse(description="no active boundary generation"),
        },
    )
    def post(self, request: Request) -> Response:
        return _parsed(request) or idempotent(request, lambda: self._report(request))

    def _report(self, request: Request) -> Response:
        form = io.ReportIn(data=request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        data = form.validated_data
        user = request.user
        grid_worker = getattr(user, "role", "") == Role.GRID_WORKER
        allowed: tuple[str, ...] = io.GRID_WORKER_CHANNELS if grid_worker else io.STAFF_CHANNELS
        if isinstance(request.auth, ApiKey):
            # An integration reports only on the channels its key was issued for.
            allowed = tuple(c for c in allowed if c in request.auth.channel_list)
            if not allowed:
                reason = (
                    _("此接口密钥不能上报单个案件：它的渠道是 %(channels)s。")
                    % {"channels": request.auth.channels}
                    if request.auth.channels
                    else _("此接口密钥不能上报单个案件：它没有任何渠道。")
                )
                return Response({"detail": reason}, status=status.HTTP_403_FORBIDDEN)
        channel = data.get("channel") or allowed[0]
        if channel not in allowed:
            return _field_error(
                "channel",
                _("“%(value)s”不是您可用的渠道（%(choices)s）。")
                % {"value": channel, "choices": ", ".join(allowed)},
            )
        category = Category.objects.filter(code=data["category"]).first()
        if category is None:
            return _field_error(
                "category", _("“%(value)s”不是事项分类代码。") % {"value": data["category"]}
            )
        try:
            # Decoded and re-encoded before the transaction (the slow part); PhotoRejected names
            # the first bad one.
            photos = photos_check(data["photos"])
            # The case and its photos: one transaction (without photos, the service's own).
            with transaction.atomic() if photos else nullcontext():
                incident = services.incident_report(
                    channel=channel,
                    category=category,
                    lon=data["lon"],
                    lat=data["lat"],
                    crs=data["crs"],
                    description=data["description"],
                    reporter=user,  # type: ignore[arg-type]
                    reporter_name=data["reporter_name"],
                    reporter_phone=data["reporter_phone"],
                    address=data["address"],
                    severity=data["severity"] or None,
                    client_reported_at=data["client_reported_at"],
                    ip=request_ip(request),
                )
                _add_photos(incident, PhotoKind.BEFORE, photos, user, request_ip(request))
        except _REFUSALS as exc:
            return _refusal(exc)
        return _incident_out(incident, request, status.HTTP_201_CREATED, reread=False)


class IncidentDetailView(APIView):
    @extend_schema(
        operation_id="incidents_retrieve",
        summary="One case with its timeline and the actions you may take",
        responses={
            200: io.IncidentOut,
            403: _ERRORS[403],
            404: OpenApiResponse(description="no such case, or not yours to see"),
        },
    )
    def get(self, request: Request, number: str) -> Response:
        try:
            incident = incident_for_user(request.user, number)
        except Incident.DoesNotExist:
            return _not_found(number)
        return _incident_out(incident, request)


# --- photos --------------------------------------------------------------------------------------


class _AnyAccept(BaseContentNegotiation):
    """Photos answer with the image whatever the Accept header says (an <img> asks for image/*;
    errors are JSON)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class IncidentPhotoView(APIView):
    """One photo's display copy (re-encoded, no metadata), for whoever may see the case."""

    content_negotiation_class = _AnyAccept
    original = False

    @extend_schema(
        operation_id="incidents_photo_retrieve",
        summary="A photo of a case: the display copy (JPEG or WebP, no metadata)",
        responses={
            (200, "image/*"): OpenApiTypes.BINARY,
            403: _ERRORS[403],
            404: OpenApiResponse(description="no such photo, or its case is not yours to see"),
        },
    )
    def get(self, request: Request, number: str, photo_id: int) -> Any:
        try:
            photo = incident_photo_for_user(request.user, number, photo_id)
        except IncidentPhoto.DoesNotExist:
            return Response(
                {
                    "detail": _("案件 %(number)s 没有编号为 %(photo)s 的照片。")
                    % {"number": number, "photo": photo_id}
                },
                status=status.HTTP_404_NOT_FOUND,
            )
        if self.original and not photo_original_allowed(request.user, photo):
            return Response(
                {
                    "detail": _(
                        "原图（含 EXIF 和 GPS 信息）只对负责该案件的各级工作人员、审计员、管理员和"
                        "上传者开放；请使用展示图。"
                    )
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        stored = photo.original if self.original else photo.display
        fmt = photo.original_format if self.original else _format_of(stored.name or "")
        try:
            handle = stored.open("rb")
        except OSError:
            log.error("the file %s of photo %s is missing", stored.name, photo.pk)
            return Response(
                {"detail": _("照片 %(photo)s 的文件缺失。") % {"photo": photo_id}},
                status=status.HTTP_404_NOT_FOUND,
            )
        suffix = "-original" if self.original else ""
        response = FileResponse(
            handle,
            content_type=CONTENT_TYPES.get(fmt, "application/octet-stream"),
            as_attachment=self.original,
            filename=f"{number}-{photo.pk}{suffix}.{EXTENSIONS.get(fmt, 'bin')}",
        )
        # Per user (session): never in a shared cache; never run as a document.
        response["Cache-Control"] = "private, max-age=3600"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        if self.original:
            response["ETag"] = f'"{photo.original_sha256}"'
        return response


class IncidentPhotoOriginalView(IncidentPhotoView):
    """One photo's original bytes, untouched (the evidence; EXIF and GPS included): for the
    staff of the hierarchy, auditors, admins and the uploader."""

    original = True

    @extend_schema(
        operation_id="incidents_photo_original",
        summary="A photo's original bytes as uploaded (evidence; SHA-256 in the case's photos)",
        responses={
            (200, "image/*"): OpenApiTypes.BINARY,
            403: OpenApiResponse(description="not signed in, or not allowed the original"),
            404: OpenApiResponse(description="no such photo, or its case is not yours to see"),
        },
    )
    def get(self, request: Request, number: str, photo_id: int) -> Any:
        return super().get(request, number, photo_id)


def _format_of(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower()
    return {ext: fmt for fmt, ext in EXTENSIONS.items()}.get(extension, "")


# --- workflow actions ----------------------------------------------------------------------------

Perform = Callable[[Incident, Any, dict[str, Any], str | None], Incident]


class _LookupError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason


def _dispatch(incident: Incident, by: Any, data: dict[str, Any], ip: str | None) -> Incident:
    assignee = None
    if data["assignee"]:
        assignee = User.objects.filter(username=data["assignee"]).first()
        if assignee is None:
            raise _LookupError("assignee", _("没有用户“%(value)s”。") % {"value": data["assignee"]})
    return services.incident_dispatch(
        incident=incident,
        by=by,
        department_code=data["department"],
        assignee=assignee,
        note=data["note"],
        ip=ip,
    )


def _feed_back(incident: Incident, by: Any, data: dict[str, Any], ip: str | None) -> Incident:
    """反馈 with the after-photos (处置后): checked first, then one transaction."""
    photos = photos_check(data["photos"])
    with transaction.atomic():
        incident = services.incident_feed_back(
            incident=incident, by=by, feedback=data["feedback"], ip=ip
        )
        _add_photos(incident, PhotoKind.AFTER, photos, by, ip)
    return incident


def _merge(incident: Incident, by: Any, data: dict[str, Any], ip: str | None) -> Incident:
    try:
        into = incident_for_user(by, data["into"])
    except Incident.DoesNotExist:
        raise _LookupError("into", _no_case(data["into"])) from None
    return services.incident_merge(
        incident=incident, into=into, by=by, reason=data["reason"], ip=ip
    )


@dataclass(frozen=True)
class ActionSpec:
    action: str  # the workflow's name (incidents.workflow.TRANSITIONS)
    summary: str
    form: type[serializers.Serializer]
    perform: Perform
    # Takes multipart/form-data with `photos` besides JSON.
    photos: bool = False

    @property
    def slug(self) -> str:
        return self.action.replace("_", "-")


def _simple(service: Callable[..., Incident]) -> Perform:
    """A service whose keyword arguments are exactly the form's fields."""

    def perform(incident: Incident, by: Any, data: dict[str, Any], ip: str | None) -> Incident:
        return service(incident=incident, by=by, ip=ip, **data)

    return perform


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("register", "立案 register", io.NoteIn, _simple(services.incident_register)),
    ActionSpec("reject", "不予立案 reject", io.ReasonIn, _simple(services.incident_reject)),
    ActionSpec("dispatch", "派遣 dispatch", io.DispatchIn, _dispatch),
    ActionSpec("accept", "签收 accept", io.NoteIn, _simple(services.incident_accept)),
    ActionSpec("send_back", "退单 send back", io.SendBackIn, _simple(services.incident_send_back)),
    ActionSpec("handle", "处置 handle", io.NoteIn, _simple(services.incident_handle)),
    ActionSpec("feed_back", "反馈 feed back", io.FeedBackIn, _feed_back, photos=True),
    ActionSpec("verify", "核查 verify", io.VerifyIn, _simple(services.incident_verify)),
    ActionSpec(
        "rework",
        "核查不通过 rework",
        io.ReworkIn,
        lambda i, by, d, ip: services.incident_verify(
            incident=i, by=by, passed=False, note=d["note"], ip=ip
        ),
    ),
    ActionSpec("close", "结案 close", io.NoteIn, _simple(services.incident_close)),
    ActionSpec("evaluate", "评价 evaluate", io.EvaluateIn, _simple(services.incident_evaluate)),
    ActionSpec("reopen", "重新打开 reopen", io.ReasonIn, _simple(services.incident_reopen)),
    ActionSpec(
        "request_extension",
        "申请延期 request an extension",
        io.RequestExtensionIn,
        _simple(services.incident_request_extension),
    ),
    ActionSpec(
        "approve_extension",
        "批准延期 approve the extension",
        io.ApproveExtensionIn,
        _simple(services.incident_approve_extension),
    ),
    ActionSpec(
        "decline_extension",
        "驳回延期 decline the extension",
        io.NoteIn,
        lambda i, by, d, ip: services.incident_approve_extension(
            incident=i, by=by, approved=False, note=d["note"], ip=ip
        ),
    ),
    ActionSpec(
        "call_out",
        "增派协办 call out more departments",
        io.CallOutIn,
        _simple(services.incident_call_out),
    ),
    ActionSpec(
        "confirm_arrival",
        "确认到场 a department called out confirms it is on the scene",
        io.NoteIn,
        _simple(services.incident_confirm_arrival),
    ),
    ActionSpec(
        "support_report",
        "协办反馈 a department called out reports what it has done",
        io.SupportReportIn,
        _simple(services.incident_support_report),
    ),
    ActionSpec("park", "挂账 park", io.ReasonIn, _simple(services.incident_park)),
    ActionSpec("unpark", "取消挂账 unpark", io.NoteIn, _simple(services.incident_unpark)),
    ActionSpec("merge", "合并 merge into another case", io.MergeIn, _merge),
    ActionSpec(
        "unmerge", "撤销合并 unmerge", io.OptionalReasonIn, _simple(services.incident_unmerge)
    ),
)


class IncidentActionView(APIView):
    """Base of the per-action views (`action_view` makes one per ActionSpec)."""

    parser_classes = [LenientJSONParser]
    spec: ActionSpec

    def post(self, request: Request, number: str) -> Response:
        return _parsed(request) or idempotent(request, lambda: self._act(request, number))

    def _act(self, request: Request, number: str) -> Response:
        try:
            incident = incident_for_user(request.user, number)
        except Incident.DoesNotExist:
            return _not_found(number)
        form = self.spec.form(data=request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        try:
            incident = self.spec.perform(
                incident, request.user, dict(form.validated_data), request_ip(request)
            )
        except _LookupError as exc:
            return _field_error(exc.field, exc.reason)
        except _REFUSALS as exc:
            return _refusal(exc)
        return _incident_out(incident, request)


def action_view(spec: ActionSpec) -> Callable[..., Any]:
    """A view class of its own per action, so that each has its request schema."""

    def post(self: IncidentActionView, request: Request, number: str) -> Response:
        return IncidentActionView.post(self, request, number)

    documented = extend_schema(
        operation_id=f"incidents_{spec.action}",
        summary=spec.summary,
        request=(
            {"application/json": spec.form, "multipart/form-data": spec.form}
            if spec.photos
            else spec.form
        ),
        parameters=[_IDEMPOTENCY_PARAM],
        responses={
            200: io.IncidentOut,
            **_ERRORS,
            403: OpenApiResponse(description="not signed in, or you may not take this action"),
            404: OpenApiResponse(description="no such case, or not yours to see"),
            409: io.IllegalTransitionOut,
        },
    )(post)
    name = f"Incident{spec.slug.title().replace('-', '')}View"
    parsers = [LenientJSONParser, MultiPartParser] if spec.photos else [LenientJSONParser]
    view: type[IncidentActionView] = type(
        name,
        (IncidentActionView,),
        {"spec": spec, "post": documented, "parser_classes": parsers},
    )
    return view.as_view()
