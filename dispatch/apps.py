from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class DispatchConfig(AppConfig):
    """Who does the work: departments, responders, routing rules, assignments, response plans and
    the escalation worker (built in issue 3)."""

    name = "dispatch"
    verbose_name = pgettext_lazy("app", "派遣")
