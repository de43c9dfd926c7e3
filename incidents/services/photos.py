"""Photos of a case (案件照片): checked by their bytes, kept untouched as evidence, re-encoded for
display, stored with the case in the caller's transaction.

A grid worker photographs what they report (`before`, 处置前); a department photographs its fix
when it feeds back (`after`, 处置后). Two copies are kept:

* the **original**, the bytes exactly as uploaded, with their SHA-256 — the evidence. Only
  staff of the hierarchy, auditors, admins and the uploader may fetch it (it may carry the
  phone's GPS position and device data);
* the **display copy**, re-encoded from the decoded pixels: EXIF orientation applied, every
  piece of metadata dropped (EXIF with GPS, XMP, ICC, comments), at most
  PHOTO_DISPLAY_MAX_SIDE pixels on its long side, JPEG (WebP where the image has transparency).

What is accepted is judged by the bytes, never the file name or the declared content type:
JPEG, PNG and WebP that Pillow decodes completely. A GIF, an SVG, a text file named .jpg, a
truncated or corrupt image are refused; so is a file over CITYOPS_PHOTO_MAX_BYTES and an image
of more than CITYOPS_PHOTO_MAX_PIXELS pixels — read from the header, before any pixel is
decoded, so a small file that would expand to gigabytes (a decompression bomb) costs nothing.

Files and transactions. `incident_photo_add` writes both files under fresh random names and the
row, the audit entry and the event inside `transaction.atomic()` — the caller's transaction when
there is one (the report and its photos are one transaction). A database cannot roll a file
back, and Django has no rollback hook, so the files written are tied to an `on_commit` callback:
when the transaction (or the savepoint) rolls back, Django drops that callback unrun, and its
finalizer lists the files as *suspects*. `photos_discard_uncommitted` (run at the end of every
request and before every photo is added) deletes each suspect file that no IncidentPhoto row
refers to — it asks the database rather than trusting the callback, so the files of a committed
photo are never deleted, whatever happened to the other callbacks. A process that dies between
writing the files and committing leaves them behind (no row refers to them):
`photos_sweep_orphans` (`manage.py incidents_sweep_photos`, daily) deletes those once they are
old enough that no transaction can still be about to commit them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, default_storage
from django.core.signals import request_finished
from django.db import DatabaseError, transaction
from django.db.models import FileField, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import Role, User
from audit.services import audit_record
from incidents import events
from incidents.models import Incident, IncidentPhoto, PhotoKind
from incidents.services import IncidentInputError
from incidents.workflow import ActionNotPermitted
from realtime.outbox import publish

log = logging.getLogger(__name__)

# Formats accepted, by Pillow's name for them; nothing else is even tried.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP")
PHOTO_DISPLAY_MAX_SIDE = 1920
DISPLAY_JPEG_QUALITY = 85
DISPLAY_WEBP_QUALITY = 85
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

PHOTO_ADDED = "incidents.photo_added"

_LABEL_MAX = 80


class PhotoRejected(IncidentInputError):
    """A photo refused (the API answers 400 `{"photos": [reason]}`); `reason` names the file."""

    def __init__(self, reason: str) -> None:
        super().__init__("photos", reason)


class PhotoTooLarge(PhotoRejected):
    """A file over CITYOPS_PHOTO_MAX_BYTES, or a request too large to hold its photos (413)."""


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    max_pixels: int
    max_per_request: int

    @classmethod
    def from_settings(cls) -> PhotoLimits:
        return cls(
            max_bytes=settings.CITYOPS_PHOTO_MAX_BYTES,
            max_pixels=settings.CITYOPS_PHOTO_MAX_PIXELS,
            max_per_request=settings.CITYOPS_PHOTO_MAX_PER_REQUEST,
        )


def human_bytes(count: int) -> str:
    """A size for operators (logs, commands): 512 bytes, 48.8 KiB, 10 MiB."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB".replace(".0 MiB", " MiB")
    if count >= 1024:
        return f"{count / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{count} bytes"


def size_text(count: int) -> str:
    """A size as a refusal shows it, in the reader's language: 512 字节, 48.8 KiB, 10 MiB."""
    if count >= 1024:
        return human_bytes(count)
    return _("%(count)s 字节") % {"count": count}


