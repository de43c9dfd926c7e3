"""POST /api/v1/incidents/bulk/: sensor gateways and video-AI platforms report up to 1,000
alarms at once (批量上报; docs/incidents.md, "Bulk intake").

API keys only (`Authorization: Api-Key <key>`, accounts.authentication): no key or a bad key →
401; an account that is not an integration → 403; an item on a channel the key does not allow →
403 naming the channel, for the whole request (a key's channels are its permissions). The body
is `{"items": [...]}`; each item is checked on its own and answered in order — created, repeat
(of an open case of the same sensor, category and channel) or error with the fields and reasons
— so bad items never block good ones, and the answer is 200 whenever the batch was taken in as a
whole (207-style semantics: look at each result). The work is one service call
(incidents.services.bulk.incidents_report_bulk). `Idempotency-Key` is honoured as for every write.

Items are parsed here by hand rather than by a DRF serializer per item: the checks are the same
(types, unknown fields, the time format), but a serializer costs more per item than locating
and storing it, and a batch has a thousand.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication
from accounts.models import ApiKey, Role
from audit.services import request_ip
from incidents.api.idempotency import idempotent
from incidents.api.views import (
    _ERRORS,
    _IDEMPOTENCY_PARAM,
    LenientJSONParser,
    _parsed,
)
from incidents.models import Severity
from incidents.services import GeographyUnavailable, IncidentInputError
from incidents.services.bulk import (
    BULK_CHANNELS,
    BULK_MAX_ITEMS,
    ERROR,
    BulkItem,
    BulkReport,
    batch_size_refusal,
    incidents_report_bulk,
)
from incidents.workflow import ActionNotPermitted

CRS_CHOICES = ("wgs84", "gcj02", "bd09")
_STRING_FIELDS = ("channel", "category", "crs", "description", "source_ref", "severity")
ITEM_FIELDS = frozenset({*_STRING_FIELDS, "lon", "lat", "occurred_at"})


# --- the documented shapes (OpenAPI) ------------------------------------------------------------


class BulkItemIn(serializers.Serializer):
    """One alarm. Documents the item; the view checks items with `parse_item` (same rules)."""

    channel = serializers.ChoiceField(choices=BULK_CHANNELS)
    category = serializers.CharField(max_length=5, help_text="事项代码, e.g. 01001 供水井盖异常")
    lon = serializers.FloatField(help_text="longitude in `crs`")
    lat = serializers.FloatField(help_text="latitude in `crs`")
    crs = serializers.ChoiceField(choices=CRS_CHOICES, default="wgs84")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    source_ref = serializers.CharField(
        max_length=100, help_text="the sensor's or camera's id on the platform (required)"
    )
    occurred_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="the platform's time of the alarm, with zone"
    )
    severity = serializers.ChoiceField(
        choices=Severity.choices,
        required=False,
        allow_blank=True,
        help_text="emergencies (class 90) only; default the category's level",
    )


class BulkIn(serializers.Serializer):
    items = BulkItemIn(many=True, help_text=f"1 to {BULK_MAX_ITEMS} alarms")


class BulkResultOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="position in `items`, from 0")
    result = serializers.ChoiceField(choices=["created", "repeat", "error"])
    number = serializers.CharField(
        allow_null=True, help_text="the case created, or the open case repeated"
    )
    errors = serializers.DictField(  # type: ignore[assignment]  # a field, not Serializer.errors
        child=serializers.ListField(child=serializers.CharField()),
        help_text='{"<field>": ["reason"]} for an error, else {}',
    )


class BulkOut(serializers.Serializer):
    batch = serializers.CharField(
        allow_null=True, help_text="id of the batch's audit entry; null when nothing was written"
    )
    created = serializers.IntegerField()
    repeated = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BulkResultOut(many=True)


# --- parsing --------------------------------------------------------------------------------------


def parse_item(raw: Any) -> BulkItem | dict[str, list[str]]:
    """An item's JSON as a BulkItem, or its shape errors (what a serializer would check: the
    object, unknown fields, strings, the time). Values (codes, coordinates, lengths) are the
    service's to check."""
    if not isinstance(raw, Mapping):
        return {"item": [_("必须是 JSON 对象。")]}
    errors: dict[str, list[str]] = {}
    for name in raw:
        if name not in ITEM_FIELDS:
            errors[str(name)] = [_("未知字段。")]
    values: dict[str, Any] = {}
    for name in _STRING_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors[name] = [_("必须是字符串。")]
        else:
            values[name] = value
    for name in ("channel", "category"):
        if name not in raw:
            errors.setdefault(name, [_("不能为空。")])
    crs = values.get("crs", "wgs84")
    if "crs" not in errors and crs not in CRS_CHOICES:
        errors["crs"] = [
            _("“%(value)s”不在可选范围内（%(choices)s）。")
            % {"value": crs, "choices": ", ".join(CRS_CHOICES)}
        ]
    occurred_at: datetime | None = None
    raw_time = raw.get("occurred_at")
    if raw_time is not None:
        parsed = None
        if isinstance(raw_time, str):
            try:
                parsed = parse_datetime(raw_time)
            except ValueError:
                parsed = None
        if parsed is None:
            errors["occurred_at"] = [_("必须是带时区的 ISO 8601 日期和时间。")]
        else:
            occurred_at = parsed
    if errors:
        return errors
    return BulkItem(
        channel=values["channel"],
        category=values["category"],
        lon=raw.get("lon"),
        lat=raw.get("lat"),
        crs=crs,
        description=values.get("description", ""),
        source_ref=values.get("source_ref", ""),
        occurred_at=occurred_at,
        severity=values.get("severity", ""),
    )


