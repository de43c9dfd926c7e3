from django.urls import path

from dispatch.api.views import IncidentPlansView, MyPositionView, PositionListView

urlpatterns = [
    path("responders/me/position/", MyPositionView.as_view(), name="responder-my-position"),
    path("responders/positions/", PositionListView.as_view(), name="responder-positions"),
    # Beside the case's own routes (incidents.api.urls), which have no "plans".
    path("incidents/<str:number>/plans/", IncidentPlansView.as_view(), name="incident-plans"),
]
