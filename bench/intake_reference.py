"""The references of the intake benchmark: plain DRF creates of the same rows, mounted only by
bench/intake_urls.py (never by the product's URLconf).

What CityOps does on intake beyond them — locating the point, numbering the case from the day's
counter, starting the clock, the timeline row, the audit entry and the outbox event — is what the
benchmark prices. So the references take a row whose region path the client has already filled
in (the benchmark locates the points beforehand) and store it the way a generic DRF API would:

* `ReferenceIncidentView` — `ModelSerializer` + `CreateAPIView`: validate, `serializer.save()`,
  one INSERT in autocommit, answer with the serialised row;
* `ReferenceBulkView` — the same serializer with `many=True` in one transaction. `mode=rows`
  keeps DRF's default `ListSerializer.create` (one `save()` per item); `mode=bulk_create` uses
  the `ListSerializer.create` override that DRF's documentation suggests for bulk creation,
  one `bulk_create`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication
from incidents.models import Category, Incident


class LonLatField(serializers.Field):
    """[lon, lat] in WGS-84 ↔ a Point (DRF has no geometry field)."""

    def to_internal_value(self, data: Any) -> Point:
        if not isinstance(data, list | tuple) or len(data) != 2:
            raise serializers.ValidationError("must be [lon, lat]")
        try:
            lon, lat = float(data[0]), float(data[1])
        except (TypeError, ValueError):
            raise serializers.ValidationError("must be two numbers") from None
        return Point(lon, lat, srid=4326)

    def to_representation(self, value: Point) -> list[float]:
        return [value.x, value.y]


class BulkIncidentListSerializer(serializers.ListSerializer):
    """DRF's documented pattern for bulk creation: one bulk_create for the validated items."""

    def create(self, validated_data: list[dict[str, Any]]) -> list[Incident]:
        now = timezone.now()
        return Incident.objects.bulk_create(
            [Incident(**item, created_at=now) for item in validated_data], batch_size=500
        )


class ReferenceIncidentSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="code", queryset=Category.objects.all())
    location = LonLatField()

    class Meta:
        model = Incident
        fields = (
            "id",
            "number",
            "channel",
            "category",
            "description",
            "location",
            "raw_lon",
            "raw_lat",
            "raw_crs",
            "district_code",
            "district_name",
            "street_code",
            "street_name",
            "community_code",
            "community_name",
            "grid_code",
            "grid_name",
            "generation",
            "generation_number",
            "resolution",
            "source_ref",
            "status",
            "owner_level",
            "owner_code",
            "created_at",
        )
        read_only_fields = ("id", "created_at")


class BulkReferenceIncidentSerializer(ReferenceIncidentSerializer):
    class Meta(ReferenceIncidentSerializer.Meta):
        list_serializer_class = BulkIncidentListSerializer


class ReferenceIncidentView(generics.CreateAPIView):
    serializer_class = ReferenceIncidentSerializer

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(reporter=self.request.user, created_at=timezone.now())


class ReferenceBulkView(APIView):
    authentication_classes = [ApiKeyAuthentication]

    def post(self, request: Request) -> Response:
        rows = request.data.get("items") if isinstance(request.data, dict) else None
        if not isinstance(rows, list):
            return Response({"items": ["a list"]}, status=status.HTTP_400_BAD_REQUEST)
        bulk = request.query_params.get("mode") == "bulk_create"
        serializer_class = BulkReferenceIncidentSerializer if bulk else ReferenceIncidentSerializer
        serializer = serializer_class(data=rows, many=True)
        if not serializer.is_valid():
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        with transaction.atomic():
            if bulk:
                created = serializer.save(reporter=request.user)
            else:
                created = serializer.save(reporter=request.user, created_at=timezone.now())
        return Response({"created": len(created)})


class FloorView(APIView):
    """The floor under any signed-in write on this server, for scale: Daphne, Django's
    middleware, DRF's session authentication with its CSRF check and the JSON body parsed —
    the work every single report pays before and after the product's own — and a 201 that
    echoes a number. No table is written (the session and the user are read)."""

    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        return Response({"number": str(data.get("number", ""))}, status=status.HTTP_201_CREATED)
