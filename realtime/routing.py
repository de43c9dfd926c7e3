"""WebSocket routes (wired in config/asgi.py): the live feed is the one socket of every page."""

from django.urls import path

from realtime.consumers import LiveFeedConsumer

websocket_urlpatterns = [
    path("ws/", LiveFeedConsumer.as_asgi()),
]
