"""ASGI entry point: HTTP through Django (config.http: a synchronous middleware chain on kept
threads, ADR 0012); WebSockets through Channels (routes: realtime.routing).

A WebSocket must come from a page of an allowed host (AllowedHostsOriginValidator: the Origin
header against ALLOWED_HOSTS) and carries the Django session (AuthMiddlewareStack), from which
the live feed's consumer decides what the socket may follow.
"""

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

from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
