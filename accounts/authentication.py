"""DRF authentication by API key: `Authorization: Api-Key <key>` (integrations)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions
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
