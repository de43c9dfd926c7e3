"""Input and output serializers of the incidents API: explicit fields, one input serializer per
write, nothing bound to the model (the services decide what is stored)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html

from incidents.models import (
    SATISFACTION_MAX,
    SATISFACTION_MIN,
    Channel,
    Incident,
    IncidentPhoto,
    IncidentTransition,
    SendBackReason,
    Severity,
)
from incidents.selectors import (
    incident_actions_for,
    incident_duplicate_candidates,
    incident_merged_cases,
    incident_photos,
    incident_timeline,
    photo_original_allowed,
)

# The channels a signed-in user may report through here: a grid worker reports as a grid worker;
# operators and handlers type in what the hotline, a citizen or the console received. Sensors,
# video AI and Open311 have their own channels (bulk, Open311).
GRID_WORKER_CHANNELS = (Channel.GRID_WORKER,)
STAFF_CHANNELS = (Channel.CONSOLE, Channel.HOTLINE_12345, Channel.CITIZEN)
REST_CHANNELS = (*GRID_WORKER_CHANNELS, *STAFF_CHANNELS)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (mass assignment: `status`, `street_code` …), naming
    each one, instead of silently dropping them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError({name: [_("未知字段。")] for name in unknown})
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """Text, and only text: DRF's CharField turns a number into its digits, so a JSON `NaN` or
    `12` would be stored as the reason "nan" or "12"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time with its zone (…+08:00, …Z): a time without one would be
    read on the server's clock, not necessarily the sender's."""

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            parsed = parse_datetime(value.strip())
            if parsed is not None and timezone.is_naive(parsed):
                raise serializers.ValidationError(_("必须带时区。"))
        return super().to_internal_value(value)


@extend_schema_field(OpenApiTypes.DOUBLE)
class CoordinateField(serializers.Field):
    """A longitude or latitude passed on as received: the locator checks it and names the field
    (NaN, infinity, out of range, lon/lat swapped), exactly as for every other channel."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "array", "items": {"type": "string", "format": "binary"}})
