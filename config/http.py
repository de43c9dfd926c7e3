"""The HTTP side of config/asgi.py: Django's ASGI handler, run the way a synchronous project wants.

Every CityOps view and middleware is synchronous. Django's own `ASGIHandler` costs such a
project two things per request, which together were a third of the CPU of a signed-in API call
that writes nothing (bench/README.md, "Intake benchmark"):

* **Hops between the event loop and the request's thread.** `ASGIHandler` builds the middleware
  chain in async mode. WhiteNoise's middleware is sync-only and sits second, so Django adapts
  around it and every other middleware runs its hooks through `MiddlewareMixin.__acall__`: each
  `process_request`, `process_view` and `process_response` is its own `sync_to_async` call, a
  round trip from the loop to the request's thread and back (about sixteen per request). Here
  the chain is built synchronous (`load_middleware(is_async=False)`), as under WSGI, and runs in
  one call.
* **A new thread for every request, and another to join it.** `ASGIHandler.__call__` opens a
  `ThreadSensitiveContext()`, whose executor (one thread) asgiref creates on first use and shuts
  down on exit from a further thread. Here each request's context gets a single-thread executor
  from a set that is kept and reused, at most `CITYOPS_HTTP_THREADS` per event loop; a request
  that finds them all busy waits in the loop for one, as under a threaded WSGI server.

Nothing else changes: the same `handle()` reads the body, watches for the client leaving,
sends `request_started`/`request_finished` and streams responses; all of one request's
synchronous work still runs in one thread (its database connection is that thread's).
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler


class CityOpsASGIHandler(ASGIHandler):
    _middleware_chain: Any  # set by BaseHandler.load_middleware

    def __init__(self) -> None:
        BaseHandler.__init__(self)  # not ASGIHandler.__init__, which builds the async chain
        self.load_middleware(is_async=False)
        # get_response_async awaits the chain: one thread-sensitive call runs all of it.
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)
        self.max_threads = max(1, int(settings.CITYOPS_HTTP_THREADS))
        self._idle: list[ThreadPoolExecutor] = []
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _loop_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.max_threads)
        return slots

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with self._loop_slots():
            try:
                executor = self._idle.pop()
            except IndexError:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-http")
            try:
                async with ThreadSensitiveContext(executor=executor):
                    await self.handle(scope, receive, send)
            finally:
                self._idle.append(executor)
