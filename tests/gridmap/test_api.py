"""HTTP API of the geography: /api/v1/locate, /api/v1/regions/, the OpenAPI schema and docs."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def test_locate_returns_the_full_path(api):
    response = api.get("/api/v1/locate", {"lon": "114.0305", "lat": "22.6696"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"district", "street", "community", "grid", "generation", "on_border"}
    assert body["district"] == {"code": "440309", "name": "龙华区"}
    assert body["street"]["code"] == "440309001"
    assert body["street"]["name"] == "龙华街道"
    assert body["community"]["code"].startswith("440309001")
    assert len(body["grid"]["code"]) == 15
    assert body["grid"]["code"].startswith(body["community"]["code"])
    assert body["on_border"] is False
    assert body["generation"] == 1


def test_locate_accepts_gcj02(api):
    from gridmap.crs import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(114.0305, 22.6696)
    wgs = api.get("/api/v1/locate", {"lon": "114.0305", "lat": "22.6696"}).json()
    gcj = api.get("/api/v1/locate", {"lon": glon, "lat": glat, "crs": "gcj02"}).json()
    assert gcj["grid"] == wgs["grid"]


def test_outside_the_jurisdiction_is_404_with_the_distance(api):
    response = api.get("/api/v1/locate", {"lon": "114.0579", "lat": "22.5431"})
    assert response.status_code == 404
    assert response.json()["distance_m"] > 2000
    assert response.json()["detail"] == "不在辖区内。"
    english = api.get(
        "/api/v1/locate", {"lon": "114.0579", "lat": "22.5431"}, headers={"accept-language": "en"}
    )
    assert english.json()["detail"] == "Outside the jurisdiction."
    assert english.json()["distance_m"] == response.json()["distance_m"]


@pytest.mark.parametrize(
    ("params", "field", "chinese", "english"),
    [
        ({"lon": "114.0"}, "lat", "不能为空。", "This field is required."),
        ({"lon": "east", "lat": "22.6"}, "lon", "“east”不是数字。", "“east” is not a number."),
        (
            {"lon": "114.0305", "lat": "22.6696", "crs": "mercator"},
            "crs",
            "“mercator”不在可选范围内（wgs84, gcj02, bd09）。",
            "“mercator” is not one of wgs84, gcj02, bd09.",
        ),
    ],
)
def test_a_locate_refusal_reads_in_chinese_by_default_and_in_english_on_request(
    api, params, field, chinese, english
):
    assert api.get("/api/v1/locate", params).json() == {field: [chinese]}
    response = api.get("/api/v1/locate", params, headers={"accept-language": "en"})
    assert response.status_code == 400
    assert response.json() == {field: [english]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": "22.6"}, "lon"),
        ({"lon": "114.0"}, "lat"),
        ({"lon": "nan", "lat": "22.6"}, "lon"),
        ({"lon": "114.0", "lat": "Infinity"}, "lat"),
        ({"lon": "1e400", "lat": "22.6"}, "lon"),
        ({"lon": "east", "lat": "22.6"}, "lon"),
        ({"lon": "22.6696", "lat": "114.0305"}, "lat"),
        ({"lon": "114.0305", "lat": "22.6696", "crs": "mercator"}, "crs"),
    ],
)
def test_bad_locate_input_is_400_naming_the_parameter(api, params, field):
    response = api.get("/api/v1/locate", params)
    assert response.status_code == 400
    assert field in response.json()
    assert response.json()[field][0]


def test_regions_list_is_geojson_filtered_by_level_and_parent(api):
    streets = api.get("/api/v1/regions/", {"level": "street"}).json()
    assert streets["type"] == "FeatureCollection"
    assert streets["synthetic"] is True
    assert len(streets["features"]) == 6
    names = {f["properties"]["name"] for f in streets["features"]}
    assert names == {"龙华街道", "大浪街道", "民治街道", "观澜街道", "观湖街道", "福城街道"}
    feature = streets["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["parent"] == "440309"

    communities = api.get("/api/v1/regions/", {"level": "community", "parent": "440309005"})
    body = communities.json()
    assert communities.status_code == 200
    assert {f["properties"]["parent"] for f in body["features"]} == {"440309005"}
    assert len(body["features"]) == 6  # 观湖街道's communities named by two or more sources


def test_regions_list_rejects_an_unknown_level(api):
    response = api.get("/api/v1/regions/", {"level": "province"})
    assert response.status_code == 400
    assert response.json() == {
        "level": ["“province”不在可选范围内（district, street, community, grid）。"]
    }
    response = api.get("/api/v1/regions/", {"parent": "4403x"}, headers={"accept-language": "en"})
    assert response.json() == {"parent": ["A region code is digits only."]}


def test_region_detail_has_the_path(api):
    response = api.get("/api/v1/regions/440309001001001/")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "Feature"
    path = body["properties"]["path"]
    assert path["street"]["code"] == "440309001"
    assert path["community"]["code"] == "440309001001"
    assert path["grid"]["code"] == "440309001001001"


def test_unknown_region_and_generation_are_404(api):
    response = api.get("/api/v1/regions/440309999/")
    assert response.status_code == 404
    assert response.json() == {"detail": "第 1 版边界中没有代码为 440309999 的区域。"}
    response = api.get("/api/v1/regions/440309999/", headers={"accept-language": "en"})
    assert response.json() == {"detail": "No region 440309999 in generation 1."}
    response = api.get("/api/v1/regions/", {"generation": "77"})
    assert response.status_code == 404
    assert response.json() == {"generation": ["没有第 77 版边界。"]}
    response = api.get("/api/v1/regions/", {"generation": "v2"}, headers={"accept-language": "en"})
    assert response.status_code == 400
    assert response.json() == {"generation": ["“v2” is not a generation number."]}


def test_openapi_schema_describes_the_geography_endpoints(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/locate" in schema["paths"]
    assert "/api/v1/regions/" in schema["paths"]
    assert "/api/v1/regions/{code}/" in schema["paths"]


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html
