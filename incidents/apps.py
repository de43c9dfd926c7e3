from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class IncidentsConfig(AppConfig):
    """Cases and their closed loop: categories, intake on every channel, the workflow state machine,
    time limits and the working calendar, photos and the audit trail (built in issue 3)."""

    name = "incidents"
    verbose_name = pgettext_lazy("app", "事件")