class PhotosField(serializers.Field):
    """The `photos` file parts of a multipart/form-data request (repeat the part for each photo),
    passed on as uploaded: incidents.services.photos judges them by their bytes. In a JSON body
    there is nothing a photo could be, so anything but an empty list is refused."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", list)
        super().__init__(**kwargs)

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary):
            if self.field_name not in dictionary:
                return empty
            return dictionary.getlist(self.field_name)
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data: Any) -> list[UploadedFile]:
        if not isinstance(data, list):
            data = [data]
        for index, item in enumerate(data, 1):
            if not isinstance(item, UploadedFile):
                raise serializers.ValidationError(
                    _(
                        "第 %(index)s 张照片不是文件：照片须以 multipart/form-data 的文件部分发送，"
                        "名为 photos。"
                    )
                    % {"index": index}
                )
        return data

    def to_representation(self, value: Any) -> Any:
        return [getattr(item, "name", "") for item in value]


class ReportIn(StrictSerializer):
    category = serializers.CharField(max_length=5, help_text="事项代码, e.g. 06010")
    description = TextField(required=False, allow_blank=True, default="")
    lon = CoordinateField(help_text="longitude in `crs`")
    lat = CoordinateField(help_text="latitude in `crs`")
    crs = serializers.ChoiceField(choices=["wgs84", "gcj02", "bd09"], default="wgs84")
    channel = serializers.ChoiceField(
        choices=REST_CHANNELS,
        required=False,
        help_text="default grid_worker for grid workers (their only channel), console for others",
    )
    reporter_name = TextField(max_length=50, required=False, allow_blank=True, default="")
    reporter_phone = serializers.CharField(
        max_length=20, required=False, allow_blank=True, default=""
    )
    address = TextField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="the address as the caller gave it (地址描述); the point is still lon/lat",
    )
    severity = serializers.ChoiceField(
        choices=Severity.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="emergencies (class 90) only; default the category's level",
    )
    client_reported_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    photos = PhotosField(help_text="multipart only: photos before handling (处置前), JPEG/PNG/WebP")


# --- workflow actions ----------------------------------------------------------------------------


def _text(required: bool = False, **kwargs: Any) -> serializers.CharField:
    if required:
        return TextField(allow_blank=True, trim_whitespace=False, **kwargs)
    return TextField(required=False, allow_blank=True, default="", trim_whitespace=False, **kwargs)


class NoteIn(StrictSerializer):
    note = _text()


class ReasonIn(StrictSerializer):
    reason = _text(required=True)


class OptionalReasonIn(StrictSerializer):
    reason = _text()


class DispatchIn(StrictSerializer):
    department = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="department code: CGJ, SWJ …"
    )
    assignee = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="username of a person"
    )
    note = _text()


class CallOutIn(StrictSerializer):
    supports = serializers.ListField(
        child=serializers.CharField(max_length=32),
        min_length=1,
        max_length=30,
        help_text="the codes of the departments to call out beside the one dispatched (协办)",
    )
    note = _text()


class SupportReportIn(StrictSerializer):
    note = _text(
        required=True,
        help_text="what the department called out has done or found (协办反馈), at most 2,000 "
        "characters",
    )


class SendBackIn(StrictSerializer):
    reason_code = serializers.ChoiceField(choices=SendBackReason.choices)
    reason = _text(help_text="required for reason_code other")


class FeedBackIn(StrictSerializer):
    feedback = _text(required=True)
    photos = PhotosField(help_text="multipart only: photos after handling (处置后), JPEG/PNG/WebP")


class VerifyIn(StrictSerializer):
    passed = serializers.BooleanField(default=True, help_text="false: rework (返工)")
    note = _text(help_text="required when passed is false")


class ReworkIn(StrictSerializer):
    note = _text(required=True)


class EvaluateIn(StrictSerializer):
    satisfaction = serializers.IntegerField(min_value=SATISFACTION_MIN, max_value=SATISFACTION_MAX)
    comment = _text()


class RequestExtensionIn(StrictSerializer):
    until = AwareDateTimeField()
    reason = _text(required=True)


class ApproveExtensionIn(StrictSerializer):
    until = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="default: the requested time"
    )
    note = _text()


class MergeIn(StrictSerializer):
    into = serializers.CharField(max_length=24, help_text="number of the open primary case")
    reason = _text()


# --- output --------------------------------------------------------------------------------------


class TransitionOut(serializers.Serializer):
    action = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    actor = serializers.SerializerMethodField()
    actor_role = serializers.CharField()
    reason_code = serializers.CharField()
    reason = serializers.CharField()
    details = serializers.JSONField(source="data")
    created_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_actor(self, transition: IncidentTransition) -> str | None:
        return transition.actor.get_username() if transition.actor is not None else None


class IncidentListOut(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    channel = serializers.CharField()
    category_code = serializers.CharField(source="category.code")
    category_name = serializers.CharField(source="category.name")
    severity = serializers.CharField()
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    street_code = serializers.CharField()
    street_name = serializers.CharField()
    community_code = serializers.CharField()
    community_name = serializers.CharField()
    grid_code = serializers.CharField()
    triage = serializers.BooleanField()
    owner_level = serializers.CharField()
    owner_code = serializers.CharField()
    assigned_department_code = serializers.CharField()
    # The departments called out beside it (协办), as codes; those that confirmed their arrival
    # (确认到场); the response plan in force (应急预案), "" for none.
    support_department_codes = serializers.ListField(child=serializers.CharField())
    support_arrived_codes = serializers.ListField(child=serializers.CharField())
    plan_code = serializers.CharField()
    stage = serializers.CharField()
    stage_deadline = serializers.DateTimeField(allow_null=True)
    overdue = serializers.SerializerMethodField()
    # A sensor's alarms counted on its open case (bulk intake's dedupe): 0 for other channels.
    repeat_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_lon(self, incident: Incident) -> float:
        return float(incident.location.x)

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_lat(self, incident: Incident) -> float:
        return float(incident.location.y)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_overdue(self, incident: Incident) -> bool:
        return incident.stage_deadline is not None and incident.stage_deadline < timezone.now()


class PhotoOut(serializers.Serializer):
    """A photo as the API lists it: its scoped URLs (never a /media/ path), the display copy's
    size, the original's SHA-256. `original_url` is null for readers who may not fetch the
    original (department handlers, grid workers other than the uploader)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    url = serializers.SerializerMethodField()
    original_url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    sha256 = serializers.CharField(source="original_sha256")
    created_at = serializers.DateTimeField()

    def _route(self, photo: IncidentPhoto) -> list[Any]:
        return [self.context["number"], photo.pk]

    @extend_schema_field(OpenApiTypes.STR)
    def get_url(self, photo: IncidentPhoto) -> str:
        return reverse("incident-photo", args=self._route(photo))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_original_url(self, photo: IncidentPhoto) -> str | None:
        if not photo_original_allowed(self.context["user"], photo):
            return None
        return reverse("incident-photo-original", args=self._route(photo))


