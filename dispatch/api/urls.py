from django.urls import path

from dispatch.api.views import MyPositionView, PositionListView

urlpatterns = [
    path("responders/me/position/", MyPositionView.as_view(), name="responder-my-position"),
    path("responders/positions/", PositionListView.as_view(), name="responder-positions"),
]
