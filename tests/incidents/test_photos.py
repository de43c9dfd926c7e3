"""incidents.services.photos: what is accepted (by the bytes), the display copy (upright, no
metadata, at most 1920 px), the untouched original with its SHA-256, and nothing stored —
no row, file, audit entry or event — for a refused photo or a rolled-back transaction."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import translation

from audit.models import AuditEntry
from incidents.events import incident_scopes
from incidents.models import IncidentPhoto, PhotoKind
from incidents.services import IncidentInputError
from incidents.services.photos import (
    PHOTO_ADDED,
    PhotoRejected,
    PhotoTooLarge,
    incident_photo_add,
    photo_check,
    photos_check,
    photos_discard_uncommitted,
)
from incidents.workflow import ActionNotPermitted
from realtime.models import OutboxEvent
from tests.incidents import photos as img
from tests.incidents.cases import event_scopes, report

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _photo_audits() -> int:
    return AuditEntry.objects.filter(object_type="incidents.incidentphoto").count()


def _photo_events() -> int:
    return OutboxEvent.objects.filter(type=PHOTO_ADDED).count()


@pytest.mark.parametrize(
    ("data", "fmt", "display_format"),
    [
        (img.jpeg(), "JPEG", "JPEG"),
        (img.png(), "PNG", "JPEG"),
        (img.png(alpha=True), "PNG", "WEBP"),  # transparency kept
        (img.webp(), "WEBP", "JPEG"),
    ],
    ids=["jpeg", "png", "png-with-alpha", "webp"],
)
def test_jpeg_png_and_webp_are_stored_as_original_and_display_copy(
    cast, media, data, fmt, display_format
):
    incident = report(reporter=cast.grid_worker)

    photo = incident_photo_add(
        incident=incident, kind=PhotoKind.BEFORE, upload=img.upload(data), by=cast.grid_worker
    )

    photo.refresh_from_db()
    assert photo.original_format == fmt
    assert photo.original_bytes == len(data)
    assert photo.original.read() == data  # the evidence, byte for byte
    assert photo.original_sha256 == hashlib.sha256(data).hexdigest()
    shown = img.decode(photo.display.read())
    assert shown.format == display_format
    assert (shown.width, shown.height) == (photo.width, photo.height)
    assert photo.uploaded_by == cast.grid_worker
    # Stored under fresh names, never the client's: evidence/… and photos/…
    assert photo.original.name.startswith("evidence/")
    assert photo.display.name.startswith("photos/")
    assert len(img.stored_files(media)) == 2


def test_the_display_copy_loses_exif_and_gps_and_stands_upright(cast, media):
    # 800×600 pixels stored sideways: EXIF orientation 6 says "rotate 90° clockwise to view".
    data = img.jpeg((800, 600), gps=True, orientation=6)
    assert img.decode(data).getexif().get_ifd(img.GPS_IFD)  # the phone's position is in there
    incident = report(reporter=cast.grid_worker)

    photo = incident_photo_add(
        incident=incident, kind=PhotoKind.BEFORE, upload=img.upload(data), by=cast.grid_worker
    )

    display_bytes = photo.display.read()
    shown = img.decode(display_bytes)
    assert (shown.width, shown.height) == (600, 800)  # upright
    assert len(shown.getexif()) == 0
    assert "exif" not in shown.info and "icc_profile" not in shown.info and "xmp" not in shown.info
    assert b"Exif\x00\x00" not in display_bytes
    # The original keeps everything, GPS included: it is the evidence.
    original = img.decode(photo.original.read())
    assert original.getexif().get_ifd(img.GPS_IFD)
    assert original.getexif()[img.ORIENTATION] == 6


def test_the_display_copy_is_at_most_1920_pixels_on_its_long_side(cast, media):
    checked = photo_check(img.upload(img.png((4000, 1000)), "wide.png"))

    assert (checked.width, checked.height) == (1920, 480)
    assert img.decode(checked.display).size == (1920, 480)


def test_a_small_photo_is_not_enlarged(cast, media):
    checked = photo_check(img.upload(img.jpeg((320, 200))))

    assert (checked.width, checked.height) == (320, 200)


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (img.gif(), "cat.gif", "不是 JPEG、PNG 或 WebP 图片"),
        (img.gif(), "renamed.jpg", "不是 JPEG、PNG 或 WebP 图片"),
        (img.SVG, "logo.svg", "不是 JPEG、PNG 或 WebP 图片"),
        (img.TEXT, "notes.jpg", "不是 JPEG、PNG 或 WebP 图片"),
        (img.truncated_jpeg(), "cut.jpg", "不完整或已损坏"),
        (img.pixel_bomb(), "bomb.png", "48,000,000 像素，最多 40,000,000 像素。"),
        (b"", "empty.jpg", "是空文件。"),
    ],
    ids=["gif", "gif-named-jpg", "svg", "text-named-jpg", "truncated", "pixel-bomb", "empty"],
)
def test_what_is_not_a_whole_jpeg_png_or_webp_is_refused_and_nothing_stored(
    cast, media, data, name, reason
):
    incident = report(reporter=cast.grid_worker)

    with pytest.raises(PhotoRejected) as refused:
        incident_photo_add(
            incident=incident,
            kind=PhotoKind.BEFORE,
            upload=img.upload(data, name),
            by=cast.grid_worker,
        )

    assert refused.value.field == "photos"
    assert reason in refused.value.reason
    assert IncidentPhoto.objects.count() == 0
    assert (_photo_audits(), _photo_events()) == (0, 0)
    assert img.stored_files(media) == []


def test_a_file_over_the_byte_cap_is_refused_before_it_is_decoded(cast, media, settings):
    settings.CITYOPS_PHOTO_MAX_BYTES = 50_000
    data = img.jpeg((1200, 900), quality=95)
    assert len(data) > 50_000

    with pytest.raises(PhotoTooLarge) as refused:
        photo_check(img.upload(data, "big.jpg"), label="第 1 张照片（“big.jpg”）")

    assert refused.value.reason.startswith("第 1 张照片（“big.jpg”）")
    assert "48.8 KiB" in refused.value.reason


def test_the_pixel_cap_comes_from_the_settings(cast, media, settings):
    settings.CITYOPS_PHOTO_MAX_PIXELS = 100_000
    with pytest.raises(PhotoRejected, match="最多 100,000 像素"):
        photo_check(img.upload(img.png((400, 300))))
    settings.CITYOPS_PHOTO_MAX_PIXELS = 120_000
    assert photo_check(img.upload(img.png((400, 300)))).width == 400


def test_more_photos_than_a_request_may_carry_are_refused(cast, media, settings):
    settings.CITYOPS_PHOTO_MAX_PER_REQUEST = 2
    uploads = [img.upload(img.jpeg((64, 48)), f"p{i}.jpg") for i in range(3)]

    with pytest.raises(PhotoRejected, match="收到 3 张照片，每次请求最多 2 张。"):
        photos_check(uploads)


def test_the_bad_photo_is_named_by_its_place_and_file_name(cast, media):
    uploads = [img.upload(img.jpeg((64, 48)), "ok.jpg"), img.upload(img.TEXT, "IMG_0002.jpg")]

    with pytest.raises(PhotoRejected) as refused:
        photos_check(uploads)

    assert refused.value.reason.startswith("第 2 张照片（“IMG_0002.jpg”）不是 JPEG")


def test_a_refused_photo_reads_in_english_when_english_is_active(cast, media):
    uploads = [img.upload(img.jpeg((64, 48)), "ok.jpg"), img.upload(img.TEXT, "IMG_0002.jpg")]

    with translation.override("en"), pytest.raises(PhotoRejected) as refused:
        photos_check(uploads)

    assert refused.value.reason == (
        "Photo 2 (“IMG_0002.jpg”) is not a JPEG, PNG or WebP image (judged by its content, "
        "not its name)."
    )


def test_adding_a_photo_is_audited_and_announced_without_personal_data(cast, media):
    incident = report(
        reporter=cast.grid_worker, reporter_phone="13812341234", description="张三家门口"
    )

    photo = incident_photo_add(
        incident=incident,
        kind=PhotoKind.BEFORE,
        upload=img.upload(img.jpeg()),
        by=cast.grid_worker,
        ip="10.0.0.7",
    )

    entry = AuditEntry.objects.get(object_type="incidents.incidentphoto", object_id=str(photo.pk))
    assert entry.action == "incidents.incident_photo_add"
    assert entry.after["sha256"] == photo.original_sha256
    assert entry.after["incident"] == incident.number
    event = OutboxEvent.objects.get(type=PHOTO_ADDED)
    assert event_scopes(event) == set(incident_scopes(incident))
    assert event.payload["photo"]["id"] == photo.pk
    assert event.payload["photo"]["kind"] == "before"
    text = str(event.payload)
    for private in ("13812341234", "张三", cast.grid_worker.username, "evidence/"):
        assert private not in text


def test_a_rolled_back_transaction_leaves_no_files(cast, media):
    incident = report(reporter=cast.grid_worker)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        incident_photo_add(
            incident=incident,
            kind=PhotoKind.BEFORE,
            upload=img.upload(img.jpeg()),
            by=cast.grid_worker,
        )
        assert len(img.stored_files(media)) == 2  # written inside the transaction
        raise Boom

    assert IncidentPhoto.objects.count() == 0
    assert photos_discard_uncommitted() == 2  # (also run at the end of every request)
    assert img.stored_files(media) == []


def test_the_files_of_a_photo_whose_transaction_went_through_are_kept(cast, media):
    incident = report(reporter=cast.grid_worker)
    with transaction.atomic():
        kept = incident_photo_add(
            incident=incident,
            kind=PhotoKind.BEFORE,
            upload=img.upload(img.jpeg()),
            by=cast.grid_worker,
        )
    with pytest.raises(RuntimeError), transaction.atomic():
        incident_photo_add(
            incident=incident,
            kind=PhotoKind.BEFORE,
            upload=img.upload(img.png()),
            by=cast.grid_worker,
        )
        raise RuntimeError

    assert photos_discard_uncommitted() == 2
    assert [path.name for path in img.stored_files(media)] == sorted(
        Path(name).name for name in (kept.original.name, kept.display.name)
    )


def test_only_users_who_may_see_the_case_add_photos(cast, media):
    incident = report(reporter=cast.grid_worker)

    for outsider in (cast.other_street, cast.auditor, cast.no_role, cast.other_department):
        with pytest.raises(ActionNotPermitted) as refused:
            incident_photo_add(
                incident=incident,
                kind=PhotoKind.BEFORE,
                upload=img.upload(img.jpeg((64, 48))),
                by=outsider,
            )
        assert refused.value.action == "add_photo"
    with pytest.raises(IncidentInputError) as refused:
        incident_photo_add(
            incident=incident, kind="during", upload=img.upload(img.jpeg()), by=cast.street
        )
    assert refused.value.field == "kind"

    assert incident_photo_add(
        incident=incident, kind=PhotoKind.BEFORE, upload=img.upload(img.jpeg()), by=cast.street
    ).pk
    assert IncidentPhoto.objects.count() == 1
    assert len(img.stored_files(media)) == 2


def test_the_end_of_a_request_deletes_the_files_of_a_rolled_back_photo(cast, media):
    from tests.incidents.api import client_for, detail_url

    incident = report(reporter=cast.grid_worker)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        incident_photo_add(
            incident=incident,
            kind=PhotoKind.BEFORE,
            upload=img.upload(img.jpeg()),
            by=cast.grid_worker,
        )
        1 / 0  # noqa: B018
    assert len(img.stored_files(media)) == 2

    assert client_for(cast.street).get(detail_url(incident.number)).status_code == 200

    assert img.stored_files(media) == []


def test_a_commit_hook_that_fails_never_costs_a_committed_photo_its_files(
    committed_demo_geography, reference_data, cast, media
):
    # Really committed (transactional test): a hook registered before the photo's own raises,
    # so Django never runs the photo's commit mark. The files must stay: the row exists.
    import gc

    incident = report(reporter=cast.grid_worker)

    def broken_hook() -> None:
        raise RuntimeError("a commit hook failed")

    try:
        with transaction.atomic():
            transaction.on_commit(broken_hook)
            photo = incident_photo_add(
                incident=incident,
                kind=PhotoKind.BEFORE,
                upload=img.upload(img.jpeg()),
                by=cast.grid_worker,
            )
    except RuntimeError:
        pass
    gc.collect()

    assert IncidentPhoto.objects.filter(pk=photo.pk).exists()  # committed
    assert photos_discard_uncommitted() == 0
    assert len(img.stored_files(media)) == 2