class PossibleDuplicateOut(serializers.Serializer):
    number = serializers.CharField(source="incident.number")
    distance_m = serializers.SerializerMethodField()
    status = serializers.CharField(source="incident.status")
    created_at = serializers.DateTimeField(source="incident.created_at")

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_distance_m(self, candidate: Any) -> float:
        return round(candidate.distance_m, 1)


class MergedCaseOut(serializers.Serializer):
    number = serializers.CharField()
    channel = serializers.CharField()
    created_at = serializers.DateTimeField()


class MergedCasesOut(serializers.Serializer):
    """The cases merged into this one (已合并): `total` in all, `cases` those the reader may
    see, oldest first."""

    total = serializers.IntegerField()
    cases = MergedCaseOut(many=True, source="visible")


class IncidentOut(IncidentListOut):
    """One case as its reader may see it: the reporter's phone masked unless the reader calls
    reporters back or reported it; the timeline; the actions the reader may take now."""

    description = serializers.CharField()
    address = serializers.CharField()
    raw_lon = serializers.FloatField()
    raw_lat = serializers.FloatField()
    raw_crs = serializers.CharField()
    district_code = serializers.CharField()
    district_name = serializers.CharField()
    grid_name = serializers.CharField()
    generation_number = serializers.IntegerField()
    on_border = serializers.BooleanField()
    resolution = serializers.CharField()
    reporter = serializers.SerializerMethodField()
    reporter_name = serializers.CharField()
    reporter_phone = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    feedback = serializers.CharField()
    stage_started_at = serializers.DateTimeField(allow_null=True)
    stage_warned = serializers.BooleanField()
    extension_requested_until = serializers.DateTimeField(allow_null=True)
    extension_reason = serializers.CharField()
    send_backs = serializers.IntegerField()
    reworks = serializers.IntegerField()
    merged_into = serializers.SerializerMethodField()
    merged = serializers.SerializerMethodField()
    source_ref = serializers.CharField()
    last_repeated_at = serializers.DateTimeField(allow_null=True)
    satisfaction = serializers.IntegerField(allow_null=True)
    client_reported_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    timeline = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    photos = serializers.SerializerMethodField()
    possible_duplicates = serializers.SerializerMethodField()

    def _user(self) -> Any:
        return self.context["user"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_reporter(self, incident: Incident) -> str | None:
        return incident.reporter.get_username() if incident.reporter is not None else None

    @extend_schema_field(OpenApiTypes.STR)
    def get_reporter_phone(self, incident: Incident) -> str:
        return incident.phone_for(self._user())

    @extend_schema_field(OpenApiTypes.STR)
    def get_assignee(self, incident: Incident) -> str | None:
        return incident.assignee.get_username() if incident.assignee is not None else None

    @extend_schema_field(OpenApiTypes.STR)
    def get_merged_into(self, incident: Incident) -> str | None:
        return incident.merged_into.number if incident.merged_into is not None else None

    @extend_schema_field(MergedCasesOut)
    def get_merged(self, incident: Incident) -> Any:
        return MergedCasesOut(incident_merged_cases(incident, self._user())).data

    @extend_schema_field(TransitionOut(many=True))
    def get_timeline(self, incident: Incident) -> Any:
        return TransitionOut(incident_timeline(incident), many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_actions(self, incident: Incident) -> list[str]:
        return incident_actions_for(self._user(), incident)

    @extend_schema_field(PhotoOut(many=True))
    def get_photos(self, incident: Incident) -> Any:
        context = {"user": self._user(), "number": incident.number}
        return PhotoOut(incident_photos(incident), many=True, context=context).data

    @extend_schema_field(PossibleDuplicateOut(many=True))
    def get_possible_duplicates(self, incident: Incident) -> Any:
        """Open cases of the same category nearby and shortly before it that the reader may
        see (疑似重复, nearest first): candidates for a merge."""
        candidates = incident_duplicate_candidates(incident, self._user())
        return PossibleDuplicateOut(candidates, many=True).data


class IncidentPageOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="cases you may see that match the filters")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = IncidentListOut(many=True)


class IllegalTransitionOut(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.CharField(help_text="the case's current status")
    allowed_actions = serializers.ListField(
        child=serializers.CharField(),
        help_text="what the workflow allows in this status, less a step your department has "
        "already taken (确认到场)",
    )
