"""What a person sees when a request is refused before a view ran (400, 413), a page does not exist
for them (404), is refused (403) or fails (500):
in the site's look and the reader's language; on the phone's look under /m/; and as JSON
(`{"detail": …}`, like every other API answer) under /api/ and /open311/.

A 404 or 403 raised by a page view carries a message written for people (a translated `str`);
anything else (Django's URL resolver, a PermissionDenied without words) gets the general one.
The 500 page reads nothing from the database: the database may be what failed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _

from command.views.consoles import workplace_url
from command.views.mobile import frame_context
from config.api_errors import body_too_large_reason

_API_PREFIXES = ("/api/", "/open311/")


def _said(exception: BaseException | None) -> str:
    args = getattr(exception, "args", ())
    return args[0] if args and isinstance(args[0], str) else ""


def _answer(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse({"detail": message or title}, status=status)
    phone = request.path.startswith("/m/")
    context: dict[str, Any] = {"status": status, "title": title, "message": message}
    if phone:
        context.update(frame_context(request))
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["workplace"] = workplace_url(user)
    template = "command/mobile_error.html" if phone else "command/error.html"
    return render(request, template, context, status=status)


def bad_request(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    """A request Django refused before any view ran: a body over DATA_UPLOAD_MAX_MEMORY_SIZE
    (read by the CSRF check of a signed-in user's form post), too many fields, a bad host."""
    if isinstance(exception, RequestDataTooBig):
        return _answer(request, 413, _("提交的内容过大"), body_too_large_reason())
    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        reason = _("参数过多，最多 %(limit)s 个。") % {"limit": limit}
        return _answer(request, 400, _("请求无效"), reason)
    return _answer(request, 400, _("请求无效"), _("请求无效，请刷新页面后重试。"))


def not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    return _answer(
        request,
        404,
        _("页面不存在"),
        _said(exception) or _("没有这个页面，或您无权查看。"),
    )


def refused(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    return _answer(request, 403, _("无权访问"), _said(exception) or _("您的账号无权打开这个页面。"))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form posted with an outdated or missing CSRF token (a page left open across a sign-in
    or sign-out, cookies blocked): say what to do, not Django's technical page."""
    return _answer(
        request,
        403,
        _("页面已过期"),
        _("页面已过期或浏览器未保存 Cookie，本次提交没有保存；请刷新页面后重试。"),
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(_API_PREFIXES):
        detail = _("服务器出错，操作可能没有完成；请稍后重试，或联系系统管理员。")
        return JsonResponse({"detail": detail}, status=500)
    return HttpResponse(loader.get_template("500.html").render(), status=500)
