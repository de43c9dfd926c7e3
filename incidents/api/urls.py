from django.urls import path

from incidents.api.views import ACTIONS, IncidentDetailView, IncidentListView, action_view

urlpatterns = [
    path("incidents/", IncidentListView.as_view(), name="incident-list"),
    path("incidents/<str:number>/", IncidentDetailView.as_view(), name="incident-detail"),
    *(
        path(
            f"incidents/<str:number>/{spec.slug}/",
            action_view(spec),
            name=f"incident-{spec.slug}",
        )
        for spec in ACTIONS
    ),
]
