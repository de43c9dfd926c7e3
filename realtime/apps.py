from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Transport only: channel-layer groups, the outbox relay, the WebSocket consumer and replay;
    it imports no domain app."""

    name = "realtime"
    verbose_name = "实时 Realtime"
