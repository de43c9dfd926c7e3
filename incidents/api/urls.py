from django.urls import path

from incidents.api.batch import BATCH_SPECS, batch_view
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
    # Batch actions from a console's queue; before the actions, whose <number> would match.
    *(
        path(
            f"incidents/batch/{spec.slug}/",
            batch_view(spec),
            name=f"incident-batch-{spec.slug}",
        )
        for spec in BATCH_SPECS
    ),
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
