"""Media made into what WhatsApp plays: voice notes as Ogg Opus, stickers as 512x512 WebP.

WhatsApp plays a voice note only if it is Opus in an Ogg container, and shows a sticker
only if it is WebP; a label on other bytes does not make them so. So a ``voice`` message
is transcoded with ffmpeg (the Debian package ``ffmpeg``) and a ``sticker`` is redrawn
with Pillow, whenever the bytes are stored: an upload or base64 when the message is
accepted (what cannot be converted is a 422), a URL when the runtime has fetched it (the
message fails with the reason). Bytes that already are what WhatsApp wants are kept.

ffmpeg reads untrusted files, so it may only open the one input file (protocol
``file``) with the demuxers of ordinary audio and video formats (no playlists, no
``concat``: they could make it read other files or fetch URLs), has a deadline
(``KABAR_CONVERT_TIMEOUT``) and writes to a folder of its own.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from flask import current_app, has_app_context
from PIL import Image, ImageOps, UnidentifiedImageError

from server.errors import KabarError

KINDS = ("voice", "sticker")  # the message kinds whose media is converted
VOICE_MIMETYPE = "audio/ogg; codecs=opus"
STICKER_MIMETYPE = "image/webp"

STICKER_SIZE = 512
# WhatsApp refuses static stickers over 100 KiB; quality is lowered until one fits.
STICKER_MAX_BYTES = 100 * 1024
STICKER_QUALITIES = (80, 60, 40, 20)
# Formats Pillow may decode for a sticker. Others (EPS through Ghostscript, say) are
# more attack surface than a chat sticker is worth.
STICKER_INPUT_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")

# Demuxers ffmpeg may use for a voice note's input: audio files people record or share,
# and the audio track of a video.
VOICE_INPUT_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,mp3,ogg,wav,flac,aac,amr,matroska,webm,asf,aiff,caf,w64"
)
VOICE_BITRATE = "32k"  # what WhatsApp's own voice notes use, about 16 KB per 4 s
DEFAULT_TIMEOUT = 60


class InvalidImage(KabarError):
    status = 422
    code = "invalid_image"
    message = "The data is not an image Kabar can read (PNG, JPEG, GIF, WebP, BMP or TIFF)."


class InvalidAudio(KabarError):
    status = 422
    code = "invalid_audio"
    message = (
        "The data is not audio Kabar can make a voice note of (MP3, M4A/AAC, Ogg, "
        "Opus, WAV, FLAC, AMR, WebM, or a video's sound)."
    )


class ConverterMissing(KabarError):
    status = 503
    code = "converter_missing"
    message = (
        "This server cannot make voice notes: ffmpeg is not installed (Debian: "
        "apt-get install ffmpeg)."
    )


def for_kind(kind: str, data: bytes) -> tuple[bytes, str] | None:
    """The bytes and mimetype ``kind`` must be sent as, or None if ``data`` needs no
    conversion for it (any kind but voice and sticker, or bytes already right)."""
    if kind == "voice":
        return (data if is_ogg_opus(data) else to_voice_note(data)), VOICE_MIMETYPE
    if kind == "sticker":
        return (data if is_sticker(data) else to_sticker(data)), STICKER_MIMETYPE
    return None


# --- voice notes ------------------------------------------------------------------------


def is_ogg_opus(data: bytes) -> bool:
    """True for an Ogg stream whose first packet is an Opus header (RFC 7845)."""
    if not data.startswith(b"OggS") or len(data) < 27:
        return False
    start = 27 + data[26]  # the page header, then its segment table
    return data[start : start + 8] == b"OpusHead"


def to_voice_note(data: bytes) -> bytes:
    """Transcode audio (or a video's sound) to a mono Ogg Opus voice note."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConverterMissing()
    with tempfile.TemporaryDirectory(prefix="kabar-voice-") as folder:
        source, target = Path(folder) / "input", Path(folder) / "voice.ogg"
        source.write_bytes(data)
        command = [
            ffmpeg,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            VOICE_INPUT_FORMATS,
            "-i",
            str(source),
            "-map",
            "0:a:0",
            "-vn",
            "-sn",
            "-dn",
            "-map_metadata",
            "-1",
            "-ac",
            "1",
            "-ar",
            "48000",
            "-c:a",
            "libopus",
            "-b:a",
            VOICE_BITRATE,
            "-application",
            "voip",
            # the same input gives the same bytes (one copy in the media store)
            "-fflags",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-f",
            "ogg",
            str(target),
        ]
        try:
            finished = subprocess.run(
                command, capture_output=True, timeout=_timeout(), check=False, cwd=folder
            )
        except subprocess.TimeoutExpired:
            raise InvalidAudio(
                f"Converting the audio to a voice note took longer than "
                f"{_timeout()} s (KABAR_CONVERT_TIMEOUT).",
                code="conversion_timeout",
            ) from None
        if finished.returncode != 0 or not target.is_file() or not target.stat().st_size:
            detail = finished.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InvalidAudio(
                f"{InvalidAudio.message} (ffmpeg: {detail[-1] if detail else 'no audio stream'})"
            )
        return target.read_bytes()


def _timeout() -> int:
    if has_app_context():
        return int(current_app.config["KABAR"]["CONVERT_TIMEOUT"])
    return DEFAULT_TIMEOUT


# --- stickers ---------------------------------------------------------------------------


def is_sticker(data: bytes) -> bool:
    """True for a WebP of exactly 512x512 (animated ones too: they stay animated)."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return False
    try:
        with Image.open(io.BytesIO(data), formats=("WEBP",)) as image:
            return image.size == (STICKER_SIZE, STICKER_SIZE)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


def to_sticker(data: bytes) -> bytes:
    """A 512x512 WebP sticker of an image: scaled to fit, centred, padded transparent.

    Animated input gives a still sticker of its first frame.
    """
    image = _open_image(data)
    image = ImageOps.exif_transpose(image).convert("RGBA")
    fitted = ImageOps.contain(image, (STICKER_SIZE, STICKER_SIZE), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (STICKER_SIZE, STICKER_SIZE), (0, 0, 0, 0))
    canvas.paste(fitted, ((STICKER_SIZE - fitted.width) // 2, (STICKER_SIZE - fitted.height) // 2))
    return _encode_webp(canvas)


def _open_image(data: bytes) -> Image.Image:
    """Decode ``data`` fully, refusing what is not an image and decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=STICKER_INPUT_FORMATS)
            image.load()
    except Image.DecompressionBombWarning as exc:
        raise InvalidImage(f"The image has too many pixels to make a sticker of: {exc}.") from exc
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
    ) as exc:
        raise InvalidImage(f"{InvalidImage.message} ({exc})") from exc
    return image


def _encode_webp(image: Image.Image) -> bytes:
    """The best quality that stays under WhatsApp's sticker size, else the smallest."""
    encoded = b""
    for quality in STICKER_QUALITIES:
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=quality, method=4)
        encoded = buffer.getvalue()
        if len(encoded) <= STICKER_MAX_BYTES:
            break
    return encoded
