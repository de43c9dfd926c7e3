from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class GridmapConfig(AppConfig):
    """The district's geography: regions of the 1+6+N hierarchy, their boundary generations,
    import and validation, coordinate systems, and the point locator every incident goes through."""

    name = "gridmap"
    verbose_name = pgettext_lazy("app", "网格地图")
    default_auto_field = "django.db.models.BigAutoField"
