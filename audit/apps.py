from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class AuditConfig(AppConfig):
    """The append-only, hash-chained audit trail that every state-changing service writes in its
    own transaction; it imports no domain app, so every layer (gridmap included) can call it."""

    name = "audit"
    verbose_name = pgettext_lazy("app", "审计")
    default_auto_field = "django.db.models.BigAutoField"
