"""The intake benchmark's URLconf: the product's URLs plus the plain DRF references, which exist
only here (bench/intake_reference.py)."""

from django.urls import path

from bench.intake_reference import FloorView, ReferenceBulkView, ReferenceIncidentView
from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("bench/reference/incidents/", ReferenceIncidentView.as_view()),
    path("bench/reference/incidents/bulk/", ReferenceBulkView.as_view()),
    path("bench/reference/floor/", FloorView.as_view()),
    *product_urlpatterns,
]
