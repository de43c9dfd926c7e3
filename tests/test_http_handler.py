"""config.http.CityOpsASGIHandler: Django's ASGI handler with a synchronous middleware chain and
reused request threads (config/http.py). Requests go through the handler itself, as Daphne sends
them, with channels' HttpCommunicator; this module is also the URLconf of the views they call."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import django.utils.deprecation
import pytest
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, JsonResponse
from django.test import override_settings
from django.urls import path

from config.http import CityOpsASGIHandler

_served = threading.local()
_running = 0
_most_running = 0
_lock = threading.Lock()


def whoami(request: HttpRequest) -> JsonResponse:
    _served.count = getattr(_served, "count", 0) + 1
    return JsonResponse({"thread": threading.current_thread().name, "served": _served.count})


def slow(request: HttpRequest) -> JsonResponse:
    global _running, _most_running
    with _lock:
        _running += 1
        _most_running = max(_most_running, _running)
    time.sleep(0.15)
    with _lock:
        _running -= 1
    return JsonResponse({"ok": True})


urlpatterns = [path("whoami/", whoami), path("slow/", slow)]

pytestmark = pytest.mark.usefixtures("_urls")


@pytest.fixture
def _urls():
    with override_settings(ROOT_URLCONF=__name__):
        yield


async def _get(handler: ASGIHandler, url: str) -> dict:
    communicator = HttpCommunicator(handler, "GET", url, headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200, response
    return json.loads(response["body"])


def test_sequential_requests_reuse_one_thread():
    handler = CityOpsASGIHandler()

    async def main() -> list[dict]:
        return [await _get(handler, "/whoami/") for _ in range(5)]

    answers = asyncio.run(main())
    # One request at a time: the same kept thread serves each, not a new one per request.
    assert {a["thread"] for a in answers} == {answers[0]["thread"]}
    assert answers[0]["thread"].startswith("django-http")
    assert [a["served"] for a in answers] == [1, 2, 3, 4, 5]


def test_django_handler_starts_a_thread_per_request_for_comparison():
    async def main() -> list[dict]:
        handler = ASGIHandler()
        return [await _get(handler, "/whoami/") for _ in range(3)]

    assert [a["served"] for a in asyncio.run(main())] == [1, 1, 1]


def test_middleware_runs_without_a_hop_per_hook(monkeypatch):
    """Django's async chain sends each MiddlewareMixin hook through sync_to_async; ours none."""
    calls = []
    real = django.utils.deprecation.sync_to_async

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(django.utils.deprecation, "sync_to_async", counting)

    asyncio.run(_get(CityOpsASGIHandler(), "/whoami/"))
    assert calls == []

    asyncio.run(_get(ASGIHandler(), "/whoami/"))
    assert len(calls) > 5  # the check can fail: Django's own handler makes these hops


def test_requests_beyond_the_thread_limit_wait_for_a_free_thread():
    global _most_running
    _most_running = 0
    with override_settings(CITYOPS_HTTP_THREADS=2):
        handler = CityOpsASGIHandler()

    async def main() -> list[dict]:
        return await asyncio.gather(*(_get(handler, "/slow/") for _ in range(5)))

    assert len(asyncio.run(main())) == 5
    assert _most_running == 2
    assert len(handler._idle) == 2  # the two threads are kept for the next requests


def test_only_http_is_served():
    async def main() -> None:
        await CityOpsASGIHandler()({"type": "websocket"}, None, None)

    with pytest.raises(ValueError, match="websocket"):
        asyncio.run(main())
