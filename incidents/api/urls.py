from django.urls import path

from incidents.api.bulk import IncidentBulkView
from incidents.api.views import (
    ACTIONS,
    IncidentDetailView,
    IncidentListView,
    IncidentPhotoOriginalView,
    IncidentPhotoView,
    action_view,
)

urlpatterns = [
    path("incidents/", IncidentListView.as_view(), name="incident-list"),
    # Before the detail route, whose <number> would match "bulk".
    path("incidents/bulk/", IncidentBulkView.as_view(), name="incident-bulk"),
    path("incidents/<str:number>/", IncidentDetailView.as_view(), name="incident-detail"),
    # Photos, scoped like their case (never a public /media/ URL).
    path(
        "incidents/<str:number>/photos/<int:photo_id>/",
        IncidentPhotoView.as_view(),
        name="incident-photo",
    ),
    path(
        "incidents/<str:number>/photos/<int:photo_id>/original/",
        IncidentPhotoOriginalView.as_view(),
        name="incident-photo-original",
    ),
    *(
        path(
            f"incidents/<str:number>/{spec.slug}/",
            action_view(spec),
            name=f"incident-{spec.slug}",
        )
        for spec in ACTIONS
    ),
]
