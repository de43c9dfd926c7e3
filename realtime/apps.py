from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class RealtimeConfig(AppConfig):
    """Transport only: channel-layer groups, the outbox relay, the WebSocket consumer and replay;
    it imports no domain app."""

    name = "realtime"
    verbose_name = pgettext_lazy("app", "实时")
