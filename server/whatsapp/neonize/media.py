"""Media: building uploaded media messages, downloading inbound media."""

from __future__ import annotations

import base64
import io
import logging
import time
from typing import Any

from server.whatsapp.neonize.errors import _transport_error
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.transport import (
    Outbound,
    TransportError,
)

log = logging.getLogger(__name__)

_MEDIA_TYPES = {
    "image": "MediaImage",
    "sticker": "MediaImage",
    "video": "MediaVideo",
    "audio": "MediaAudio",
    "voice": "MediaAudio",
    "document": "MediaDocument",
}
# The kinds this transport sends as media: nodes/message.py's MEDIA_KINDS, which a session
# host cannot import (it loads no marshmallow); tests/nodes/test_send.py keeps them equal.
MEDIA_KINDS = frozenset(_MEDIA_TYPES)


def _image_size(data: bytes) -> tuple[int, int, bytes] | None:
    """(width, height, small JPEG thumbnail) for image bytes, or None if PIL can't read
    them. The thumbnail is what WhatsApp shows before the download."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((100, 100))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=60)
        return width, height, out.getvalue()
    except Exception:
        return None


def _media_message(kind: str, upload: Any, message: Outbound) -> Any:
    """The waE2E message for uploaded media. Built here rather than with neonize's
    ``build_*_message`` helpers: those need ffmpeg/ffprobe for audio and video, sniff
    the type with libmagic and read ``str`` arguments as paths or URLs (notes §5)."""
    E = _nz().E
    media = message.media
    common = {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "mediaKey": upload.MediaKey,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileSHA256": upload.FileSHA256,
        "fileLength": upload.FileLength or len(media.data),
        "mimetype": media.mimetype,
        "mediaKeyTimestamp": int(time.time()),
    }
    if kind in ("image", "sticker"):
        size = _image_size(media.data)
        if size:
            common.update(width=size[0], height=size[1])
        if kind == "sticker":
            return E.Message(stickerMessage=E.StickerMessage(**common))
        if size:
            common["JPEGThumbnail"] = size[2]
        return E.Message(imageMessage=E.ImageMessage(caption=message.text or None, **common))
    if kind == "video":
        return E.Message(videoMessage=E.VideoMessage(caption=message.text or None, **common))
    if kind in ("audio", "voice"):
        if kind == "voice":
            common["mimetype"] = "audio/ogg; codecs=opus"  # checked: check_media()
        return E.Message(audioMessage=E.AudioMessage(PTT=kind == "voice", **common))
    filename = media.filename or "file"
    return E.Message(
        documentMessage=E.DocumentMessage(
            fileName=filename, title=filename, caption=message.text or None, **common
        )
    )


class MediaCalls:
    """The transport's media download."""

    def download(self, handle: dict) -> bytes:
        """The media of an inbound message, from the handle ``_Inbound._media`` made."""
        client = self._require_connected()
        try:
            message = _nz().E.Message.FromString(base64.b64decode(handle["neonize"]))
        except Exception:
            raise TransportError(
                "This media handle was not made by the neonize transport.",
                code="invalid_media_handle",
                permanent=True,
            ) from None
        try:
            data = client.download_any(message)
        except Exception as exc:
            raise _transport_error(exc, "download") from exc
        if not data:
            raise TransportError("WhatsApp returned no media.", code="download_failed")
        return bytes(data)


def check_media(kind: str, media: Any) -> None:
    """Refuse, permanently, what WhatsApp would show broken: a voice note that is not
    Ogg Opus, a sticker that is not WebP. Bytes are never relabelled (the outbox
    converts them before they reach the transport; issue 12, defect 12)."""
    data, mimetype = bytes(media.data[:64]), (media.mimetype or "").lower()
    if kind == "voice" and not (
        mimetype.startswith("audio/ogg") and data.startswith(b"OggS") and b"OpusHead" in data
    ):
        raise TransportError(
            "A voice note must be Ogg Opus audio (audio/ogg; codecs=opus); "
            f"got {mimetype or 'unknown'}. Convert it, or send it as audio.",
            code="unsupported_voice_format",
            permanent=True,
        )
    if kind == "sticker" and not (
        mimetype == "image/webp" and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    ):
        raise TransportError(
            f"A sticker must be a WebP image (image/webp); got "
            f"{mimetype or 'unknown'}. Convert it, or send it as an image.",
            code="unsupported_sticker_format",
            permanent=True,
        )
