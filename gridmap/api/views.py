"""HTTP API of the geography: locate a point, list regions as GeoJSON, one region.

Boundaries and the locator are reference data the integrations (Open311 clients, sensor
gateways, the kiosk wall screen) need before they have a session, so these endpoints are open to
anonymous callers (rate-limited); nothing here reveals incidents or people. See
docs/decisions/0004-open-geography-api.md.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.gis.db.models.functions import AsGeoJSON
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gridmap import selectors
from gridmap.locator import InvalidCoordinates, NoActiveGeneration, OutsideJurisdiction, locate
from gridmap.models import LEVEL_ORDER, Generation, Region

_REF = inline_serializer(
    "RegionRef", {"code": serializers.CharField(), "name": serializers.CharField()}
)


class LocationOut(serializers.Serializer):
    district = _REF
    street = _REF
    community = _REF
    grid = _REF
    generation = serializers.IntegerField(help_text="number of the boundary generation used")
    on_border = serializers.BooleanField(
        help_text="the point lies on a border shared by several grid cells; the lowest code won"
    )
    resolution = serializers.ChoiceField(
        choices=["inside", "border", "nearest"],
        help_text="inside one cell; on a border (lowest code wins); nearest cell (outside all "
        "cells but within the district buffer, 属地兜底)",
    )
    wgs84 = serializers.ListField(child=serializers.FloatField(), help_text="[lon, lat] WGS-84")
    distance_m = serializers.FloatField(help_text="distance to the chosen cell (nearest only)")


def _error(field: str, reason: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({field: [reason]}, status=code)


class LocateView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="locate",
        summary="Resolve a point to grid → community → street → district",
        parameters=[
            OpenApiParameter("lon", OpenApiTypes.DOUBLE, required=True),
            OpenApiParameter("lat", OpenApiTypes.DOUBLE, required=True),
            OpenApiParameter(
                "crs",
                OpenApiTypes.STR,
                enum=["wgs84", "gcj02", "bd09"],
                description="coordinate system of lon/lat (default wgs84)",
            ),
        ],
        responses={
            200: LocationOut,
            400: OpenApiResponse(description='bad parameter: {"<param>": ["reason"]}'),
            404: OpenApiResponse(description="outside the jurisdiction, with distance_m"),
            503: OpenApiResponse(description="no active boundary generation"),
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        try:
            location = locate(params.get("lon"), params.get("lat"), params.get("crs") or "wgs84")
        except InvalidCoordinates as exc:
            return _error(exc.field, exc.reason)
        except OutsideJurisdiction as exc:
            return Response(
                {
                    "detail": _("不在辖区内。"),
                    "distance_m": round(exc.distance_m, 1),
                    "generation": exc.generation,
                },
                status=status.HTTP_404_NOT_FOUND,
            )
        except NoActiveGeneration as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(location.as_dict())


def _generation_param(request: Request) -> Generation | Response:
    raw = request.query_params.get("generation")
    number: int | None = None
    if raw not in (None, ""):
        try:
            number = int(raw)  # type: ignore[arg-type]
        except ValueError:
            return _error("generation", _("“%(value)s”不是边界版本号。") % {"value": raw})
    generation = selectors.generation_by_number(number)
    if generation is None:
        if number is None:
            return Response({"detail": _("尚无启用的边界版本。")}, status=503)
        return _error(
            "generation",
            _("没有第 %(number)s 版边界。") % {"number": number},
            status.HTTP_404_NOT_FOUND,
        )
    return generation


def _feature(region: Region, geometry: str | None) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": region.code,
        "properties": {
            "code": region.code,
            "name": region.name,
            "level": region.level,
            "parent": region.parent.code if region.parent_id and region.parent else None,
            "generation": region.generation.number,
            "area_m2": round(region.area_m2, 1),
        },
        "geometry": json.loads(geometry) if geometry else None,
    }


_PARAMS = [
    OpenApiParameter("generation", OpenApiTypes.INT, description="default: the active one"),
]


class RegionListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="regions_list",
        summary="Regions as a GeoJSON FeatureCollection",
        parameters=[
            OpenApiParameter("level", OpenApiTypes.STR, enum=list(LEVEL_ORDER)),
            OpenApiParameter("parent", OpenApiTypes.STR, description="parent region code"),
            *_PARAMS,
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        generation = _generation_param(request)
        if isinstance(generation, Response):
            return generation
        level = request.query_params.get("level") or None
        if level is not None and level not in LEVEL_ORDER:
            return _error(
                "level",
                _("“%(value)s”不在可选范围内（%(choices)s）。")
                % {"value": level, "choices": ", ".join(LEVEL_ORDER)},
            )
        parent = request.query_params.get("parent") or None
        if parent is not None and not parent.isdigit():
            return _error("parent", _("区域代码只能由数字组成。"))
        regions = (
            selectors.regions_for_listing(generation=generation, level=level, parent_code=parent)
            .select_related("generation")
            .annotate(geojson=AsGeoJSON("geom", precision=7))
        )
        return Response(
            {
                "type": "FeatureCollection",
                "generation": generation.number,
                "synthetic": generation.synthetic,
                "features": [_feature(r, r.geojson) for r in regions],  # type: ignore[attr-defined]
            }
        )


class RegionDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="regions_retrieve",
        summary="One region as a GeoJSON Feature, with its path",
        parameters=_PARAMS,
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="no such region")},
    )
    def get(self, request: Request, code: str) -> Response:
        generation = _generation_param(request)
        if isinstance(generation, Response):
            return generation
        region = selectors.region_by_code(generation=generation, code=code)
        if region is None:
            return Response(
                {
                    "detail": _("第 %(generation)s 版边界中没有代码为 %(code)s 的区域。")
                    % {"code": code, "generation": generation.number}
                },
                status=status.HTTP_404_NOT_FOUND,
            )
        geojson = (
            Region.objects.filter(pk=region.pk)
            .annotate(g=AsGeoJSON("geom", precision=7))
            .values_list("g", flat=True)
            .get()
        )
        feature = _feature(region, geojson)
        feature["properties"]["path"] = {
            level: ({"code": r.code, "name": r.name} if r is not None else None)
            for level, r in region.path().items()
        }
        feature["properties"]["synthetic"] = generation.synthetic
        return Response(feature)
