"""Batch actions (批量办理): one workflow action on up to BATCH_MAX cases, from a console's queue
(whose page sends a larger selection, up to its SELECT_ALL_MAX, as consecutive requests of at
most BATCH_MAX numbers, each with its own Idempotency-Key: static/command/console.js).

`POST /api/v1/incidents/batch/<action>/` with `{"numbers": [...], <the action's fields>}` — the
fields of the one-case endpoint `POST /api/v1/incidents/<number>/<action>/`, checked once. What
a batch needs to be right before any case changes is checked first and refuses the whole batch
with 400 naming the field: the form and its reasons and notes as the services take them, the
numbers (1 to BATCH_MAX, no repeats), a dispatch's department and person, a merge's primary
(visible to the user, open, not among `numbers`).

Then each case goes through the same service as on its own, in its own transaction (its audit
entry and its event commit with it), in the order given, and is answered on its own: what the
one-case endpoint would have answered — `code` 200 and the case's new `status`, or the 403, 404
or 409 and the error body. One case that someone else has moved on, or that the user may not
touch, never holds back the others. The batch is answered 200 whenever it was taken in.

Writes honour `Idempotency-Key` (incidents.api.idempotency, `steps=True`: the answer is
recorded after the steps, which commit one by one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from audit.services import request_ip
from incidents import services
from incidents.api.idempotency import idempotent
from incidents.api.serializers import TextField
from incidents.api.views import (
    _ERRORS,
    _IDEMPOTENCY_PARAM,
    _REFUSALS,
    ACTIONS,
    ActionSpec,
    LenientJSONParser,
    _field_error,
    _no_case,
    _parsed,
    _refusal,
)
from incidents.models import Incident
from incidents.selectors import incident_for_user, incidents_for_user

BATCH_MAX = 100
# The actions a queue offers on many cases at once: the first steps of a surge (立案 or 不予立案,
# 派遣, 合并 duplicates), a department's 签收, and 结案 of verified cases. Not those that need
# a look at the one case: feed back with photos, verify, evaluate, extensions, send back.
BATCH_ACTIONS = ("register", "reject", "dispatch", "merge", "accept", "close")
NUMBER_MAX_LENGTH = 24

Perform = Callable[[Incident], Incident]


class BatchResultOut(serializers.Serializer):
    number = serializers.CharField()
    result = serializers.ChoiceField(choices=["done", "error"])
    code = serializers.IntegerField(
        help_text="what the one-case endpoint would have answered: 200, 400, 403, 404 or 409"
    )
    status = serializers.CharField(
        allow_null=True,
        help_text="the case's status after the action; for a 409 its status now; else null",
    )
    errors = serializers.DictField(  # type: ignore[assignment]  # a field, not Serializer.errors
        help_text="the one-case endpoint's error body ({} when done)"
    )


class BatchOut(serializers.Serializer):
    action = serializers.CharField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BatchResultOut(many=True)


def _numbers_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=NUMBER_MAX_LENGTH),
        min_length=1,
        max_length=BATCH_MAX,
        help_text=f"the cases' numbers, 1 to {BATCH_MAX}, each once",
    )


def batch_form(spec: ActionSpec) -> type[serializers.Serializer]:
    """The action's one-case form with `numbers` (unknown fields are still refused)."""
    name = f"Batch{spec.slug.title().replace('-', '')}In"
    return type(name, (spec.form,), {"numbers": _numbers_field()})


