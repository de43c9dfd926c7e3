"""incidents.location: a WGS-84 point's HEXEWKB made and read without GEOS, the same as GEOS
makes it; and the events read a case's coordinates from it as from the GEOS point."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import GEOSGeometry, Point

from incidents.events import lon_lat
from incidents.location import hexewkb_lon_lat, point_hexewkb
from incidents.models import Incident

POINTS = [(114.0445, 22.6913), (113.98637001441762, 22.682162022500002), (-0.5, -89.999999)]


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_the_hexewkb_is_what_geos_makes(lon: float, lat: float) -> None:
    text = point_hexewkb(lon, lat)

    assert text.upper() == Point(lon, lat, srid=4326).hexewkb.decode()
    read = GEOSGeometry(text)
    assert (read.srid, read.x, read.y) == (4326, lon, lat)


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_the_hexewkb_reads_back_in_either_case(lon: float, lat: float) -> None:
    assert hexewkb_lon_lat(point_hexewkb(lon, lat)) == (lon, lat)
    assert hexewkb_lon_lat(Point(lon, lat, srid=4326).hexewkb.decode()) == (lon, lat)


@pytest.mark.parametrize(
    "text",
    [
        Point(114.0, 22.6, srid=3857).hexewkb.decode(),  # another SRID
        Point(114.0, 22.6).hex.decode(),  # no SRID
        Point(114.0, 22.6, 5.0, srid=4326).hexewkb.decode(),  # 3-D
        "POINT (114 22.6)",
        "zz" * 25,  # the length of a point, but not hex
        "",
    ],
)
def test_other_texts_are_not_read(text: str) -> None:
    assert hexewkb_lon_lat(text) is None


def test_a_case_s_coordinates_are_the_same_from_hexewkb_or_geos() -> None:
    lon, lat = POINTS[1]
    from_text, from_geos = Incident(location=point_hexewkb(lon, lat)), Incident()
    from_geos.location = Point(lon, lat, srid=4326)

    assert lon_lat(from_text) == lon_lat(from_geos) == [lon, lat]
    assert type(from_text.__dict__["location"]) is str  # read without building the point
    assert from_text.location == from_geos.location  # and Django builds the same one from it
