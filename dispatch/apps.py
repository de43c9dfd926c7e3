from django.apps import AppConfig


class DispatchConfig(AppConfig):
    """Who does the work: departments, responders, routing rules, assignments, response plans and
    the escalation worker (built in issue 3)."""

    name = "dispatch"
    verbose_name = "派遣 Dispatch"
