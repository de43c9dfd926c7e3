"""A map widget for boundaries in the admin that works offline.

Django's OpenLayersWidget loads OpenLayers from a CDN and draws on NASA tiles. This one uses the
OpenLayers build installed from npm (package.json pins ol 7.5.2; config/staticfinders.py publishes
it under static/vendor/ol/) and, as its base layer, tiles only when CITYOPS_MAP_TILE_URL is set —
otherwise an empty vector layer, so the page makes no request beyond this server.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.gis.forms.widgets import OpenLayersWidget


class OfflineOpenLayersWidget(OpenLayersWidget):
    template_name = "gridmap/widgets/openlayers_offline.html"
    # Where an empty map opens: Longhua district.
    default_lon = 114.035
    default_lat = 22.68
    default_zoom = 11

    class Media:
        # extend=False: do not inherit the CDN URLs of OpenLayersWidget.Media.
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css", "gridmap/admin.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js", "gridmap/admin-map.js")

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__()
        for key in ("default_lon", "default_lat", "default_zoom"):
            self.attrs[key] = getattr(self, key)
        if attrs:
            self.attrs.update(attrs)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context(name, value, attrs)
        context["tile_url"] = settings.CITYOPS_MAP_TILE_URL
        return context
