"""Voice notes become Ogg Opus (ffmpeg) and stickers 512x512 WebP (Pillow); nothing is
relabelled. The audio comes from ffmpeg's own test sources, made here."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest
from PIL import Image

from server import media_convert

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_bytes(fmt: str = "PNG", size=(40, 20), color=(255, 0, 0, 255)) -> bytes:
    buffer = io.BytesIO()
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    Image.new(mode, size, color[:3] if mode == "RGB" else color).save(buffer, format=fmt)
    return buffer.getvalue()


def audio_bytes(fmt: str, tmp_path, seconds: float = 1.0, extra=()) -> bytes:
    """A tone in ``fmt`` (mp3, m4a, wav, ogg-vorbis, ogg-opus, webm), made by ffmpeg."""
    codec, suffix = {
        "mp3": ("libmp3lame", "mp3"),
        "m4a": ("aac", "m4a"),
        "wav": ("pcm_s16le", "wav"),
        "vorbis": ("libvorbis", "ogg"),
        "opus": ("libopus", "ogg"),
        "webm": ("libopus", "webm"),
    }[fmt]
    target = tmp_path / f"tone-{fmt}.{suffix}"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            *extra,
            "-ac",
            "2",
            "-c:a",
            codec,
            "-y",
            str(target),
        ],
        check=True,
    )
    return target.read_bytes()


def probe(data: bytes, tmp_path) -> dict:
    path = tmp_path / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


# --- voice notes ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "wav", "vorbis", "webm"])
def test_voice_is_transcoded_to_mono_ogg_opus(fmt, tmp_path):
    note = media_convert.to_voice_note(audio_bytes(fmt, tmp_path))
    assert media_convert.is_ogg_opus(note)
    info = probe(note, tmp_path)
    [stream] = info["streams"]
    assert (info["format"]["format_name"], stream["codec_name"], stream["channels"]) == (
        "ogg",
        "opus",
        1,
    )
    assert 0.8 < float(info["format"]["duration"]) < 1.3


def test_ogg_opus_is_kept_as_it_is(tmp_path):
    opus = audio_bytes("opus", tmp_path)
    assert media_convert.for_kind("voice", opus) == (opus, "audio/ogg; codecs=opus")
    vorbis = audio_bytes("vorbis", tmp_path)  # Ogg, but not Opus: transcoded
    data, mimetype = media_convert.for_kind("voice", vorbis)
    assert data != vorbis and media_convert.is_ogg_opus(data)


@pytest.mark.parametrize("data", [b"", b"not audio at all", PNG_MAGIC + b"x" * 100])
def test_voice_refuses_what_is_not_audio(data):
    with pytest.raises(media_convert.InvalidAudio) as caught:
        media_convert.to_voice_note(data)
    assert (caught.value.status, caught.value.code) == (422, "invalid_audio")


def test_voice_refuses_an_image_without_sound(tmp_path):
    with pytest.raises(media_convert.InvalidAudio):
        media_convert.to_voice_note(image_bytes("PNG", (64, 64)))


def test_voice_never_follows_a_playlist_to_other_files(tmp_path):
    secret = tmp_path / "secret.ts"  # a file of the server's that ffmpeg can read
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "mp2",
            "-f",
            "mpegts",
            str(secret),
        ],
        check=True,
    )
    for playlist in (
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n",
        f"ffconcat version 1.0\nfile '{secret}'\n",
    ):
        with pytest.raises(media_convert.InvalidAudio):
            media_convert.to_voice_note(playlist.encode())


def test_a_missing_ffmpeg_is_said_plainly(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(media_convert.ConverterMissing) as caught:
        media_convert.to_voice_note(b"whatever")
    assert caught.value.code == "converter_missing"


def test_other_kinds_are_not_converted():
    assert media_convert.for_kind("audio", b"mp3 bytes") is None
    assert media_convert.for_kind("image", image_bytes()) is None


# --- stickers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, size", [("PNG", (40, 20)), ("JPEG", (1000, 400)), ("GIF", (30, 90)), ("WEBP", (512, 512))]
)
def test_sticker_is_a_512_square_webp(fmt, size):
    sticker = media_convert.to_sticker(image_bytes(fmt, size))
    assert len(sticker) <= media_convert.STICKER_MAX_BYTES
    with Image.open(io.BytesIO(sticker)) as image:
        assert image.format == "WEBP"
        assert image.size == (512, 512)
        image = image.convert("RGBA")
        assert image.getpixel((256, 256))[3] == 255  # the picture, centred


def test_sticker_keeps_the_aspect_ratio_with_transparent_padding():
    sticker = media_convert.to_sticker(image_bytes("PNG", (200, 100), (0, 0, 255, 255)))
    with Image.open(io.BytesIO(sticker)) as image:
        image = image.convert("RGBA")
        assert image.getpixel((5, 5))[3] == 0  # padding above the 512x256 picture
        assert image.getpixel((5, 505))[3] == 0  # and below it
        red, green, blue, alpha = image.getpixel((256, 256))
        assert alpha == 255 and blue > 200 and red < 50 and green < 50
        top = next(y for y in range(512) if image.getpixel((256, y))[3] > 0)
        assert 120 <= top <= 136  # (512 - 256) / 2 = 128


@pytest.mark.parametrize(
    "data", [b"", b"not an image", PNG_MAGIC + b"truncated", b"%!PS-Adobe-3.0 EPSF-3.0\n"]
)
def test_sticker_refuses_what_is_not_an_image(data):
    with pytest.raises(media_convert.InvalidImage) as caught:
        media_convert.to_sticker(data)
    assert (caught.value.status, caught.value.code) == (422, "invalid_image")


def test_a_512_webp_is_kept_and_other_webps_are_redrawn():
    square = media_convert.to_sticker(image_bytes("PNG", (100, 100)))
    assert media_convert.for_kind("sticker", square) == (square, "image/webp")
    small = image_bytes("WEBP", (100, 50))
    data, mimetype = media_convert.for_kind("sticker", small)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size, mimetype) == ("WEBP", (512, 512), "image/webp")
