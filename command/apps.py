from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class CommandConfig(AppConfig):
    """What people look at: the command centres' pages, the wall screen, street and community
    consoles, KPIs, evaluation and exports; today the home page and the geography map."""

    name = "command"
    verbose_name = pgettext_lazy("app", "指挥")
