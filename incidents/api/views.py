"""HTTP API of cases: report, list, read, and one endpoint per workflow action.

Thin views (docs/incidents.md, "REST API"): validate with the input serializer, call one
service or selector, serialise with the output serializer. Errors have the project's shape —
`{"<field>": ["reason"]}` (400), `{"detail": …}` otherwise; a case the user may not see is 404
exactly like a number that does not exist. Writes honour `Idempotency-Key`
(incidents.api.idempotency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, User
from incidents import services
from incidents.api import serializers as io
from incidents.api.idempotency import HEADER, idempotent
from incidents.models import Category, Incident, IncidentStatus
from incidents.selectors import incident_for_user, incidents_visible_to
from incidents.services import (
    GeographyUnavailable,
    IllegalTransition,
    IncidentInputError,
    OutsideDistrict,
)
from incidents.workflow import ActionNotPermitted

# --- parsing -------------------------------------------------------------------------------------


class LenientJSONParser(JSONParser):
    """DRF's JSON parser, except that NaN and Infinity literals parse: the locator then refuses
    them naming the field (`{"lon": ["must be a finite number …"]}`) instead of a bare parse
    error."""

    strict = False


def _parsed(request: Request) -> Response | None:
    """Parse the body before anything else (a key is claimed only for a readable body): None, or
    the answer to a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413; Django refuses to read it).
    A malformed body raises ParseError (400)."""
    try:
        request.data  # noqa: B018
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"request body too large: at most {limit} bytes"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


# --- answers -------------------------------------------------------------------------------------

# Service argument names that the API spells differently.
_API_FIELD = {"department_code": "department"}


def _field_error(field: str, reason: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({_API_FIELD.get(field, field): [reason]}, status=code)


def _not_found(number: str) -> Response:
    return Response({"detail": f"no case {number}"}, status=status.HTTP_404_NOT_FOUND)


def _refusal(exc: Exception) -> Response:
    """The answer to a refusal by a service."""
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


def _ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _incident_out(incident: Incident, request: Request, code: int = 200) -> Response:
    # Re-read with the related rows the representation shows. Not re-scoped: whoever just acted
    # on the case gets its new state even when the step took it out of their view (a send-back).
    fresh = (
        Incident.objects.select_related("category", "reporter", "assignee", "merged_into")
        .filter(pk=incident.pk)
        .get()
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
    parser_classes = [LenientJSONParser]

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
                return _field_error("status", f"{value!r} is not a status")
            cases = cases.filter(status=value)
        for name, field in (
            ("category", "category__code"),
            ("street", "street_code"),
            ("community", "community_code"),
        ):
            value = params.get(name)
            if value:
                if not value.isdigit():
                    return _field_error(name, "a code is digits only")
                cases = cases.filter(**{field: value})
        overdue = params.get("overdue")
        if overdue:
            if overdue not in ("true", "false"):
                return _field_error("overdue", "must be true or false")
            late = {"stage_deadline__lt": timezone.now()}
            cases = cases.filter(**late) if overdue == "true" else cases.exclude(**late)
        paginator = IncidentPagination()
        page = paginator.paginate_queryset(cases.order_by("-created_at", "-id"), request, self)
        assert page is not None
        return paginator.get_paginated_response(io.IncidentListOut(page, many=True).data)

    @extend_schema(
        operation_id="incidents_create",
        summary="Report a case (上报)",
        request=io.ReportIn,
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
        allowed = io.GRID_WORKER_CHANNELS if grid_worker else io.STAFF_CHANNELS
        channel = data.get("channel") or allowed[0]
        if channel not in allowed:
            return _field_error("channel", f"{channel!r}: yours are {', '.join(allowed)}")
        category = Category.objects.filter(code=data["category"]).first()
        if category is None:
            return _field_error("category", f"{data['category']!r} is not a category code")
        try:
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
                severity=data["severity"] or None,
                client_reported_at=data["client_reported_at"],
                ip=_ip(request),
            )
        except _REFUSALS as exc:
            return _refusal(exc)
        return _incident_out(incident, request, status.HTTP_201_CREATED)


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
            raise _LookupError("assignee", f"no user {data['assignee']!r}")
    return services.incident_dispatch(
        incident=incident,
        by=by,
        department_code=data["department"],
        assignee=assignee,
        note=data["note"],
        ip=ip,
    )


def _merge(incident: Incident, by: Any, data: dict[str, Any], ip: str | None) -> Incident:
    try:
        into = incident_for_user(by, data["into"])
    except Incident.DoesNotExist:
        raise _LookupError("into", f"no case {data['into']}") from None
    return services.incident_merge(
        incident=incident, into=into, by=by, reason=data["reason"], ip=ip
    )


@dataclass(frozen=True)
class ActionSpec:
    action: str  # the workflow's name (incidents.workflow.TRANSITIONS)
    summary: str
    form: type[serializers.Serializer]
    perform: Perform

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
    ActionSpec("feed_back", "反馈 feed back", io.FeedBackIn, _simple(services.incident_feed_back)),
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
                incident, request.user, dict(form.validated_data), _ip(request)
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
        request=spec.form,
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
    view: type[IncidentActionView] = type(
        name, (IncidentActionView,), {"spec": spec, "post": documented}
    )
    return view.as_view()
