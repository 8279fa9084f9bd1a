"""The media store: content addressing, the ways in, sniffing, stickers.

Runs on SQLite and PostgreSQL (the ``app`` fixture). URL fetches go to a local server on
127.0.0.1, allow-listed per test; nothing touches the internet.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from PIL import Image
from werkzeug.datastructures import FileStorage

from server import media
from server.models import Media, db
from server.netguard import FetchFailed, UnsafeURL

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_bytes(fmt: str = "PNG", size=(40, 20), color=(255, 0, 0, 255)) -> bytes:
    buffer = io.BytesIO()
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    Image.new(mode, size, color[:3] if mode == "RGB" else color).save(buffer, format=fmt)
    return buffer.getvalue()


def count_rows() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Media))


@pytest.fixture
def limit(app, monkeypatch):
    """limit(n): accept at most n bytes of media for this test."""
    return lambda n: monkeypatch.setitem(app.config["KABAR"], "FETCH_MAX_BYTES", n)


# --- the store ------------------------------------------------------------------------


def test_store_writes_the_file_under_its_sha256(app):
    row = media.store(b"hello media", mimetype="text/plain", filename="hello.txt")
    assert row.sha256 == hashlib.sha256(b"hello media").hexdigest()
    path = media.path_of(row.sha256)
    assert path == media.media_root() / row.sha256[:2] / row.sha256
    assert path.read_bytes() == b"hello media"
    assert media.open_bytes(row.sha256) == b"hello media"
    assert (row.mimetype, row.size, row.filename) == ("text/plain", 11, "hello.txt")
    assert row.created_at.tzinfo is not None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".incoming-")]


def test_the_same_bytes_twice_are_one_file_and_one_row(app):
    first = media.store(b"same bytes", mimetype="text/plain", filename="a.txt")
    second = media.store(b"same bytes", mimetype="application/pdf", filename="b.pdf")
    assert first.sha256 == second.sha256
    assert count_rows() == 1
    assert second.filename == "a.txt"  # the first description stays
    assert os.listdir(media.path_of(first.sha256).parent) == [first.sha256]


def test_a_lost_file_is_written_again(app):
    row = media.store(b"precious", mimetype="text/plain", filename=None)
    media.path_of(row.sha256).unlink()
    media.store(b"precious", mimetype="text/plain", filename=None)
    assert media.open_bytes(row.sha256) == b"precious"


def test_store_cleans_what_it_is_told(app):
    row = media.store(
        PNG_MAGIC + b"rest", mimetype="Image/PNG; charset=binary", filename="../../secret/pic.png"
    )
    assert (row.mimetype, row.filename) == ("image/png", "pic.png")
    row = media.store(PNG_MAGIC + b"other", mimetype="not a type", filename=None)
    assert row.mimetype == "image/png"  # sniffed instead


@pytest.mark.parametrize("sha", ["0" * 64, "../" + "0" * 61, "ABC", "", "g" * 64])
def test_open_bytes_of_unknown_or_malformed_hashes(app, sha):
    with pytest.raises(media.MediaNotFound) as caught:
        media.open_bytes(sha)
    assert (caught.value.status, caught.value.code) == (404, "media_not_found")


def test_too_large_is_refused_before_storing(app, limit):
    limit(10)
    with pytest.raises(media.MediaTooLarge) as caught:
        media.store(b"x" * 11, mimetype="text/plain", filename=None)
    assert (caught.value.status, caught.value.code) == (413, "media_too_large")
    assert "KABAR_FETCH_MAX_BYTES" in caught.value.message
    assert count_rows() == 0
    assert media.store(b"x" * 10, mimetype="text/plain", filename=None).size == 10


# --- base64 ---------------------------------------------------------------------------


def test_from_base64(app):
    png = image_bytes()
    row = media.from_base64(base64.b64encode(png).decode(), None, "dot.png")
    assert (row.mimetype, row.size, row.filename) == ("image/png", len(png), "dot.png")
    assert media.open_bytes(row.sha256) == png


def test_from_base64_accepts_data_urls_line_breaks_and_missing_padding(app):
    encoded = base64.b64encode(b"%PDF-1.7 tiny").decode()
    assert media.from_base64(f"data:application/pdf;base64,{encoded}").mimetype == "application/pdf"
    wrapped = "\n".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))
    assert media.open_bytes(media.from_base64(wrapped).sha256) == b"%PDF-1.7 tiny"
    unpadded = base64.b64encode(b"ab").decode().rstrip("=")
    assert media.open_bytes(media.from_base64(unpadded, "text/plain").sha256) == b"ab"


@pytest.mark.parametrize("text", ["not base64!", "QUJD$", "A", "", "   ", "data:;base64,"])
def test_from_base64_refuses_bad_input(app, text):
    with pytest.raises(media.InvalidBase64) as caught:
        media.from_base64(text, "text/plain")
    assert (caught.value.status, caught.value.code) == (422, "invalid_base64")
    assert count_rows() == 0


def test_from_base64_too_large(app, limit):
    limit(100)
    with pytest.raises(media.MediaTooLarge):
        media.from_base64(base64.b64encode(b"x" * 101).decode(), "text/plain")
    assert media.from_base64(base64.b64encode(b"x" * 100).decode(), "text/plain").size == 100


# --- sniffing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        (PNG_MAGIC + b"\x00" * 8, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 8, "image/jpeg"),
        (b"GIF89a" + b"\x00" * 8, "image/gif"),
        (b"GIF87a" + b"\x00" * 8, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.4\n", "application/pdf"),
        (b"OggS\x00\x02" + b"\x00" * 8, "audio/ogg"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 8, "video/mp4"),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8, "video/mp4"),
        (b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 8, "audio/mp4"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "application/octet-stream"),  # RIFF, but not WebP
        (b"\x00\x01\x02", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_sniff_by_magic_numbers(data, expected):
    assert media.sniff_mimetype(data, None) == expected


def test_sniff_falls_back_to_the_file_name_and_trusts_bytes_over_it():
    assert media.sniff_mimetype(b"plain words", "notes.txt") == "text/plain"
    assert media.sniff_mimetype(b"plain words", "notes.unknown-ext") == "application/octet-stream"
    assert media.sniff_mimetype(PNG_MAGIC, "photo.txt") == "image/png"


# --- uploads --------------------------------------------------------------------------


def test_from_upload_uses_the_declared_type(app):
    upload = FileStorage(io.BytesIO(b"a,b\n1,2\n"), filename="table.csv", content_type="text/csv")
    row = media.from_upload(upload)
    assert (row.mimetype, row.filename, row.size) == ("text/csv", "table.csv", 8)


def test_from_upload_sniffs_when_the_type_says_nothing(app):
    jpeg = image_bytes("JPEG")
    for content_type in (None, "application/octet-stream"):
        upload = FileStorage(
            io.BytesIO(jpeg), filename="C:\\photos\\holiday.jpg", content_type=content_type
        )
        row = media.from_upload(upload)
        assert (row.mimetype, row.filename) == ("image/jpeg", "holiday.jpg")
    assert count_rows() == 1


def test_from_upload_too_large(app, limit):
    limit(5)
    with pytest.raises(media.MediaTooLarge):
        media.from_upload(FileStorage(io.BytesIO(b"123456"), filename="six.txt"))


# --- URLs -----------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    PNG = image_bytes()
    ROUTES = {
        "/typed.png": (PNG, "image/png"),
        "/untyped": (PNG, "application/octet-stream"),
        "/big": (b"x" * 500, "text/plain"),
    }

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        body, content_type = self.ROUTES.get(self.path, (b"", None))
        self.send_response(200 if content_type else 404)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def allow_local(app, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1/32"])


def test_from_url(app, server, allow_local):
    row = media.from_url(f"{server}/typed.png")
    assert (row.mimetype, row.filename, row.size) == ("image/png", "typed.png", len(Handler.PNG))
    assert media.open_bytes(row.sha256) == Handler.PNG


def test_from_url_sniffs_a_generic_type(app, server, allow_local):
    row = media.from_url(f"{server}/untyped")
    assert (row.mimetype, row.filename) == ("image/png", "untyped")


def test_from_url_obeys_the_size_setting(app, server, allow_local, limit):
    limit(100)
    with pytest.raises(FetchFailed) as caught:
        media.from_url(f"{server}/big")
    assert caught.value.code == "fetch_too_large"
    assert count_rows() == 0


def test_from_url_refuses_private_addresses_by_default(app, server):
    with pytest.raises(UnsafeURL):
        media.from_url(f"{server}/typed.png")
    assert count_rows() == 0
