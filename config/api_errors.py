"""The API's exception handler: DRF's, in words a person understands where DRF's are not
(a body that does not parse, a request without a signed-in session), plus a clear 503 when the
database is overloaded.

Under a burst the database may not give a request its turn in time: SQLite's write lock is not
free within its busy timeout ("database is locked"), or no pooled PostgreSQL connection is free
within DB_POOL_TIMEOUT. Nothing was stored (the transaction never began or was rolled back), so
the honest answer is 503 with Retry-After — a phone's offline queue and an integration retry
it with the same Idempotency-Key — not a 500 that reads like a bug.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2


def _overloaded(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    if "database is locked" in str(exc):
        return True
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # the pool is only installed for PostgreSQL
        return False
    return isinstance(exc.__cause__, PoolTimeout)


def parse_error_reason(exc: exceptions.ParseError) -> str:
    """A body that could not be parsed, in the reader's language; the parser's own words (the
    position of a JSON syntax error, which DRF does not translate) follow in brackets."""
    said = str(exc.detail)
    for prefix in ("JSON parse error - ", "Multipart form parse error - "):
        said = said.removeprefix(prefix)
    return _("无法解析请求体（%(error)s）。") % {"error": said}


def body_too_large_reason() -> str:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE, in the reader's language: the API's 413, the
    Open311 server's and the pages' 400 handler say it alike."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _("请求体过大，最多 %(limit)s 字节。") % {"limit": limit}


def _not_authenticated_reason(request: Any) -> str:
    """DRF says "credentials were not provided". A browser that sent a session cookie reads that
    its session ended (signed out, or idle past its limit: accounts.sessions); a caller that
    sent nothing (an integration without its key) reads what it may send."""
    cookies = getattr(request, "COOKIES", {})
    if settings.SESSION_COOKIE_NAME in cookies:
        return _("未登录或登录已失效，请重新登录。")
    return _("未提供身份凭据：请登录，或在请求头 Authorization 中提供 Api-Key。")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ParseError):
        response.data = {"detail": parse_error_reason(exc)}  # DRF's words are English only
    if response is not None and isinstance(exc, exceptions.NotAuthenticated):
        response.data = {"detail": _not_authenticated_reason(context.get("request"))}
    if response is None and isinstance(exc, RequestDataTooBig):
        # Read before the view could answer it (a form body's CSRF token): the view's own 413.
        response = Response(
            {"detail": body_too_large_reason()}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if response is None and _overloaded(exc):
        view = context.get("view")
        log.warning("database busy, answered 503 (%s): %s", view.__class__.__name__, exc)
        response = Response(
            {"detail": _("服务器繁忙，未保存任何内容，请稍后重试。")},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return response
