from django.urls import path

from gridmap.api.views import LocateView, RegionDetailView, RegionListView

urlpatterns = [
    path("locate", LocateView.as_view(), name="locate"),
    path("regions/", RegionListView.as_view(), name="region-list"),
    path("regions/<str:code>/", RegionDetailView.as_view(), name="region-detail"),
]
