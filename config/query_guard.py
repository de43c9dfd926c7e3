"""A query-string parameter holding a NUL character is refused with a 400 naming it.

The pages and the API read their filters from the query string (a queue's search, the audit
page's object, `?since=`…). NUL has no use in any of them, and PostgreSQL cannot hold it in a
text value: a search for it would fail inside the database (a 500) instead of saying what is
wrong. Forms and API bodies are Django's and DRF's fields, which refuse NUL themselves.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _

# Paths whose answers are JSON (the API and Open311), as their other refusals are.
JSON_PREFIXES = ("/api/", "/open311/")


class QueryNulGuardMiddleware(MiddlewareMixin):
    """Refuses a request whose query string has a NUL in a parameter's name or value (after
    LocaleMiddleware, so the reason is in the reader's language)."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return _refusal(request, name.replace("\x00", "\\0"))
        return None


def _refusal(request: HttpRequest, name: str) -> HttpResponse:
    reason = _("参数 %(name)s 含有空字符（\\0），无法使用。") % {"name": name}
    if request.path.startswith(JSON_PREFIXES):
        body = json.dumps({name: [reason]}, ensure_ascii=False)
        return HttpResponse(body, status=400, content_type="application/json")
    return HttpResponse(reason, status=400, content_type="text/plain; charset=utf-8")
