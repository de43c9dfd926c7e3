"""incidents.services.photos.photos_sweep_orphans and manage.py incidents_sweep_photos: photo
files no row refers to (a process killed between writing them and committing) are deleted once
older than the limit; a photo's files, young files and everything outside evidence/ and photos/
are left alone. Real files in a temporary MEDIA_ROOT, real rows from the real service."""

from __future__ import annotations

import io
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import IncidentPhoto, PhotoKind
from incidents.services.photos import (
    SweepResult,
    incident_photo_add,
    photo_directories,
    photos_sweep_orphans,
)
from tests.incidents import photos as img
from tests.incidents.cases import report

pytestmark = pytest.mark.usefixtures("reference_data")

DAY = timedelta(hours=24)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _age(media: Path, name: str, hours: float) -> None:
    """Set a stored file's modification time `hours` in the past."""
    moment = time.time() - hours * 3600
    os.utime(media / name, (moment, moment))


def _left_behind(media: Path, name: str, data: bytes, *, hours: float) -> str:
    """A file written the way incident_photo_add writes one, by a process that then died before
    committing: in the storage, no row refers to it. Returns its storage name."""
    stored = default_storage.save(name, ContentFile(data))
    _age(media, stored, hours)
    return stored


def _photo(cast, media: Path, *, hours: float) -> IncidentPhoto:
    """A photo stored through the service, its files last modified `hours` ago."""
    incident = report(reporter=cast.grid_worker)
    photo = incident_photo_add(
        incident=incident,
        kind=PhotoKind.BEFORE,
        upload=img.upload(img.jpeg((320, 240))),
        by=cast.grid_worker,
    )
    for name in (photo.original.name, photo.display.name):
        _age(media, name, hours)
    return photo


def test_the_swept_directories_are_those_the_photo_fields_write_into():
    assert photo_directories() == ("evidence", "photos")


def test_a_stored_photos_files_are_kept_however_old(cast, media):
    photo = _photo(cast, media, hours=24 * 400)

    result = photos_sweep_orphans(older_than=DAY)

    assert result == SweepResult(seen=2, referenced=2)
    assert (media / photo.original.name).read_bytes() == photo.original.read()
    assert (media / photo.display.name).exists()


def test_an_orphan_older_than_the_limit_is_deleted_and_logged(cast, media, caplog):
    photo = _photo(cast, media, hours=48)
    original = img.jpeg((200, 100))
    display = img.jpeg((100, 50), gps=False)
    orphans = [
        _left_behind(media, "evidence/2025/03/0f1e2d3c.jpg", original, hours=25),
        _left_behind(media, "photos/2025/03/0f1e2d3c.jpg", display, hours=25),
    ]
    caplog.set_level(logging.INFO, logger="incidents.services.photos")

    result = photos_sweep_orphans(older_than=DAY)

    assert result == SweepResult(
        seen=4, referenced=2, deleted=2, bytes_freed=len(original) + len(display)
    )
    assert not any((media / name).exists() for name in orphans)
    assert (media / photo.original.name).exists() and (media / photo.display.name).exists()
    deleted_lines = [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "deleted" in r.msg
    ]
    for name in orphans:
        assert any(name in line for line in deleted_lines), (name, deleted_lines)
    # Housekeeping of files, not of a case: the photo row is untouched.
    assert IncidentPhoto.objects.filter(pk=photo.pk).exists()


def test_an_orphan_younger_than_the_limit_is_kept(media):
    # Files of a photo being stored right now look exactly like this: written, no row yet.
    young = _left_behind(media, "evidence/2025/03/being-written.jpg", img.jpeg(), hours=23)
    fresh = default_storage.save("photos/2025/03/being-written.jpg", ContentFile(b"x" * 10))

    result = photos_sweep_orphans(older_than=DAY)

    assert result == SweepResult(seen=2, too_new=2)
    assert (media / young).exists() and (media / fresh).exists()


def test_files_outside_the_photo_directories_are_never_touched(media):
    outside = [
        "old.jpg",
        "exports/2024/01/report.csv",
        "evidence-old/2024/01/a.jpg",  # starts like evidence/ but is not in it
        "photosbackup/a.jpg",
        "var/evidence/a.jpg",
    ]
    for name in outside:
        _left_behind(media, name, b"not a photo of any case", hours=24 * 1000)
    inside = _left_behind(media, "evidence/a.jpg", img.jpeg(), hours=24 * 1000)

    result = photos_sweep_orphans(older_than=DAY)

    assert result.seen == 1 and result.deleted == 1
    assert not (media / inside).exists()
    for name in outside:
        assert (media / name).read_bytes() == b"not a photo of any case"


