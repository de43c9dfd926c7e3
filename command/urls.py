from django.urls import path

from command import views

urlpatterns = [
    path("", views.home, name="home"),
    path("map/", views.geography_map, name="geography-map"),
]