# --- the view --------------------------------------------------------------------------------


class IncidentBulkView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [LenientJSONParser]

    @extend_schema(
        operation_id="incidents_bulk_create",
        summary="Report up to 1,000 sensor / video-AI alarms (批量上报)",
        description=(
            "Authorization: Api-Key <key> of an integration account. Each item is answered in "
            "order: created (a new case), repeat (counted on the open case of the same sensor, "
            "category and channel within the dedupe window) or error (fields and reasons). "
            "200 whenever the batch was taken in; the valid items commit together."
        ),
        request=BulkIn,
        parameters=[_IDEMPOTENCY_PARAM],
        responses={
            200: BulkOut,
            400: OpenApiResponse(
                description='`items` missing, empty or over 1,000: {"items": [...]}'
            ),
            401: OpenApiResponse(description="no API key, or an unknown or revoked one"),
            403: OpenApiResponse(
                description="not an integration account, or an item on a channel the key does "
                'not allow: {"detail": …, "channel": [...]}'
            ),
            409: OpenApiResponse(description="a request with this Idempotency-Key is in flight"),
            413: _ERRORS[413],
            422: _ERRORS[422],
            503: OpenApiResponse(description="no active boundary generation"),
        },
    )
    def post(self, request: Request) -> Response:
        user = request.user
        if not isinstance(request.auth, ApiKey) or getattr(user, "role", "") != Role.INTEGRATION:
            return Response(
                {"detail": _("批量上报只对持接口密钥的系统接入账号开放。")},
                status=status.HTTP_403_FORBIDDEN,
            )
        return _parsed(request) or idempotent(request, lambda: self._bulk(request))

    def _bulk(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, Mapping):
            return Response(
                {"detail": _('请求体必须是 JSON 对象：{"items": [...]}。')},
                status=status.HTTP_400_BAD_REQUEST,
            )
        unknown = sorted(str(name) for name in data if name != "items")
        if unknown:
            return Response(
                {name: [_("未知字段。")] for name in unknown}, status=status.HTTP_400_BAD_REQUEST
            )
        items = data.get("items")
        if not isinstance(items, list):
            return Response(
                {
                    "items": [
                        _("不能为空：须为 1 到 %(limit)s 条告警的列表。")
                        % {"limit": BULK_MAX_ITEMS}
                    ]
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        if not 1 <= len(items) <= BULK_MAX_ITEMS:
            return Response(
                {"items": [batch_size_refusal(len(items))]}, status=status.HTTP_400_BAD_REQUEST
            )
        key = request.auth
        assert isinstance(key, ApiKey)  # post() refused any other authentication
        allowed = set(key.channel_list)
        refused = sorted(
            {
                raw["channel"]
                for raw in items
                if isinstance(raw, Mapping)
                and raw.get("channel") in BULK_CHANNELS
                and raw["channel"] not in allowed
            }
        )
        if refused:
            channels = {"refused": ", ".join(refused), "allowed": ", ".join(sorted(allowed))}
            reason = (
                _("此接口密钥不能在渠道 %(refused)s 上报（它可用的渠道：%(allowed)s）。") % channels
                if allowed
                else _("此接口密钥不能在渠道 %(refused)s 上报（它没有可用的渠道）。") % channels
            )
            return Response(
                {"detail": reason, "channel": refused}, status=status.HTTP_403_FORBIDDEN
            )
        parsed = [parse_item(raw) for raw in items]
        good = [item for item in parsed if isinstance(item, BulkItem)]
        try:
            report = (
                incidents_report_bulk(items=good, by=request.user, ip=request_ip(request))  # type: ignore[arg-type]
                if good
                else BulkReport(results=[])
            )
        except ActionNotPermitted as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except IncidentInputError as exc:
            return Response({exc.field: [exc.reason]}, status=status.HTTP_400_BAD_REQUEST)
        except GeographyUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(_answer(parsed, report))


def _answer(parsed: list[BulkItem | dict[str, list[str]]], report: BulkReport) -> dict[str, Any]:
    """The per-item results in the order of `items`: shape errors from parsing, the service's
    outcome for the rest."""
    outcomes = iter(report.results)
    results: list[dict[str, Any]] = []
    counts = {"created": 0, "repeat": 0, "error": 0}
    for index, item in enumerate(parsed):
        if isinstance(item, BulkItem):
            outcome = next(outcomes)
            result, number, errors = outcome.result, outcome.number, outcome.errors
        else:
            result, number, errors = ERROR, None, item
        counts[result] += 1
        results.append({"index": index, "result": result, "number": number, "errors": errors})
    return {
        "batch": report.batch,
        "created": counts["created"],
        "repeated": counts["repeat"],
        "failed": counts["error"],
        "results": results,
    }