def test_a_dry_run_deletes_nothing_and_reports_what_a_sweep_then_does(cast, media):
    photo = _photo(cast, media, hours=72)
    old = [
        _left_behind(media, f"evidence/2024/12/{n}.jpg", b"o" * (100 + n), hours=30)
        for n in range(3)
    ]
    young = _left_behind(media, "photos/2025/01/young.jpg", b"y" * 50, hours=2)
    before = img.stored_files(media)

    dry = photos_sweep_orphans(older_than=DAY, dry_run=True)

    assert img.stored_files(media) == before
    assert dry == SweepResult(
        dry_run=True, seen=6, referenced=2, too_new=1, deleted=3, bytes_freed=303
    )

    real = photos_sweep_orphans(older_than=DAY)

    assert real == SweepResult(seen=6, referenced=2, too_new=1, deleted=3, bytes_freed=303)
    assert not any((media / name).exists() for name in old)
    assert (media / young).exists()
    assert (media / photo.original.name).exists() and (media / photo.display.name).exists()


def test_references_are_looked_up_a_chunk_of_names_per_query(cast, media):
    photos = [_photo(cast, media, hours=48) for _ in range(2)]
    for n in range(5):
        _left_behind(media, f"photos/2024/06/orphan{n}.jpg", b"z", hours=48)
    # evidence/: 2 files → 1 query of 3; photos/: 2 + 5 files → 3 queries of 3, 3, 1.

    with CaptureQueriesContext(connection) as queries:
        result = photos_sweep_orphans(older_than=DAY, chunk=3)

    assert len(queries) == 4
    assert result == SweepResult(seen=9, referenced=4, deleted=5, bytes_freed=5)
    for photo in photos:
        assert (media / photo.original.name).exists() and (media / photo.display.name).exists()


def test_nothing_stored_yet_is_nothing_to_sweep(media):
    assert not media.exists()

    assert photos_sweep_orphans(older_than=DAY) == SweepResult()


def test_a_limit_under_an_hour_is_refused(media):
    doomed = _left_behind(media, "evidence/x.jpg", b"x", hours=24)

    with pytest.raises(ValueError, match="at least 1:00:00"):
        photos_sweep_orphans(older_than=timedelta(minutes=59))
    assert (media / doomed).exists()


def test_the_command_sweeps_and_prints_the_counts(cast, media):
    _photo(cast, media, hours=100)
    orphan = _left_behind(media, "evidence/2024/02/dead.jpg", b"d" * 2048, hours=50)
    young = _left_behind(media, "photos/2024/02/dead.jpg", b"d" * 10, hours=30)

    out = io.StringIO()
    call_command("incidents_sweep_photos", "--dry-run", stdout=out)
    assert out.getvalue() == (
        "incidents_sweep_photos (dry run): 4 file(s) under evidence/, photos/: 2 referenced by a "
        "photo, 0 newer than 24 h kept, would delete 2 orphan(s) (2 KiB), 0 failed, 0 vanished\n"
    )
    assert (media / orphan).exists() and (media / young).exists()

    out = io.StringIO()
    call_command("incidents_sweep_photos", "--older-than-hours", "36", stdout=out)
    assert out.getvalue() == (
        "incidents_sweep_photos: 4 file(s) under evidence/, photos/: 2 referenced by a photo, "
        "1 newer than 36 h kept, deleted 1 orphan(s) (2 KiB), 0 failed, 0 vanished\n"
    )
    assert not (media / orphan).exists()
    assert (media / young).exists()


@pytest.mark.parametrize("hours", ["0", "0.5", "-24", "nan"])
def test_the_command_refuses_a_limit_under_an_hour(media, hours):
    kept = _left_behind(media, "evidence/x.jpg", b"x", hours=24)

    with pytest.raises(CommandError, match="--older-than-hours must be at least 1"):
        call_command("incidents_sweep_photos", "--older-than-hours", hours)
    assert (media / kept).exists()


class _StorageWithoutAges(FileSystemStorage):
    """The file system storage with Django's base `Storage.get_modified_time`, which refuses
    to answer: a storage that cannot tell a file's age."""

    get_modified_time = Storage.get_modified_time


def test_a_storage_that_cannot_tell_a_files_age_is_refused_before_anything_is_touched(
    media, settings
):
    doomed = _left_behind(media, "evidence/x.jpg", b"x", hours=48)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}._StorageWithoutAges"},
    }

    with pytest.raises(ImproperlyConfigured, match="cannot tell when a file was last modified"):
        photos_sweep_orphans(older_than=DAY)
    assert (media / doomed).exists()
