"""Idempotent writes: the `Idempotency-Key` header (幂等键) of phones that retry.

A client sends a fresh key (a UUID) with each write and the *same* key with every retry of it.
The first request with a key claims it: an IdempotencyRecord row (user, key, fingerprint of the
request, state in_flight) is inserted and committed in its own short transaction, before any
work starts. The unique (user, key) pair decides races: a concurrent twin fails to insert and
looks at the row instead —

* same fingerprint, still in flight → 409 (try again shortly);
* same fingerprint, done → the first answer again, status and body (and the header
  `Idempotent-Replayed: true`); nothing is done twice;
* another fingerprint (method, path or body differ) → 422: a key names one request.

The work (the service call and the serialised answer) runs inside one transaction together with
the record's completion, a conditional UPDATE of *this* claim (pk, state in_flight): the case and
the record of its answer commit together or not at all, so a crash never leaves a case whose
retry would create a second one. 4xx answers are stored and replayed like successes (the
Stripe rule: a corrected request needs a new key); a 5xx or an unexpected error releases the
claim so that the retry runs again. Keys expire after KEY_TTL (24 h): an expired record is
deleted when its key comes again, and a user's expired records when they claim a new key. A
claim left in flight for IN_FLIGHT_TIMEOUT belongs to a request that died before committing (the
work and the completion commit together); the next retry takes it over, and should the old
request still be alive its completion finds its claim gone and rolls its work back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from incidents.models import IdempotencyRecord, IdempotencyState

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
KEY_TTL = timedelta(hours=24)
IN_FLIGHT_TIMEOUT = timedelta(minutes=5)


class _ClaimLost(Exception):
    """This request's claim was taken over while it worked: its work must not commit."""


def _file_digest(upload: UploadedFile) -> dict[str, Any]:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return {"sha256": digest.hexdigest(), "bytes": upload.size}


def _canonical(data: Any) -> Any:
    """The body as JSON can say it. A multipart body (fields and files, each name possibly
    repeated) becomes {name: [values]} with every file replaced by its SHA-256 and size: the
    same photos under another file name are the same request, other bytes are not."""
    if isinstance(data, MultiValueDict):
        return {
            str(name): [
                _file_digest(value) if isinstance(value, UploadedFile) else value
                for value in data.getlist(name)
            ]
            for name in data
        }
    return data


def request_fingerprint(request: Request) -> str:
    """SHA-256 of method, path and the body in canonical JSON (sorted keys, no spaces; the
    files of a multipart body by their SHA-256)."""
    body = json.dumps(
        _canonical(request.data),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    text = f"{request.method}\n{request.path}\n{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_error(key: str) -> str | None:
    if not key or len(key) > KEY_MAX_LENGTH:
        return _("须为 1 到 %(limit)s 个字符。") % {"limit": KEY_MAX_LENGTH}
    if not all(33 <= ord(ch) <= 126 for ch in key):
        return _("只能是不含空格的可打印 ASCII 字符（UUID 就是很好的键）。")
    return None


def _claim(*, user: Any, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Insert the claim, or answer from the record that holds the key already."""
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.filter(user=user, created_at__lt=now - KEY_TTL).delete()
                return IdempotencyRecord.objects.create(
                    user=user, key=key, fingerprint=fingerprint, created_at=now
                )
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # released or expired meanwhile: claim again
        abandoned = (
            existing.state == IdempotencyState.IN_FLIGHT
            and existing.created_at < now - IN_FLIGHT_TIMEOUT
        )
        if existing.created_at < now - KEY_TTL or abandoned:
            IdempotencyRecord.objects.filter(pk=existing.pk, state=existing.state).delete()
            continue
        if existing.fingerprint != fingerprint:
            return Response(
                {HEADER: [_("已用于另一个请求，请换一个新的键。")]},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        if existing.state == IdempotencyState.IN_FLIGHT:
            break
        assert existing.response_status is not None
        return Response(
            existing.response_body,
            status=existing.response_status,
            headers={"Idempotent-Replayed": "true"},
        )
    return Response(
        {HEADER: [_("使用这个键的请求仍在处理中，请稍后重试。")]},
        status=status.HTTP_409_CONFLICT,
    )


def _complete(record: IdempotencyRecord, response: Response) -> None:
    done = IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyState.IN_FLIGHT).update(
        state=IdempotencyState.DONE,
        response_status=response.status_code,
        response_body=response.data,
        completed_at=timezone.now(),
    )
    if not done:
        raise _ClaimLost


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyState.IN_FLIGHT).delete()


def idempotent(request: Request, work: Callable[[], Response], *, steps: bool = False) -> Response:
    """Run `work` (which calls one service and returns the answer) at most once per key.

    Without the header the work simply runs. The request body must already be parsed — JSON,
    or multipart with its files (a parse error is answered before any key is claimed).

    `steps`: the work is many services' calls, each committing on its own (a batch action:
    one transaction for all would publish many events in one transaction, which realtime's
    publish() forbids, and hold every case locked to the end). The answer is recorded after
    the work, in a transaction of its own; a retry meanwhile gets 409 as usual. Should the
    request die between its steps, the key's claim is taken over after IN_FLIGHT_TIMEOUT and
    the retry runs again: a step already done answers as a case in its new state would (409,
    the action no longer allowed), never done twice by the state machine."""
    key = request.headers.get(HEADER)
    if key is None:
        return work()
    problem = _key_error(key)
    if problem:
        return Response({HEADER: [problem]}, status=status.HTTP_400_BAD_REQUEST)
    claimed = _claim(user=request.user, key=key, fingerprint=request_fingerprint(request))
    if isinstance(claimed, Response):
        return claimed
    try:
        if steps:
            response = work()
            _complete_after_steps(claimed, response)
        else:
            with transaction.atomic():
                response = work()
                if response.status_code < 500:
                    _complete(claimed, response)
    except _ClaimLost:
        return Response(
            {HEADER: [_("请求耗时过长，它的键已被另一个请求接手；本次没有做任何操作。")]},
            status=status.HTTP_409_CONFLICT,
        )
    except BaseException:
        _release(claimed)
        raise
    if response.status_code >= 500:
        _release(claimed)
    return response


def _complete_after_steps(claimed: IdempotencyRecord, response: Response) -> None:
    """Record the answer of work whose steps have committed (a 5xx is released by the caller)."""
    if response.status_code >= 500:
        return
    try:
        with transaction.atomic():
            _complete(claimed, response)
    except _ClaimLost:
        pass  # a retry took the key over; the steps done here stay done, answered as they are
