"""Image files for the photo tests — real JPEG/PNG/WebP made with Pillow, and the things that
must be refused (GIF, SVG, text named .jpg, a truncated JPEG, a pixel bomb) — and a look at what
is stored under MEDIA_ROOT."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

# A spot in Longhua, as a phone would write it into EXIF (degrees, minutes, seconds).
GPS_IFD = 0x8825
ORIENTATION = 0x0112
_GPS = {1: "N", 2: (22.0, 39.0, 25.0), 3: "E", 4: (114.0, 1.0, 48.0)}


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """An image with detail (noise compresses badly, like a photo)."""
    image = Image.effect_noise(size, 60).convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(size))
    return image


def jpeg(
    size: tuple[int, int] = (800, 600), *, gps: bool = True, orientation: int = 1, quality: int = 90
) -> bytes:
    """A JPEG as a phone writes it: EXIF with GPS position and orientation."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    if gps:
        exif[GPS_IFD] = _GPS
    out = io.BytesIO()
    noise(size).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def png(size: tuple[int, int] = (640, 480), *, alpha: bool = False) -> bytes:
    out = io.BytesIO()
    noise(size, "RGBA" if alpha else "RGB").save(out, "PNG")
    return out.getvalue()


def webp(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    noise(size).save(out, "WEBP", quality=80)
    return out.getvalue()


def gif(size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    noise(size).convert("P").save(out, "GIF")
    return out.getvalue()


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
)
TEXT = "这不是照片，只是一个名为 .jpg 的文本文件。\n".encode()


def truncated_jpeg() -> bytes:
    data = jpeg((800, 600), gps=False)
    return data[: len(data) // 2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def pixel_bomb(width: int = 8000, height: int = 6000) -> bytes:
    """A valid PNG header announcing width × height pixels (48 MP by default) over a few hundred
    bytes: decoding it would need ~144 MB. Its pixel data is not even complete, so an image
    that was decoded instead of refused from its header would fail with another reason."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    row = b"\x00" + b"\x00" * (width * 3)
    data = zlib.compress(row * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def upload(
    data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored_files(media_root: Path) -> list[Path]:
    """Every file under MEDIA_ROOT."""
    if not media_root.exists():
        return []
    return sorted(path for path in media_root.rglob("*") if path.is_file())


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
