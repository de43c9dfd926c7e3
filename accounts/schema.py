"""OpenAPI description of the API's authentications (drf-spectacular finds them on import)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Integrations: `Api-Key <key>` (issued by accounts_issue_api_key)",
        }


class CsrfHeaderSessionScheme(SessionScheme):
    """The session cookie, as drf-spectacular describes DRF's session authentication (ours
    differs only in how it checks the CSRF token)."""

    target_class = "accounts.authentication.SessionAuthentication"
