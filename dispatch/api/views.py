"""Responders' positions over the REST API (docs/api.md "Responders").

PUT    /api/v1/responders/me/position/   {"lon", "lat", "accuracy_m"?} → 200 {"responder"}
DELETE /api/v1/responders/me/position/   → 204 (stop sharing; also when nothing was shared)
GET    /api/v1/responders/positions/     → {"results": [...]} scoped to the viewer
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import request_ip
from dispatch import selectors, services
from dispatch.plans import graver_plans, plan_as_dict, plans_for
from incidents.api import serializers as io
from incidents.api.views import (
    _ERRORS,
    _IDEMPOTENCY_PARAM,
    ActionSpec,
    IncidentActionView,
    LenientJSONParser,
    _not_found,
)
from incidents.models import Incident
from incidents.selectors import incident_for_user, incident_supports

FIELDS = ("lon", "lat", "accuracy_m")


class PositionIn(serializers.Serializer):  # the OpenAPI schema; the service checks the values
    lon = serializers.FloatField()
    lat = serializers.FloatField()
    accuracy_m = serializers.FloatField(required=False, allow_null=True)


_RESPONDER = serializers.DictField(help_text="a responder: id, name, role, lon, lat, at, grid…")


def _error(exc: services.ResponderInputError) -> Response:
    if exc.field == "location":  # outside the district: both coordinates are the cause
        body: dict[str, Any] = {"lon": [exc.reason], "lat": [exc.reason]}
        if exc.distance_m is not None:
            body["distance_m"] = round(exc.distance_m, 1)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return Response({exc.field: [exc.reason]}, status=status.HTTP_400_BAD_REQUEST)


class MyPositionView(APIView):
    """The signed-in responder's own position: share (PUT) or stop sharing (DELETE)."""

    # NaN and Infinity parse, so that the answer names the field they were sent in.
    parser_classes = [LenientJSONParser]

    @extend_schema(
        request=PositionIn,
        responses={
            200: inline_serializer("ResponderOut", {"responder": _RESPONDER}),
            400: OpenApiResponse(description="a field and the reason"),
            403: OpenApiResponse(description="not a grid worker or department handler"),
        },
    )
    def put(self, request: Request) -> Response:
        data: Any = request.data
        if not isinstance(data, dict):
            return Response(
                {"detail": _("请发送 JSON 对象：lon、lat，可选 accuracy_m。")},
                status=status.HTTP_400_BAD_REQUEST,
            )
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            return Response(
                {field: [_("未知字段。")] for field in unknown},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            position = services.responder_position_report(
                user=request.user,
                lon=data.get("lon"),
                lat=data.get("lat"),
                accuracy_m=data.get("accuracy_m"),
                ip=request_ip(request),
            )
        except services.NotAResponder as exc:
            raise PermissionDenied(str(exc)) from None
        except services.ResponderInputError as exc:
            return _error(exc)
        except services.GeographyUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"responder": services.responder_as_dict(position)})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        if getattr(request.user, "role", "") not in services.RESPONDER_ROLES:
            raise PermissionDenied(_("只有网格员和职能部门处置人员可以共享位置。"))
        services.responder_position_clear(user=request.user, ip=request_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PositionListView(APIView):
    """Current positions of the responders in the viewer's place."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "ResponderList", {"results": serializers.ListField(child=_RESPONDER)}
            )
        }
    )
    def get(self, request: Request) -> Response:
        if not selectors.may_see_responders(request.user):
            raise PermissionDenied(_("响应人员的位置只向区、街道、社区的工作人员显示。"))
        return Response({"results": selectors.responders_visible_to(request.user)})


class PlanIn(io.StrictSerializer):
    plan = io.TextField(max_length=32, help_text="the plan's code, e.g. FLOOD-III")
    note = io.TextField(required=False, allow_blank=True, default="")


def _activate(incident: Incident, by: Any, data: dict[str, Any], ip: str | None) -> Incident:
    return services.plan_activate(
        incident=incident, plan_code=data["plan"], by=by, note=data["note"], ip=ip
    )


class IncidentPlansView(IncidentActionView):
    """The response plans (应急预案) for a case, and starting one on it (一键调派): a POST is
    answered as the one-case actions are (IncidentActionView: body, Idempotency-Key, the case
    looked up in the user's scope, the form, the service's refusals)."""

    spec = ActionSpec("plans", "一键调派 start a response plan", PlanIn, _activate)

    @extend_schema(
        operation_id="incidents_plans",
        summary=(
            "应急预案 the response plans for a case, the one its severity calls for first; "
            "escalations: the graver plans, each raising the case's severity (升级响应)"
        ),
        responses={
            200: inline_serializer(
                "IncidentPlans",
                {
                    "plans": serializers.ListField(child=serializers.DictField()),
                    "escalations": serializers.ListField(child=serializers.DictField()),
                    "called_out": serializers.ListField(child=serializers.DictField()),
                },
            ),
            404: OpenApiResponse(description="no such case, or not yours to see"),
        },
    )
    def get(self, request: Request, number: str) -> Response:
        try:
            incident = incident_for_user(request.user, number)
        except Incident.DoesNotExist:
            return _not_found(number)
        return Response(
            {
                "plans": [
                    plan_as_dict(plan)
                    for plan in plans_for(incident.category.code, incident.severity)
                ],
                "escalations": [
                    plan_as_dict(plan)
                    for plan in graver_plans(incident.category.code, incident.severity)
                ],
                "called_out": incident_supports(incident),
            }
        )

    @extend_schema(
        operation_id="incidents_plan_activate",
        summary=(
            "一键调派 start a response plan: dispatch to its lead, call out its supports; on a "
            "case in hand, call them out beside its department (增派); a graver plan raises "
            "the case's severity"
        ),
        request=PlanIn,
        parameters=[_IDEMPOTENCY_PARAM],
        responses={
            200: io.IncidentOut,
            **_ERRORS,
            404: OpenApiResponse(description="no such case, or not yours to see"),
            409: io.IllegalTransitionOut,
        },
    )
    def post(self, request: Request, number: str) -> Response:
        return super().post(request, number)
