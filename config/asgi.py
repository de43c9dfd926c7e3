"""ASGI entry point: HTTP through Django (config.http: a synchronous middleware chain on kept
threads, ADR 0012); WebSockets through Channels (routes: realtime.routing).

A WebSocket must come from a page of an allowed host (AllowedHostsOriginValidator: the Origin
header against ALLOWED_HOSTS) and carries the Django session (AuthMiddlewareStack), from which
the live feed's consumer decides what the socket may follow.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

# Django is set up (apps loaded) before anything imports models.
django.setup(set_prefix=False)

from config.http import CityOpsASGIHandler  # noqa: E402

django_asgi_app = CityOpsASGIHandler()

from django.urls import get_resolver  # noqa: E402

from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

YOUNGEST_GENERATION_THRESHOLD = 20_000  # gc.set_threshold, at the end

# The URLconf, and with it every view, serializer and schema, is imported now rather than by the
# first request. Then every object alive at this point (Django, the apps, DRF: some 150,000)
# is moved out of the garbage collector's reach with gc.freeze(): they live as long as the
# process, and without this each full collection walks them all again. Measured on a bulk
# batch of 1,000 (bench/README.md, "Intake benchmark"): the collector's time per batch
# ≈55 → ≈11 ms. Objects made later (the locator's index, caches) are collected as usual.
get_resolver().url_patterns  # noqa: B018 (evaluated for its import side effect)
gc.collect()
gc.freeze()
# The youngest generation is collected after 20,000 net allocations instead of Python's 700. A
# bulk batch allocates hundreds of thousands of objects that reference counting frees; at 700
# the collector ran hundreds of times a batch for nothing. Measured in process on PostGIS,
# alternating (ADR 0013): the bulk service's CPU per 1,000 cases, median ≈158–169 → ≈150–159 ms.
gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
