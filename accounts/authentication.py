"""DRF authentication: by API key, `Authorization: Api-Key <key>` (integrations), and by the
signed-in session (the pages' scripts), whose CSRF check leaves the body unread."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.services import api_key_authenticate

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """request.user is the integration's account, request.auth its ApiKey (whose `channels`
    the intake views check). No header → the next authentication class is tried; a header with
    a wrong, revoked or malformed key → 401."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace").lower() != KEYWORD.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("请按 Authorization: Api-Key <key> 发送一个密钥。")
            )
        key = api_key_authenticate(parts[1].decode(errors="replace"))
        if key is None:
            raise exceptions.AuthenticationFailed(_("接口密钥不存在或已停用。"))
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class _HeaderTokenRequest:
    """The request as the CSRF check sees it when its token came in the X-CSRFToken header:
    everything but the body (an empty POST)."""

    POST = QueryDict()

    def __init__(self, request: HttpRequest) -> None:
        self._wrapped = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication, whose CSRF check does not read the body when the token is
    in the X-CSRFToken header (as the pages' scripts send it).

    Django's check reads the form body for a `csrfmiddlewaretoken` field first, and DRF's
    request parses the whole body to answer it — during authentication, before the view has
    put its limits in place: a JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE failed as Django's
    bare 400 instead of the API's 413, and a multipart report's photos were read past the
    view's upload limits (incidents.api.views._parsed). The token is checked all the same, from
    the header, as Django does when the body has none."""

    def enforce_csrf(self, request: Request) -> None:
        if settings.CSRF_HEADER_NAME in request.META:
            request = _HeaderTokenRequest(request._request)  # type: ignore[assignment]
        super().enforce_csrf(request)
