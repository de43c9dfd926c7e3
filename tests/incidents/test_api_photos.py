"""Photos over HTTP: multipart reports and feed-backs, a bad photo refused naming `photos` with
nothing stored (no case, step, audit entry, event or file), the size caps (413), scoped serving
of the display copy and the original, and Idempotency-Key over multipart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.test import Client

from audit.models import AuditEntry
from incidents.models import Incident, IncidentPhoto, IncidentStatus, IncidentTransition
from incidents.services import incident_accept, incident_dispatch, incident_register
from realtime.models import OutboxEvent
from tests.incidents import photos as img
from tests.incidents.api import LIST, action_url, client_for, detail_url, report_body
from tests.incidents.cases import report

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _state(media: Path) -> tuple[int, int, int, int, int, int]:
    """Everything a refused request must leave as it was."""
    return (
        Incident.objects.count(),
        IncidentTransition.objects.count(),
        IncidentPhoto.objects.count(),
        # Signing the test's clients in is audited too; the refused request adds nothing else.
        AuditEntry.objects.exclude(action="accounts.sign_in").count(),
        OutboxEvent.objects.count(),
        len(img.stored_files(media)),
    )


def _post_report(client, photos, key: str | None = None, language: str = "", **fields):
    body = {**report_body(), **fields, "photos": photos}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    if language:
        headers["HTTP_ACCEPT_LANGUAGE"] = language
    return client.post(LIST, body, format="multipart", **headers)


def _feed_back_ready(cast):
    """A case dispatched to 城管 and accepted by cast.handler."""
    incident = report(reporter=cast.grid_worker)
    incident_register(incident=incident, by=cast.community)
    incident_dispatch(incident=incident, by=cast.street, department_code="CGJ")
    return incident_accept(incident=incident, by=cast.handler)


def test_a_report_with_photos_is_one_case_with_its_before_photos(cast, media):
    first, second = img.jpeg(), img.png(alpha=True)

    response = _post_report(
        client_for(cast.grid_worker),
        [img.upload(first, "IMG_0001.jpg"), img.upload(second, "IMG_0002.png")],
        description="路边堆放垃圾",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["description"] == "路边堆放垃圾" and body["channel"] == "grid_worker"
    photos = body["photos"]
    assert [photo["kind"] for photo in photos] == ["before", "before"]
    assert [photo["sha256"] for photo in photos] == [
        hashlib.sha256(first).hexdigest(),
        hashlib.sha256(second).hexdigest(),
    ]
    number = body["number"]
    assert photos[0]["url"] == f"/api/v1/incidents/{number}/photos/{photos[0]['id']}/"
    assert photos[0]["original_url"] == photos[0]["url"] + "original/"  # the uploader's own
    assert (photos[0]["width"], photos[0]["height"]) == (800, 600)
    assert "/media/" not in str(body)
    # One case, one report step; two photos, each with its audit entry and event.
    incident = Incident.objects.get(number=number)
    assert incident.photos.count() == 2
    assert len(img.stored_files(media)) == 4
    assert AuditEntry.objects.filter(action="incidents.incident_photo_add").count() == 2
    assert OutboxEvent.objects.filter(type="incidents.photo_added").count() == 2
    # The detail lists them too.
    detail = client_for(cast.street).get(detail_url(number)).json()
    assert [photo["id"] for photo in detail["photos"]] == [photo["id"] for photo in photos]


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (img.TEXT, "IMG_0002.jpg", "不是 JPEG、PNG 或 WebP 图片"),
        (img.gif(), "IMG_0002.gif", "不是 JPEG、PNG 或 WebP 图片"),
        (img.SVG, "IMG_0002.svg", "不是 JPEG、PNG 或 WebP 图片"),
        (img.truncated_jpeg(), "IMG_0002.jpg", "不完整或已损坏"),
        (img.pixel_bomb(), "IMG_0002.png", "像素，最多 40,000,000 像素。"),
    ],
    ids=["text-named-jpg", "gif", "svg", "truncated", "pixel-bomb"],
)
def test_a_bad_photo_refuses_the_whole_report_and_stores_nothing(cast, media, data, name, reason):
    before = _state(media)

    response = _post_report(
        client_for(cast.grid_worker),
        [img.upload(img.jpeg(), "IMG_0001.jpg"), img.upload(data, name)],
    )

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["photos"]
    assert body["photos"][0].startswith(f"第 2 张照片（“{name}”）")
    assert reason in body["photos"][0]
    assert _state(media) == before


def test_a_photo_over_ten_megabytes_is_413_naming_photos_and_nothing_is_stored(cast, media):
    before = _state(media)
    big = img.jpeg((64, 48)) + b"\x00" * (10 * 1024 * 1024 + 1)  # a 10 MB+ body

    response = _post_report(client_for(cast.grid_worker), [img.upload(big, "huge.jpg")])
    in_english = _post_report(
        client_for(cast.grid_worker), [img.upload(big, "huge.jpg")], language="en"
    )

    assert response.status_code == 413
    assert response.json() == {"photos": ["第 1 张照片（“huge.jpg”）超过照片的上限 10 MiB。"]}
    assert in_english.status_code == 413
    assert in_english.json() == {
        "photos": ["Photo 1 (“huge.jpg”) is larger than 10 MiB, the most a photo may be."]
    }
    assert _state(media) == before


def test_a_request_longer_than_its_photos_may_be_is_413_before_it_is_read(cast, media, settings):
    settings.CITYOPS_PHOTO_MAX_BYTES = 20_000
    settings.CITYOPS_PHOTO_MAX_PER_REQUEST = 2
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = _state(media)

    response = _post_report(
        client_for(cast.grid_worker),
        [img.upload(b"\xff\xd8" + b"\x00" * 60_000, "a.jpg")],
        language="en",
    )

    assert response.status_code == 413
    (reason,) = response.json()["photos"]
    assert "at most 48.8 KiB (2 photos of at most 19.5 KiB each, and the other fields)" in reason
    assert _state(media) == before


def test_more_photos_than_allowed_is_400_naming_photos(cast, media, settings):
    settings.CITYOPS_PHOTO_MAX_PER_REQUEST = 2
    before = _state(media)
    uploads = [img.upload(img.jpeg((64, 48)), f"p{index}.jpg") for index in range(3)]

    response = _post_report(client_for(cast.grid_worker), uploads)

    assert response.status_code == 400
    assert response.json() == {"photos": ["收到的文件超过 2 个，每次请求最多 2 张照片。"]}
    assert _state(media) == before


def test_photos_in_a_json_body_are_refused(cast, media):
    response = client_for(cast.grid_worker).post(
        LIST, {**report_body(), "photos": ["aGVsbG8="]}, format="json"
    )

    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["photos"][0]
    assert Incident.objects.count() == 0


def test_a_report_refused_for_another_reason_leaves_no_photo_behind(cast, media):
    before = _state(media)

    response = _post_report(
        client_for(cast.grid_worker), [img.upload(img.jpeg())], lon="200", lat="22.6"
    )

    assert response.status_code == 400 and "lon" in response.json()
    assert _state(media) == before


def test_feed_back_with_after_photos(cast, media):
    incident = _feed_back_ready(cast)

    response = client_for(cast.handler).post(
        action_url(incident.number, "feed-back"),
        {"feedback": "垃圾已清运", "photos": [img.upload(img.webp(), "after.webp")]},
        format="multipart",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == IncidentStatus.FED_BACK and body["feedback"] == "垃圾已清运"
    (photo,) = body["photos"]
    assert photo["kind"] == "after"
    assert photo["original_url"]  # the uploader's own
    assert IncidentPhoto.objects.get(pk=photo["id"]).uploaded_by == cast.handler
    # Another handler of the department sees the case and the display copy, not the original.
    (seen,) = client_for(cast.handler_2).get(detail_url(incident.number)).json()["photos"]
    assert seen["url"] == photo["url"] and seen["original_url"] is None
    assert client_for(cast.handler_2).get(photo["url"]).status_code == 200
    assert client_for(cast.handler_2).get(photo["url"] + "original/").status_code == 403


def test_a_bad_after_photo_leaves_the_case_as_it_was(cast, media):
    incident = _feed_back_ready(cast)
    before = _state(media)

    response = client_for(cast.handler).post(
        action_url(incident.number, "feed-back"),
        {"feedback": "垃圾已清运", "photos": [img.upload(img.gif(), "after.jpg")]},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["photos"][0].startswith("第 1 张照片（“after.jpg”）不是 JPEG")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACCEPTED and incident.feedback == ""
    assert _state(media) == before


def test_other_actions_take_json_only(cast, media):
    incident = report(reporter=cast.grid_worker)

    response = client_for(cast.community).post(
        action_url(incident.number, "register"),
        {"note": "属实", "photos": [img.upload(img.jpeg())]},
        format="multipart",
    )

    assert response.status_code == 415
    assert IncidentPhoto.objects.count() == 0


def _reported_with_photo(cast, media) -> tuple[str, dict, bytes]:
    original = img.jpeg(gps=True)
    body = _post_report(client_for(cast.grid_worker), [img.upload(original)]).json()
    return body["number"], body["photos"][0], original


def test_the_display_copy_is_served_to_whoever_sees_the_case(cast, media):
    _number, photo, original = _reported_with_photo(cast, media)

    for user in (cast.grid_worker, cast.community, cast.street, cast.district, cast.auditor):
        response = client_for(user).get(photo["url"], HTTP_ACCEPT="image/webp,image/*")
        assert response.status_code == 200, user.role
        assert response["Content-Type"] == "image/jpeg"
        assert response["Cache-Control"] == "private, max-age=3600"
        data = b"".join(response.streaming_content)
        assert data != original
        assert len(img.decode(data).getexif()) == 0


def test_the_original_is_the_evidence_bytes_for_the_hierarchy_auditors_and_the_uploader(
    cast, media
):
    _number, photo, original = _reported_with_photo(cast, media)
    url = photo["original_url"]

    for user in (cast.grid_worker, cast.community, cast.street, cast.district, cast.auditor):
        response = client_for(user).get(url)
        assert response.status_code == 200, user.role
        data = b"".join(response.streaming_content)
        assert data == original
        assert hashlib.sha256(data).hexdigest() == photo["sha256"]
        assert response["ETag"] == f'"{photo["sha256"]}"'
        assert response["Content-Disposition"].startswith("attachment")
    # A grid worker of the same cell who did not take it sees the case, not the original.
    assert client_for(cast.grid_worker_2).get(photo["url"]).status_code == 200
    refused = client_for(cast.grid_worker_2).get(url)
    assert refused.status_code == 403 and "请使用展示图" in refused.json()["detail"]


def test_a_photo_of_a_case_you_may_not_see_is_404(cast, media):
    number, photo, _original = _reported_with_photo(cast, media)

    for outsider in (cast.other_street, cast.other_community, cast.other_department):
        for url in (photo["url"], photo["original_url"]):
            response = client_for(outsider).get(url)
            assert response.status_code == 404, (outsider.role, url)
            assert response.json() == {"detail": f"案件 {number} 没有编号为 {photo['id']} 的照片。"}
    # Another case's number with this photo's id: 404 too.
    other = report(reporter=cast.grid_worker)
    assert (
        client_for(cast.district).get(photo["url"].replace(number, other.number)).status_code == 404
    )
    # Not signed in.
    assert client_for(None).get(photo["url"]).status_code == 403


def test_photos_are_not_served_from_media(cast, media):
    _number, photo, _original = _reported_with_photo(cast, media)
    stored = IncidentPhoto.objects.get(pk=photo["id"])

    for name in (stored.display.name, stored.original.name):
        assert (media / name).is_file()
        client = Client()
        client.force_login(cast.district)
        assert client.get(f"/media/{name}").status_code == 404


def test_a_multipart_retry_with_the_same_key_gets_the_first_answer(cast, media):
    client = client_for(cast.grid_worker)
    photo_bytes = img.jpeg()

    first = _post_report(client, [img.upload(photo_bytes, "a.jpg")], key="photo-key-1")
    # The phone retries with the same photo (even if its file name changed on the way).
    again = _post_report(client, [img.upload(photo_bytes, "a (1).jpg")], key="photo-key-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 1
    assert IncidentPhoto.objects.count() == 1
    assert len(img.stored_files(media)) == 2


def test_the_same_key_with_other_photo_bytes_is_422(cast, media):
    client = client_for(cast.grid_worker)
    _post_report(client, [img.upload(img.jpeg((64, 48)))], key="photo-key-2")

    other = _post_report(client, [img.upload(img.jpeg((64, 48)))], key="photo-key-2")

    assert other.status_code == 422
    assert Incident.objects.count() == 1
    assert len(img.stored_files(media)) == 2


def test_a_refused_multipart_request_is_replayed_with_its_key(cast, media):
    client = client_for(cast.grid_worker)
    bad = img.truncated_jpeg()

    first = _post_report(client, [img.upload(bad, "x.jpg")], key="photo-key-3")
    again = _post_report(client, [img.upload(bad, "x.jpg")], key="photo-key-3")

    assert first.status_code == again.status_code == 400
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 0 and img.stored_files(media) == []


def test_the_incident_admin_shows_the_photos_through_the_scoped_urls(cast, media):
    _number, photo, _original = _reported_with_photo(cast, media)
    incident = IncidentPhoto.objects.get(pk=photo["id"]).incident
    cast.admin.is_staff = cast.admin.is_superuser = True
    cast.admin.save()
    client = Client()
    client.force_login(cast.admin)

    page = client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()

    assert f'src="{photo["url"]}"' in page
    assert f'href="{photo["original_url"]}"' in page
    assert photo["sha256"] in page
    assert "/media/" not in page
    assert client.get(photo["url"]).status_code == 200
