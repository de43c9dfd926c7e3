"""Coordinate conversion against published reference points and the shared Longhua files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridmap import crs
from tests.conftest import PROJECT_DATA, TEST_DATA

# (wgs84 lon, lat, gcj02 lon, lat) — eviltransform's published test vectors (Shanghai, Shenzhen,
# Beijing) and coordtransform's Beijing point.
WGS_GCJ = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]
# (gcj02 lon, lat, bd09 lon, lat) — coordtransform's published pair.
GCJ_BD = [(116.404, 39.915, 116.41036949371029, 39.92133699351021)]
BD_GCJ = [(116.404, 39.915, 116.39762729119315, 39.90865673957631)]


@pytest.mark.parametrize(("lon", "lat", "glon", "glat"), WGS_GCJ)
def test_wgs84_to_gcj02_matches_reference_points(lon, lat, glon, glat):
    assert crs.wgs84_to_gcj02(lon, lat) == pytest.approx((glon, glat), abs=1e-9)


@pytest.mark.parametrize(("lon", "lat", "glon", "glat"), WGS_GCJ)
def test_gcj02_to_wgs84_inverts_reference_points_within_a_millimetre(lon, lat, glon, glat):
    assert crs.gcj02_to_wgs84(glon, glat) == pytest.approx((lon, lat), abs=1e-8)


@pytest.mark.parametrize(("lon", "lat", "blon", "blat"), GCJ_BD)
def test_gcj02_to_bd09_matches_reference(lon, lat, blon, blat):
    assert crs.gcj02_to_bd09(lon, lat) == pytest.approx((blon, blat), abs=1e-9)


@pytest.mark.parametrize(("lon", "lat", "glon", "glat"), BD_GCJ)
def test_bd09_to_gcj02_matches_reference(lon, lat, glon, glat):
    assert crs.bd09_to_gcj02(lon, lat) == pytest.approx((glon, glat), abs=1e-9)


@given(
    st.floats(min_value=113.7, max_value=114.7),
    st.floats(min_value=22.4, max_value=22.9),
)
def test_round_trips_stay_within_ten_centimetres(lon, lat):
    # 1e-6 degrees is about 0.1 m at Shenzhen's latitude.
    assert crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat)) == pytest.approx((lon, lat), abs=1e-8)
    assert crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat)) == pytest.approx((lon, lat), abs=1e-6)


def test_offset_in_shenzhen_is_the_documented_500_to_600_metres():
    glon, glat = crs.wgs84_to_gcj02(114.03, 22.69)
    assert 0.0045 < glon - 114.03 < 0.0055
    assert -0.0032 < glat - 22.69 < -0.0024


def test_outside_china_is_left_unchanged():
    assert crs.wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert crs.gcj02_to_wgs84(-74.0, 40.7) == (-74.0, 40.7)


def test_shared_longhua_outline_converts_to_the_derived_wgs84_file_within_two_metres():
    """The shared data has the DataV outline in GCJ-02 and a WGS-84 file derived from it."""
    raw = json.loads((TEST_DATA / "longhua_440309_datav_gcj02.json").read_text("utf-8"))
    derived = json.loads((PROJECT_DATA / "longhua_440309_wgs84_derived.geojson").read_text("utf-8"))
    gcj = np.array(raw[0]["geometry"]["coordinates"][0][0], dtype=float)
    wgs = np.array(derived["features"][0]["geometry"]["coordinates"][0][0], dtype=float)
    assert gcj.shape == wgs.shape
    lon, lat = crs.gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    # 2e-5 degrees ≈ 2 m: the derived file was made with "≈1 m" accuracy.
    assert np.max(np.abs(lon - wgs[:, 0])) < 2e-5
    assert np.max(np.abs(lat - wgs[:, 1])) < 2e-5


def test_arrays_and_scalars_give_the_same_answer():
    lons = np.array([114.01, 114.05, 114.09])
    lats = np.array([22.62, 22.69, 22.75])
    alon, alat = crs.gcj02_to_wgs84(lons, lats)
    for i in range(3):
        assert (alon[i], alat[i]) == pytest.approx(crs.gcj02_to_wgs84(lons[i], lats[i]), abs=1e-12)


def test_utm_zone_for_shenzhen_is_50_north():
    assert crs.utm_srid_for(114.03, 22.69) == 32650
