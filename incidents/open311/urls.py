"""Open311 GeoReport v2 under /open311/v2/ (config/urls.py): the format is the extension."""

from django.urls import re_path

from incidents.open311.views import (
    DiscoveryView,
    RequestDetailView,
    RequestListView,
    ServiceDefinitionView,
    ServiceListView,
)

FMT = r"\.(?P<fmt>json|xml)$"

app_name = "open311"
urlpatterns = [
    re_path(r"^discovery" + FMT, DiscoveryView.as_view(), name="discovery"),
    re_path(r"^services" + FMT, ServiceListView.as_view(), name="services"),
    re_path(r"^services/(?P<code>[^/.]+)" + FMT, ServiceDefinitionView.as_view(), name="service"),
    re_path(r"^requests" + FMT, RequestListView.as_view(), name="requests"),
    re_path(r"^requests/(?P<number>[^/.]+)" + FMT, RequestDetailView.as_view(), name="request"),
]