def photo_label(index: int, name: str | None) -> str:
    """How an error names a file: 第 2 张照片（“IMG_0001.jpg”） — the position in the request and
    the client's file name (printable characters only, shortened)."""
    clean = "".join(ch for ch in (name or "").replace("\\", "/").rsplit("/", 1)[-1] if ch >= " ")
    if len(clean) > _LABEL_MAX:
        clean = clean[: _LABEL_MAX - 1] + "…"
    if clean:
        return _("第 %(index)s 张照片（“%(name)s”）") % {"index": index, "name": clean}
    return _("第 %(index)s 张照片") % {"index": index}


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo that passed the checks: the original bytes and the re-encoded display copy."""

    label: str
    original: bytes
    sha256: str
    format: str  # JPEG, PNG, WEBP (of the original)
    display: bytes
    display_format: str  # JPEG or WEBP
    width: int  # of the display copy
    height: int


def _read_capped(upload: Any, label: str, max_bytes: int) -> bytes:
    size = getattr(upload, "size", None)
    if isinstance(size, int) and size > max_bytes:
        raise PhotoTooLarge(
            _("%(photo)s大小为 %(size)s，照片最大 %(limit)s。")
            % {"photo": label, "size": size_text(size), "limit": size_text(max_bytes)}
        )
    if hasattr(upload, "seek"):
        upload.seek(0)
    parts: list[bytes] = []
    total = 0
    chunks = upload.chunks() if hasattr(upload, "chunks") else iter([upload.read()])
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise PhotoTooLarge(too_large_reason(label, max_bytes))
        parts.append(chunk)
    return b"".join(parts)


def too_large_reason(label: str, max_bytes: int) -> str:
    """The refusal of a file found over the cap while it is read, before its size is known."""
    return _("%(photo)s超过照片的上限 %(limit)s。") % {
        "photo": label,
        "limit": size_text(max_bytes),
    }


def _too_many_pixels(label: str, limits: PhotoLimits) -> str:
    return _("%(photo)s像素过多，最多 %(limit)s 像素。") % {
        "photo": label,
        "limit": f"{limits.max_pixels:,}",
    }


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def photo_check(
    upload: Any, *, label: str | None = None, limits: PhotoLimits | None = None
) -> CheckedPhoto:
    """Check one upload by its bytes and make its display copy; PhotoRejected (naming `label`,
    by default 这张照片, and the reason) if it is not a complete JPEG, PNG or WebP within the
    limits. Pillow's own words for a broken file are quoted in the reason as they are (English).

    `upload` is a Django File (an UploadedFile from a request) or anything with read()."""
    limits = limits or PhotoLimits.from_settings()
    label = label or _("这张照片")
    data = _read_capped(upload, label, limits.max_bytes)
    if not data:
        raise PhotoRejected(_("%(photo)s是空文件。") % {"photo": label})
    try:
        image = Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise PhotoRejected(
            _("%(photo)s不是 JPEG、PNG 或 WebP 图片（按文件内容判断，不看文件名）。")
            % {"photo": label}
        ) from None
    except Image.DecompressionBombError:
        raise PhotoRejected(_too_many_pixels(label, limits)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoRejected(
            _("%(photo)s无法作为图片读取（%(error)s）。") % {"photo": label, "error": exc}
        ) from None
    with image:
        fmt = image.format or ""
        width, height = image.size
        if width < 1 or height < 1:
            raise PhotoRejected(_("%(photo)s没有像素。") % {"photo": label})
        # Decompression bombs: the header's size is checked before a single pixel is decoded.
        if width * height > limits.max_pixels:
            raise PhotoRejected(
                _("%(photo)s为 %(width)s×%(height)s = %(pixels)s 像素，最多 %(limit)s 像素。")
                % {
                    "photo": label,
                    "width": width,
                    "height": height,
                    "pixels": f"{width * height:,}",
                    "limit": f"{limits.max_pixels:,}",
                }
            )
        try:
            display, display_format, size = _display_copy(image)
        except Image.DecompressionBombError:
            raise PhotoRejected(_too_many_pixels(label, limits)) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow: "image file is truncated …", broken data streams, bad chunk CRCs.
            raise PhotoRejected(
                _("%(photo)s不完整或已损坏（%(error)s）。") % {"photo": label, "error": exc}
            ) from None
    return CheckedPhoto(
        label=label,
        original=data,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        display=display,
        display_format=display_format,
        width=size[0],
        height=size[1],
    )


def _display_copy(image: Image.Image) -> tuple[bytes, str, tuple[int, int]]:
    """Decode completely (a truncated file fails here), turn upright by its EXIF orientation,
    shrink to PHOTO_DISPLAY_MAX_SIDE and re-encode from bare pixels: nothing of the original's
    metadata survives."""
    width, height = image.size
    ratio = min(1.0, PHOTO_DISPLAY_MAX_SIDE / max(width, height))
    # JPEG: decode at 1/2, 1/4, 1/8 scale when that is still at least the display size.
    image.draft(image.mode, (math.ceil(width * ratio), math.ceil(height * ratio)))
    image.load()
    upright = ImageOps.exif_transpose(image)
    alpha = _has_alpha(upright)
    pixels = upright.convert("RGBA" if alpha else "RGB")
    pixels.thumbnail((PHOTO_DISPLAY_MAX_SIDE, PHOTO_DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    # A new image holding only the pixels: no info dict, no EXIF, no ICC profile, no XMP.
    bare = Image.new(pixels.mode, pixels.size)
    bare.paste(pixels)
    out = io.BytesIO()
    if alpha:
        bare.save(out, "WEBP", quality=DISPLAY_WEBP_QUALITY, method=4)
        return out.getvalue(), "WEBP", bare.size
    bare.save(out, "JPEG", quality=DISPLAY_JPEG_QUALITY, optimize=True)
    return out.getvalue(), "JPEG", bare.size


def photos_check(uploads: list[Any], *, limits: PhotoLimits | None = None) -> list[CheckedPhoto]:
    """Check the photos of one request, in order (PhotoRejected for the first bad one, or when
    there are more than CITYOPS_PHOTO_MAX_PER_REQUEST)."""
    limits = limits or PhotoLimits.from_settings()
    if len(uploads) > limits.max_per_request:
        raise PhotoRejected(
            _("收到 %(count)s 张照片，每次请求最多 %(limit)s 张。")
            % {"count": len(uploads), "limit": limits.max_per_request}
        )
    return [
        photo_check(upload, label=photo_label(index, getattr(upload, "name", None)), limits=limits)
        for index, upload in enumerate(uploads, 1)
    ]


# --- files that must not outlive a rolled-back transaction ------------------------------------


@dataclass
class _Written:
    names: list[str] = field(default_factory=list)
    committed: bool = False


class _CommitMark:
    """The on_commit callback of one photo's files. Django runs it after a commit and drops it
    unrun when the transaction or savepoint it was registered in rolls back."""

    def __init__(self, written: _Written) -> None:
        self.written = written

    def __call__(self) -> None:
        self.written.committed = True


# Names of files whose commit mark was dropped unrun. Appended to by finalizers, swapped out
# whole by photos_discard_uncommitted. Re-entrant lock: a finalizer may run (garbage collection)
# while this thread holds it.
_suspects: list[str] = []
_suspects_lock = threading.RLock()


def _mark_dropped(written: _Written) -> None:
    # Runs inside Django's rollback (or later, if a commit hook failed): only note the names.
    if not written.committed and written.names:
        with _suspects_lock:
            _suspects.extend(written.names)


def _track_files() -> _Written:
    written = _Written()
    mark = _CommitMark(written)
    weakref.finalize(mark, _mark_dropped, written)
    transaction.on_commit(mark, robust=True)
    return written


def photos_discard_uncommitted() -> int:
    """Delete the files written for photos whose transaction rolled back (and that no row refers
    to); returns how many. Runs at the end of every request and before every photo is added."""
    global _suspects
    with _suspects_lock:
        if not _suspects:
            return 0
        batch, _suspects = _suspects, []
    names = set(batch)
    connection = transaction.get_connection()
    try:
        if connection.needs_rollback:
            raise DatabaseError("the current transaction is being rolled back")
        referenced: set[str] = set()
        for original, display in IncidentPhoto.objects.filter(
            Q(original__in=names) | Q(display__in=names)
        ).values_list("original", "display"):
            referenced.update((original, display))
    except DatabaseError:
        with _suspects_lock:
            _suspects.extend(names)  # ask again next time
        return 0
    deleted = 0
    for name in sorted(names - referenced):
        try:
            if default_storage.exists(name):
                default_storage.delete(name)
                deleted += 1
        except OSError:
            log.exception("could not delete the file %s of a rolled-back photo", name)
    if deleted:
        log.info("deleted %d file(s) of rolled-back photos", deleted)
    return deleted


def _discard_after_request(**_kwargs: Any) -> None:
    photos_discard_uncommitted()


request_finished.connect(_discard_after_request, dispatch_uid="incidents.photos.discard")


# --- files a dead process left behind ---------------------------------------------------------

# References are looked up this many file names per query: a month's directory of 100,000
# files costs 200 small queries, never one with 100,000 parameters.
PHOTO_SWEEP_CHUNK = 500
# The youngest a file may be and still be swept: a photo is written and committed within one
# request, seconds apart; an hour is far beyond any transaction that is still alive.
PHOTO_SWEEP_MIN_AGE = timedelta(hours=1)


@dataclass
class SweepResult:
    """What `photos_sweep_orphans` found. Each file seen is counted once more, as exactly one of:
    referenced (kept), too new (kept), deleted (in a dry run: would be deleted), failed (could
    not be deleted; logged) or vanished (gone before it could be looked at)."""

    dry_run: bool = False
    seen: int = 0
    referenced: int = 0
    too_new: int = 0
    deleted: int = 0
    bytes_freed: int = 0  # in a dry run: the bytes that would be freed
    failed: int = 0
    vanished: int = 0


def photo_directories() -> tuple[str, ...]:
    """The storage directories the files of IncidentPhoto are written under: the fixed start of
    each FileField's `upload_to`, up to its first strftime pattern such as %Y (`evidence`,
    `photos`)."""
    found: set[str] = set()
    for name in ("original", "display"):
        model_field = IncidentPhoto._meta.get_field(name)
        upload_to = model_field.upload_to if isinstance(model_field, FileField) else None
        if not isinstance(upload_to, str):
            raise ImproperlyConfigured(
                f"IncidentPhoto.{name}.upload_to is not a path: the sweep cannot tell its directory"
            )
        fixed: list[str] = []
        for part in upload_to.split("/"):
            if not part or "%" in part:
                break
            fixed.append(part)
        if not fixed:
            raise ImproperlyConfigured(
                f"IncidentPhoto.{name}.upload_to has no directory of its own: sweeping it would "
                "walk the whole storage"
            )
        found.add("/".join(fixed))
    # A directory inside another is walked with it, never twice.
    return tuple(
        sorted(d for d in found if not any(d.startswith(f"{o}/") for o in found if o != d))
    )


def _storage_files(directory: str) -> Iterator[str]:
    """Every file under `directory` in default_storage, as storage names (`evidence/2025/05/…`);
    nothing if the directory does not exist yet."""
    try:
        subdirectories, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in sorted(files):
        if name and "/" not in name and name not in (".", ".."):
            yield f"{directory}/{name}"
    for sub in sorted(subdirectories):
        if sub and "/" not in sub and sub not in (".", ".."):
            yield from _storage_files(f"{directory}/{sub}")


def _chunks(names: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for name in names:
        chunk.append(name)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def photos_sweep_orphans(
    *, older_than: timedelta, dry_run: bool = False, chunk: int = PHOTO_SWEEP_CHUNK
) -> SweepResult:
    """Delete photo files that no IncidentPhoto row refers to and that were last modified more
    than `older_than` ago; `dry_run` deletes nothing and returns the same counts.

    Why there are such files: `incident_photo_add` writes the original and the display copy
    before its transaction commits. When the transaction rolls back, the files are deleted
    (`photos_discard_uncommitted`); when the process dies instead (kill -9, out of memory, power
    loss), nothing is left to do that, and the files stay with no row referring to them.

    What is walked: only the directories IncidentPhoto's `upload_to` writes into
    (`photo_directories()`: `evidence/`, `photos/`), through `default_storage.listdir`, so it
    works with any storage; nothing outside them is ever looked at or deleted. Names are
    checked against both `original` and `display` of every row, `chunk` names per query.

    Why the age limit: a photo being stored right now has its files written but its row not
    committed, so the database does not show it yet — an orphan by every test but age. Its
    files are minutes old at most, and only a file last modified before now − `older_than` (at
    least PHOTO_SWEEP_MIN_AGE, an hour; ValueError otherwise) is deleted, so a live transaction
    never loses its files. The age is the storage's modification time: the storage's clock
    and this process's should agree to well within that hour. A storage that cannot tell a
    file's age cannot be swept (ImproperlyConfigured, before anything is walked).

    This is housekeeping of files, not a change of any case: it writes no audit entry and no
    event. An orphan file is no case's evidence — no row refers to it, no case shows it, no
    audit entry names it (the audit entry `incidents.incident_photo_add` is written in the
    transaction that never committed). Each deleted file is logged at INFO with its size and
    modification time, and a summary after the sweep. Several copies at once are harmless
    (a file both find may be counted as deleted by both, or as `vanished` by one).
    """
    if older_than < PHOTO_SWEEP_MIN_AGE:
        raise ValueError(
            f"older_than is {older_than}; it must be at least {PHOTO_SWEEP_MIN_AGE}: a photo "
            "being stored right now has its files written but its row not yet committed"
        )
    if chunk < 1:
        raise ValueError(f"chunk is {chunk}; it must be at least 1")
    # File ages are a storage's own: Django's base Storage.get_modified_time only refuses, so a
    # storage that does not define it is refused here, before anything is walked.
    if getattr(default_storage.get_modified_time, "__func__", None) is Storage.get_modified_time:
        raise ImproperlyConfigured(
            "the file storage cannot tell when a file was last modified, so the photo sweep "
            "cannot tell a dead process's files from those of a photo being stored now"
        )
    cutoff = timezone.now() - older_than
    result = SweepResult(dry_run=dry_run)
    directories = photo_directories()
    for directory in directories:
        for names in _chunks(_storage_files(directory), chunk):
            _sweep_chunk(names, cutoff=cutoff, dry_run=dry_run, result=result)
    log.info(
        "photo sweep%s: %d file(s) under %s: %d referenced, %d newer than %s, %d %s (%s), "
        "%d failed, %d vanished",
        " (dry run)" if dry_run else "",
        result.seen,
        ", ".join(f"{d}/" for d in directories),
        result.referenced,
        result.too_new,
        cutoff.isoformat(timespec="seconds"),
        result.deleted,
        "would be deleted" if dry_run else "deleted",
        human_bytes(result.bytes_freed),
        result.failed,
        result.vanished,
    )
    return result


def _sweep_chunk(names: list[str], *, cutoff: datetime, dry_run: bool, result: SweepResult) -> None:
    referenced: set[str] = set()
    for original, display in IncidentPhoto.objects.filter(
        Q(original__in=names) | Q(display__in=names)
    ).values_list("original", "display"):
        referenced.update((original, display))
    for name in names:
        result.seen += 1
        if name in referenced:
            result.referenced += 1
            continue
        try:
            modified = default_storage.get_modified_time(name)
            size = default_storage.size(name)
        except FileNotFoundError:
            result.vanished += 1  # deleted meanwhile (a rollback's cleanup, another sweep)
            continue
        if modified >= cutoff:
            result.too_new += 1
            continue
        if dry_run:
            log.info("photo sweep (dry run): would delete orphan %s (%d bytes)", name, size)
        else:
            try:
                default_storage.delete(name)
            except OSError:
                log.exception("photo sweep: could not delete orphan %s", name)
                result.failed += 1
                continue
            log.info(
                "photo sweep: deleted orphan %s (%d bytes, last modified %s)",
                name,
                size,
                modified.isoformat(timespec="seconds"),
            )
        result.deleted += 1
        result.bytes_freed += size


# --- the service ------------------------------------------------------------------------------


def _check_uploader(by: User | None, incident: Incident) -> None:
    """The reporter, or a user with a role who may see the case (the handler feeding back, an
    operator adding what a caller sent); never an auditor."""
    if by is None or not getattr(by, "is_active", False):
        raise ActionNotPermitted(action="add_photo", reason=_("账号已停用。"))
    if by.role in ("", Role.AUDITOR):
        raise ActionNotPermitted(
            action="add_photo", reason=_("审计员和没有角色的账号不能添加照片。")
        )
    if incident.reporter_id == by.pk:
        return
    if not Incident.objects.visible_to(by).filter(pk=incident.pk).exists():
        raise ActionNotPermitted(
            action="add_photo",
            reason=_("您看不到案件 %(number)s。") % {"number": incident.number},
        )


def photo_added_payload(*, incident: Incident, photo: IncidentPhoto) -> dict[str, Any]:
    """incidents.photo_added: a photo was added to a case (no image data, no uploader name)."""
    return {
        "incident": events.incident_summary(incident),
        "photo": {
            "id": photo.pk,
            "kind": photo.kind,
            "width": photo.width,
            "height": photo.height,
            "created_at": photo.created_at,
        },
    }


def incident_photo_add(
    *,
    incident: Incident,
    kind: str,
    upload: CheckedPhoto | File | Any,
    by: User | None,
    ip: str | None = None,
) -> IncidentPhoto:
    """Add a photo to a case: `before` (with the report) or `after` (with the feedback).

    `upload` is an uploaded file (checked here) or a CheckedPhoto (checked already, outside the
    transaction: decoding is the slow part). Stores the original bytes and the display copy,
    the row, the audit entry `incidents.incident_photo_add` and the event `incidents.photo_added`
    (scopes: the case's own), inside the caller's transaction if there is one. If that
    transaction rolls back, the files are deleted (module docstring). Refusals: PhotoRejected
    (bad image, naming it), IncidentInputError (kind), ActionNotPermitted (the user may not
    see the case).

    The event's scopes are the case's own (incident_scopes) — a subset of those of the report
    or feedback event published before it in the same transaction, so this second publish
    locks no new scope counter (realtime.outbox.publish: two publishes that lock new scopes in
    another order could deadlock).
    """
    if kind not in PhotoKind.values:
        raise IncidentInputError(
            "kind",
            _("“%(value)s”不在可选范围内（%(choices)s）。")
            % {"value": kind, "choices": ", ".join(PhotoKind.values)},
        )
    if incident.pk is None:
        raise IncidentInputError("incident", "the case is not stored")
    checked = upload if isinstance(upload, CheckedPhoto) else photo_check(upload)
    _check_uploader(by, incident)
    photos_discard_uncommitted()
    stem = uuid.uuid4().hex
    with transaction.atomic():
        written = _track_files()  # first: whatever is written below is tied to the commit
        photo = IncidentPhoto(
            incident=incident,
            kind=kind,
            original_sha256=checked.sha256,
            original_format=checked.format,
            original_bytes=len(checked.original),
            width=checked.width,
            height=checked.height,
            uploaded_by=by,
            created_at=timezone.now(),
        )
        photo.original.save(
            f"{stem}.{EXTENSIONS[checked.format]}", ContentFile(checked.original), save=False
        )
        written.names.append(str(photo.original.name))
        photo.display.save(
            f"{stem}.{EXTENSIONS[checked.display_format]}",
            ContentFile(checked.display),
            save=False,
        )
        written.names.append(str(photo.display.name))
        photo.save()
        audit_record(
            actor=by,
            action="incidents.incident_photo_add",
            obj_type="incidents.incidentphoto",
            obj_id=photo.pk,
            before=None,
            after={
                "incident": incident.number,
                "kind": kind,
                "sha256": checked.sha256,
                "format": checked.format,
                "bytes": len(checked.original),
                "display": [checked.display_format, checked.width, checked.height],
                "uploaded_by": by.pk if by is not None else None,
            },
            ip=ip,
        )
        publish(
            type=PHOTO_ADDED,
            payload=photo_added_payload(incident=incident, photo=photo),
            scopes=events.incident_scopes(incident),
        )
    return photo
