"""Recognising image bytes, file names and URLs cheaply, with the standard library only."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Longer than any real path; keeps `{essay}` from costing a stat() call.
_MAX_PATH_CHARS = 4096


def sniff_format(head: bytes) -> str | None:
    """The image format named by the first bytes of a file, or None if not recognised."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    # "BM" alone is too common in text; also require a known DIB header size.
    if head.startswith(b"BM") and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
            return "BMP"
    return None


def png_has_chunks_after_pixels(data: bytes) -> bool:
    """True unless a PNG's chunks end with its pixel data (IDAT ... IEND).

    Pillow reads EXIF and text chunks placed after the pixels only by decoding every pixel;
    when there are none, the header Pillow has already parsed holds all the metadata.
    Walking the chunk lengths touches a few bytes per chunk, not the pixels.
    """
    position, end, seen_pixels = len(_PNG_SIGNATURE), len(data), False
    if not data.startswith(_PNG_SIGNATURE):
        return True
    while position + 8 <= end:
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            seen_pixels = True
        elif kind == b"IEND":
            return False
        elif seen_pixels:
            return True
        position += 12 + int.from_bytes(data[position : position + 4], "big")
    return True  # truncated: let Pillow decode and report it


def has_image_extension(name: str) -> bool:
    """True if a file name or URL path ends in a known image extension."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_http_url(text: str) -> bool:
    """True for an http:// or https:// URL (any path)."""
    return text[:8].lower().startswith(("http://", "https://"))


def is_image_url(text: str) -> bool:
    """True for an http(s) URL whose path ends in an image extension."""
    if not is_http_url(text) or any(c.isspace() for c in text):
        return False
    return has_image_extension(urlsplit(text).path)


def is_data_url(text: str) -> bool:
    """True for a `data:image/...;base64,` URL."""
    return text[:11].lower() == "data:image/" and ";base64," in text[:100]


def is_image_path(text: str | os.PathLike[str]) -> bool:
    """True if `text` names an existing file with an image extension."""
    name = os.fspath(text)
    if not isinstance(name, str) or not name or len(name) > _MAX_PATH_CHARS or "\n" in name:
        return False
    if not has_image_extension(name):
        return False
    return os.path.isfile(os.path.expanduser(name))