class _Refused(Exception):
    """The batch as a whole is refused (400) before any case changes."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _repeated(numbers: list[str]) -> list[str]:
    return sorted(number for number, n in Counter(numbers).items() if n > 1)


def _check_texts(form: serializers.Serializer, data: dict[str, Any]) -> None:
    """The reasons and notes as the services will take them (a reason the one-case form
    requires is not empty; none is too long): a blank 不予立案 reason is the batch's 400, not a
    400 for each case."""
    for name, field in form.fields.items():
        if isinstance(field, TextField):
            try:
                services.check_text(name, data[name], required=field.required)
            except services.IncidentInputError as exc:
                raise _Refused(_field_error(exc.field, exc.reason)) from None


def _performer(
    spec: ActionSpec, by: Any, data: dict[str, Any], numbers: list[str], ip: str | None
) -> Perform:
    """How each case is acted on, after the checks that concern the whole batch."""
    if spec.action == "dispatch":
        assignee = None
        if data["assignee"]:
            assignee = User.objects.filter(username=data["assignee"]).first()
            if assignee is None:
                raise _Refused(
                    _field_error(
                        "assignee", _("没有用户“%(value)s”。") % {"value": data["assignee"]}
                    )
                )
        try:
            department = services.dispatch_department(data["department"], assignee)
        except services.IncidentInputError as exc:
            raise _Refused(_field_error(exc.field, exc.reason)) from None
        return lambda case: services.incident_dispatch(
            incident=case,
            by=by,
            department_code=department,
            assignee=assignee,
            note=data["note"],
            ip=ip,
        )
    if spec.action == "merge":
        try:
            into = incident_for_user(by, data["into"])
        except Incident.DoesNotExist:
            raise _Refused(_field_error("into", _no_case(data["into"]))) from None
        if into.number in numbers:
            raise _Refused(
                _field_error(
                    "numbers",
                    _("主案件 %(number)s 不能同时作为被合并的案件。") % {"number": into.number},
                )
            )
        try:
            services.check_merge_target(into)
        except services.IncidentInputError as exc:
            raise _Refused(_field_error(exc.field, exc.reason)) from None
        return lambda case: services.incident_merge(
            incident=case, into=into, by=by, reason=data["reason"], ip=ip
        )
    return lambda case: spec.perform(case, by, data, ip)


@dataclass
class _Results:
    rows: list[dict[str, Any]]

    def add(self, number: str, code: int, case_status: str | None, errors: Any) -> None:
        result = "done" if code == status.HTTP_200_OK else "error"
        self.rows.append(
            {
                "number": number,
                "result": result,
                "code": code,
                "status": case_status,
                "errors": errors or {},
            }
        )

    def answer(self, action: str) -> dict[str, Any]:
        done = sum(1 for row in self.rows if row["result"] == "done")
        return {
            "action": action,
            "done": done,
            "failed": len(self.rows) - done,
            "results": self.rows,
        }


class IncidentBatchView(APIView):
    """Base of the per-action batch views (`batch_view` makes one per batch action)."""

    parser_classes = [LenientJSONParser]
    spec: ActionSpec
    form: type[serializers.Serializer]  # batch_form(spec)

    def post(self, request: Request) -> Response:
        return _parsed(request) or idempotent(request, lambda: self._batch(request), steps=True)

    def _batch(self, request: Request) -> Response:
        form = self.form(data=request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        data = dict(form.validated_data)
        numbers: list[str] = [number.strip() for number in data.pop("numbers")]
        repeated = _repeated(numbers)
        if repeated:
            return _field_error(
                "numbers", _("案件编号重复：%(numbers)s。") % {"numbers": "、".join(repeated)}
            )
        by, ip = request.user, request_ip(request)
        try:
            _check_texts(form, data)
            perform = _performer(self.spec, by, data, numbers, ip)
        except _Refused as exc:
            return exc.response
        cases = incidents_for_user(by, numbers)
        results = _Results(rows=[])
        for number in numbers:
            case = cases.get(number)
            if case is None:
                results.add(number, status.HTTP_404_NOT_FOUND, None, {"detail": _no_case(number)})
                continue
            try:
                case = perform(case)
            except _REFUSALS as exc:
                refusal = _refusal(exc)
                results.add(number, refusal.status_code, refusal.data.get("status"), refusal.data)
                continue
            results.add(number, status.HTTP_200_OK, case.status, None)
        return Response(results.answer(self.spec.action))


def batch_view(spec: ActionSpec) -> Callable[..., Any]:
    """A view class of its own per batch action, so that each has its request schema."""

    def post(self: IncidentBatchView, request: Request) -> Response:
        return IncidentBatchView.post(self, request)

    form = batch_form(spec)
    documented = extend_schema(
        operation_id=f"incidents_batch_{spec.action}",
        summary=f"批量 {spec.summary} (up to {BATCH_MAX} cases)",
        description=(
            "The one-case action on each of `numbers`, in order, each in its own transaction, "
            "each answered in `results` as the one-case endpoint would have answered it. "
            "400 refuses the whole batch before any case changes."
        ),
        request=form,
        parameters=[_IDEMPOTENCY_PARAM],
        responses={
            200: BatchOut,
            **_ERRORS,
            400: OpenApiResponse(
                description='bad input, nothing changed: {"<field>": ["reason"]} — the form, '
                "`numbers` (1 to 100, no repeats), a dispatch's department or assignee, a "
                "merge's `into` (not found, finished, or among `numbers`)"
            ),
        },
    )(post)
    name = f"IncidentBatch{spec.slug.title().replace('-', '')}View"
    view: type[IncidentBatchView] = type(
        name, (IncidentBatchView,), {"spec": spec, "form": form, "post": documented}
    )
    return view.as_view()


BATCH_SPECS: tuple[ActionSpec, ...] = tuple(
    spec for spec in ACTIONS if spec.action in BATCH_ACTIONS
)
