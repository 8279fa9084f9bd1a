"""The instance's media store: content-addressed files under ``<instance>/media``.

Media arrives as base64 in JSON, as a multipart upload, as a URL to fetch, or from
WhatsApp. Whatever the way in, it is stored once per distinct content: the file is named
by its SHA-256 (``media/<sha[:2]>/<sha>``) and described by one ``Media`` row. Files are
written to a temporary name and renamed, so a reader never sees half a file and a crash
never leaves one under a real name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
import re
import tempfile
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.datastructures import FileStorage

from server import netguard
from server.errors import KabarError, NotFound
from server.models import Media, db, utcnow

GENERIC_MIMETYPE = "application/octet-stream"
# Types servers send when they do not know; the bytes say more than these do.
_UNKNOWN_MIMETYPES = {
    GENERIC_MIMETYPE,
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "unknown/unknown",
}
_MIMETYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?:;[^,]*)?;base64,", re.IGNORECASE)


class MediaNotFound(NotFound):
    code = "media_not_found"
    message = "No media with this SHA-256 is stored."


class MediaTooLarge(KabarError):
    status = 413
    code = "media_too_large"
    message = "The media is larger than this server accepts (KABAR_FETCH_MAX_BYTES)."


class InvalidBase64(KabarError):
    status = 422
    code = "invalid_base64"
    message = "The media is not valid base64."


# --- the store ------------------------------------------------------------------------


def store(data: bytes, *, mimetype: str, filename: str | None) -> Media:
    """Keep ``data`` and return its row; the same bytes twice give one file and one row.

    The first mimetype and filename given for some content stay on its row: they
    describe the content, and a later caller who needs its own name keeps it itself.
    Commits, so the row and the file exist together once this returns.
    """
    _check_size(len(data))
    sha = hashlib.sha256(data).hexdigest()
    _write_file(path_of(sha), data)
    values = {
        "sha256": sha,
        "mimetype": _clean_mimetype(mimetype) or sniff_mimetype(data, filename),
        "size": len(data),
        "filename": netguard.safe_filename(filename),
        "created_at": utcnow(),
    }
    db.session.execute(_insert_once(values))
    db.session.commit()
    row = db.session.get(Media, sha)
    assert row is not None
    return row


def path_of(sha256: str) -> Path:
    """Where the content with this SHA-256 lives (whether or not it exists).

    Anything but 64 lowercase hex digits is refused, so no caller can turn a crafted
    "hash" into a path outside the store.
    """
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise MediaNotFound(f"{sha256!r} is not a SHA-256 (64 lowercase hex digits).")
    return media_root() / sha256[:2] / sha256


def get(sha256: str) -> Media:
    """The stored media row with this SHA-256 (media_not_found if there is none)."""
    path_of(sha256)  # validates the form
    row = db.session.get(Media, sha256)
    if row is None:
        raise MediaNotFound(f"No media with SHA-256 {sha256} is stored.")
    return row


def open_bytes(sha256: str) -> bytes:
    """The stored content with this SHA-256."""
    try:
        return path_of(sha256).read_bytes()
    except FileNotFoundError as exc:
        raise MediaNotFound(f"No media with SHA-256 {sha256} is stored.") from exc


def media_root() -> Path:
    return Path(current_app.instance_path) / "media"


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, unless the same content is already there."""
    if path.is_file() and path.stat().st_size == len(data):
        return  # same name means same SHA-256: the content is already stored
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _insert_once(values: dict) -> sa.Insert:
    """INSERT … ON CONFLICT DO NOTHING: two requests storing the same bytes both succeed."""
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Media).values(**values).on_conflict_do_nothing(index_elements=["sha256"])


def _check_size(size: int) -> None:
    limit = current_app.config["KABAR"]["FETCH_MAX_BYTES"]
    if size > limit:
        raise MediaTooLarge(
            f"The media is {size} bytes; this server accepts at most {limit} "
            "(KABAR_FETCH_MAX_BYTES)."
        )


# --- ways in --------------------------------------------------------------------------


def from_base64(text: str, mimetype: str | None = None, filename: str | None = None) -> Media:
    """Store base64 text; a data URL (``data:image/png;base64,…``) brings its own type."""
    text = text.strip() if isinstance(text, str) else ""
    match = _DATA_URL.match(text)
    if match:
        mimetype = mimetype or match.group("type") or None
        text = text[match.end() :]
    text = "".join(text.split())  # line breaks from wrapped base64
    # Refuse before decoding: every 4 characters hold 3 bytes.
    _check_size(len(text) * 3 // 4 - text.count("=", -2))
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64(f"The media is not valid base64: {exc}.") from exc
    if not data:
        raise InvalidBase64("The base64 media is empty.")
    return store(data, mimetype=_chosen_mimetype(mimetype, data, filename), filename=filename)


def from_upload(upload: FileStorage) -> Media:
    """Store a multipart upload; its declared type is used when it says something."""
    limit = current_app.config["KABAR"]["FETCH_MAX_BYTES"]
    data = upload.stream.read(limit + 1)  # one byte more tells "too large" from "just fits"
    _check_size(len(data))
    filename = netguard.safe_filename(upload.filename)
    return store(
        data, mimetype=_chosen_mimetype(upload.mimetype, data, filename), filename=filename
    )


def from_url(url: str) -> Media:
    """Fetch ``url`` under the SSRF guard (``server.netguard``) and store what it returns."""
    settings = current_app.config["KABAR"]
    fetched = netguard.fetch(
        url,
        max_bytes=settings["FETCH_MAX_BYTES"],
        timeout=settings["FETCH_TIMEOUT"],
        allow=settings["FETCH_ALLOW"],
    )
    return store(
        fetched.data,
        mimetype=_chosen_mimetype(fetched.content_type, fetched.data, fetched.filename),
        filename=fetched.filename,
    )


def _chosen_mimetype(declared: str | None, data: bytes, filename: str | None) -> str:
    """The declared type when it is a real one, else what the bytes and name suggest."""
    cleaned = _clean_mimetype(declared)
    if cleaned and cleaned not in _UNKNOWN_MIMETYPES:
        return cleaned
    return sniff_mimetype(data, filename)


def _clean_mimetype(value: str | None) -> str | None:
    """``type/subtype`` lowercased without parameters; None if it is not one."""
    if not value:
        return None
    value = value.split(";", 1)[0].strip().lower()
    return value if _MIMETYPE.match(value) else None


# --- what is it -----------------------------------------------------------------------


def sniff_mimetype(data: bytes, filename: str | None = None) -> str:
    """The type the bytes announce, else the one the file name suggests, else generic.

    Magic numbers come first: a name is whatever the sender typed, the bytes are what
    WhatsApp will have to render.
    """
    return _magic(data) or _by_name(filename) or GENERIC_MIMETYPE


def _magic(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"OggS"):
        return "audio/ogg"  # WhatsApp voice notes are Ogg Opus
    if data[4:8] == b"ftyp":
        return "audio/mp4" if data[8:12] in {b"M4A ", b"M4B "} else "video/mp4"
    return None


def _by_name(filename: str | None) -> str | None:
    if not filename:
        return None
    guessed, _encoding = mimetypes.guess_type(filename)
    return guessed
