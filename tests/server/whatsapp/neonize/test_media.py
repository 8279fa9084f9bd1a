"""Media: sending uploaded media, downloading inbound media."""

from __future__ import annotations

import pytest
from neonize.utils.enum import (
    MediaType,
)

from server.events import (
    MessageReceived,
)
from server.whatsapp.transport import Media, TransportError
from tests.server.whatsapp.neonize.conftest import (
    ALICE,
    PNG,
    E,
    feed,
    message_ev,
    out,
    sent_message,
    source,
)

OGG_OPUS = b"OggS\x00\x02" + bytes(22) + b"\x13OpusHead\x01\x01"


def test_image_with_caption_and_its_download(live):
    transport, spy, recorder = live
    image = E.ImageMessage(
        caption="look",
        mimetype="image/jpeg",
        URL="https://mmg/x",
        directPath="/v/x",
        mediaKey=b"k" * 32,
        fileSHA256=b"s" * 32,
        fileEncSHA256=b"e" * 32,
        fileLength=1234,
        JPEGThumbnail=b"\xff\xd8",
    )
    feed(spy, message_ev(source(ALICE, ALICE), E.Message(imageMessage=image)))
    message = recorder.last(MessageReceived).message
    assert (message.kind, message.text) == ("image", "look")
    assert (message.media.mimetype, message.media.size) == ("image/jpeg", 1234)
    assert message.media.sha256 == (b"s" * 32).hex()
    assert transport.download(message.media.handle) == b"\xff\xd8 image bytes"
    (sent,), _ = spy.called("download_any")[0]
    assert sent.imageMessage.directPath == "/v/x" and sent.imageMessage.mediaKey == b"k" * 32
    assert not sent.imageMessage.JPEGThumbnail  # the handle stays small


def test_voice_note_and_document(live):
    transport, spy, recorder = live
    feed(
        spy,
        message_ev(
            source(ALICE, ALICE),
            E.Message(
                audioMessage=E.AudioMessage(
                    PTT=True, mimetype="audio/ogg; codecs=opus", fileLength=10
                )
            ),
        ),
    )
    assert recorder.last(MessageReceived).message.kind == "voice"
    feed(
        spy,
        message_ev(
            source(ALICE, ALICE),
            E.Message(
                documentMessage=E.DocumentMessage(
                    fileName="a.pdf", mimetype="application/pdf", caption="the file"
                )
            ),
            msg_id="D1",
        ),
    )
    message = recorder.last(MessageReceived).message
    assert (message.kind, message.media.filename, message.text) == ("document", "a.pdf", "the file")


def test_send_image_bytes(live):
    transport, spy, _ = live
    transport.send(out("image", text="cap", media=Media(data=PNG, mimetype="image/png")))
    (data, media_type), _ = spy.called("upload")[0]
    assert data == PNG and media_type is MediaType.MediaImage
    image = sent_message(spy)[1].imageMessage
    assert (image.caption, image.mimetype, image.URL, image.directPath) == (
        "cap",
        "image/png",
        "https://mmg.whatsapp.net/up",
        "/v/up",
    )
    assert (image.mediaKey, image.fileLength, image.width) == (b"k" * 32, len(PNG), 2)
    assert image.JPEGThumbnail.startswith(b"\xff\xd8")


def test_send_voice_and_document(live):
    transport, spy, _ = live
    transport.send(out("voice", media=Media(data=OGG_OPUS, mimetype="audio/ogg")))
    assert spy.called("upload")[0][0][1] is MediaType.MediaAudio
    audio = sent_message(spy)[1].audioMessage
    assert audio.PTT and audio.mimetype == "audio/ogg; codecs=opus"
    transport.send(
        out(
            "document",
            message_id="3EB0DOC",
            text="see",
            media=Media(data=b"%PDF", mimetype="application/pdf", filename="a.pdf"),
        )
    )
    document = sent_message(spy)[1].documentMessage
    assert (document.fileName, document.caption, document.mimetype) == (
        "a.pdf",
        "see",
        "application/pdf",
    )


def test_handles_are_opaque_to_other_transports(live):
    transport, _, _ = live
    with pytest.raises(TransportError) as caught:
        transport.download({"sandbox_sha256": "abc"})
    assert caught.value.permanent


@pytest.mark.parametrize(
    "kind, media, code",
    [
        (
            "voice",
            Media(data=b"ID3\x03mp3 bytes", mimetype="audio/mpeg"),
            "unsupported_voice_format",
        ),
        (
            "voice",
            Media(data=b"OggS" + bytes(24) + b"vorbis", mimetype="audio/ogg"),
            "unsupported_voice_format",
        ),
        ("sticker", Media(data=PNG, mimetype="image/png"), "unsupported_sticker_format"),
        ("sticker", Media(data=PNG, mimetype="image/webp"), "unsupported_sticker_format"),
    ],
)
def test_voice_and_stickers_are_never_relabelled(live, kind, media, code):
    transport, spy, _ = live
    with pytest.raises(TransportError) as caught:
        transport.send(out(kind, media=media))
    assert (caught.value.code, caught.value.permanent) == (code, True)
    assert not spy.called("upload") and not spy.called("send_message")


def test_webp_sticker_keeps_its_type(live):
    transport, spy, _ = live
    webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L" + bytes(14)
    transport.send(out("sticker", media=Media(data=webp, mimetype="image/webp")))
    assert sent_message(spy)[1].stickerMessage.mimetype == "image/webp"
