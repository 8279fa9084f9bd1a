"""Inbound messages: neonize ``Message`` events -> MessageReceived, reactions, edits,
revokes, poll votes."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from datetime import datetime
from typing import Any

from server.events import (
    Event,
    InboundMessage,
    Location,
    MediaInfo,
    MessageEdited,
    MessageReaction,
    MessageReceived,
    MessageRevoked,
    PollVote,
)
from server.whatsapp.neonize.common import _logged, _when
from server.whatsapp.neonize.errors import _error_text
from server.whatsapp.neonize.loader import _nz

log = logging.getLogger(__name__)

_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
_MEDIA_FIELDS = {
    "imageMessage": "image",
    "videoMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
_POLL_FIELDS = ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3")
# Content that is plumbing, not a message a person sent: never stored.
_SILENT_FIELDS = {
    "senderKeyDistributionMessage",
    "messageContextInfo",
    "protocolMessage",
    "pollUpdateMessage",
    "encReactionMessage",
    "keepInChatMessage",
    "fastRatchetKeySenderKeyDistributionMessage",
    "pinInChatMessage",
}


def _unwrap(message: Any) -> Any:
    """whatsmeow already unwraps ephemeral/view-once/document-with-caption/edited
    messages before neonize encodes them; done again here in case one slips through."""
    for _ in range(4):
        for name in _WRAPPERS:
            if message.HasField(name) and getattr(message, name).HasField("message"):
                message = getattr(message, name).message
                break
        else:
            return message
    return message


def _text_of(message: Any) -> str:
    if message.conversation:
        return message.conversation
    if message.HasField("extendedTextMessage"):
        return message.extendedTextMessage.text
    for name in ("imageMessage", "videoMessage", "documentMessage"):
        if message.HasField(name):
            return getattr(message, name).caption
    return ""


def _context_of(message: Any) -> Any:
    """The ContextInfo (quote, mentions) of whichever content the message carries."""
    for descriptor, value in message.ListFields():
        if (
            descriptor.message_type is not None
            and "contextInfo" in descriptor.message_type.fields_by_name
            and value.HasField("contextInfo")
        ):
            return value.contextInfo
    return None


def _vcard_name(vcard: str) -> str:
    match = re.search(r"^FN[^:]*:(.*)$", vcard, re.M)
    return match[1].strip() if match else ""


def _poll_of(content: Any) -> Any:
    """The poll creation message ``content`` carries, or None."""
    for name in _POLL_FIELDS:
        if content.HasField(name):
            return getattr(content, name)
    return None


class MessageEvents:
    """Message conversion (mixed into ``Inbound``)."""

    def message(self, ev: Any) -> Event | None:
        """MessageReceived, MessageReaction, MessageEdited or MessageRevoked; None for
        status updates, protocol plumbing and empty messages."""
        source = ev.Info.MessageSource
        if source.Chat.Server in ("broadcast", "newsletter") or not ev.HasField("Message"):
            return None  # status@broadcast stories and channel posts: not chat messages
        content = _unwrap(ev.Message)
        timestamp = _when(ev.Info.Timestamp)
        if content.HasField("reactionMessage"):
            chat, sender = self._source_parties(source, ev.Info.Pushname)
            reaction = content.reactionMessage
            return MessageReaction(
                message_id=self.ids.to_kabar(reaction.key.ID),
                chat=chat,
                sender=sender,
                emoji=reaction.text,
                timestamp=_when(reaction.senderTimestampMS)
                if reaction.senderTimestampMS
                else timestamp,
            )
        if content.HasField("protocolMessage"):
            return self._protocol(content.protocolMessage, source, ev.Info.Pushname, timestamp)
        if content.HasField("pollUpdateMessage"):
            return self.poll_vote(ev, content.pollUpdateMessage)
        fields = {d.name for d, _ in content.ListFields()}
        if not fields or fields <= _SILENT_FIELDS:
            return None
        chat, sender = self._source_parties(source, ev.Info.Pushname)
        context = _context_of(content)
        kind, extra = self._body(content)
        if kind == "poll":  # its option names, for the votes to come
            self.ids.remember_poll(ev.Info.ID, [o.optionName for o in _poll_of(content).options])
        return MessageReceived(
            message=InboundMessage(
                id=ev.Info.ID,
                chat=chat,
                sender=sender,
                timestamp=timestamp,
                from_me=source.IsFromMe,
                is_group=source.IsGroup,
                kind=kind,
                quoted_id=self.ids.to_kabar(context.stanzaID)
                if context and context.stanzaID
                else None,
                mentions=tuple(context.mentionedJID) if context else (),
                **extra,
            )
        )

    def _protocol(
        self, protocol: Any, source: Any, push_name: str, timestamp: datetime
    ) -> Event | None:
        E = _nz().E
        if protocol.type not in (E.ProtocolMessage.REVOKE, E.ProtocolMessage.MESSAGE_EDIT):
            return None  # key shares, history sync notices, ephemeral settings…
        chat, sender = self._source_parties(source, push_name)
        target = self.ids.to_kabar(protocol.key.ID)
        if protocol.type == E.ProtocolMessage.REVOKE:
            return MessageRevoked(message_id=target, chat=chat, sender=sender, timestamp=timestamp)
        return MessageEdited(
            message_id=target,
            chat=chat,
            sender=sender,
            text=_text_of(_unwrap(protocol.editedMessage)),
            timestamp=_when(protocol.timestampMS) if protocol.timestampMS else timestamp,
        )

    def _body(self, content: Any) -> tuple[str, dict]:
        """(kind, InboundMessage fields) for the content of a message."""
        for name, kind in _MEDIA_FIELDS.items():
            if content.HasField(name):
                return self._media(name, kind, getattr(content, name))
        if content.HasField("locationMessage") or content.HasField("liveLocationMessage"):
            loc = (
                content.locationMessage
                if content.HasField("locationMessage")
                else content.liveLocationMessage
            )
            return "location", {
                "location": Location(
                    latitude=loc.degreesLatitude,
                    longitude=loc.degreesLongitude,
                    name=getattr(loc, "name", "") or None,
                    address=getattr(loc, "address", "") or None,
                ),
                "text": getattr(loc, "comment", "") or getattr(loc, "caption", ""),
            }
        if content.HasField("contactMessage"):
            return "contacts", {"text": content.contactMessage.vcard}
        if content.HasField("contactsArrayMessage"):
            # InboundMessage has no vcards field: the vCards travel in the text, each
            # one BEGIN:VCARD … END:VCARD, so they split again unambiguously.
            return "contacts", {
                "text": "\n".join(c.vcard for c in content.contactsArrayMessage.contacts)
            }
        poll = _poll_of(content)
        if poll is not None:
            lines = [poll.name] + [f"- {o.optionName}" for o in poll.options]
            return "poll", {"text": "\n".join(lines)}
        text = _text_of(content)
        return ("text" if text else "unknown"), {"text": text}

    def _media(self, field: str, kind: str, media: Any) -> tuple[str, dict]:
        """MediaInfo whose handle is the media message itself (serialized, base64): all
        ``download_any`` needs later. The thumbnail and quote are dropped to keep the
        handle small; it is stored in the database with the message."""
        E = _nz().E
        if kind == "audio" and media.PTT:
            kind = "voice"
        stripped = type(media)()
        stripped.CopyFrom(media)
        for name in ("contextInfo", "JPEGThumbnail"):
            if name in stripped.DESCRIPTOR.fields_by_name:
                stripped.ClearField(name)
        wrapper = E.Message(**{field: stripped})
        handle = {"neonize": base64.b64encode(wrapper.SerializeToString()).decode(), "kind": kind}
        info = MediaInfo(
            mimetype=media.mimetype or "application/octet-stream",
            filename=getattr(media, "fileName", "") or None,
            size=media.fileLength or None,
            sha256=media.fileSHA256.hex() if media.fileSHA256 else None,
            handle=handle,
        )
        return kind, {"media": info, "text": getattr(media, "caption", "")}

    def poll_vote(self, ev: Any, update: Any) -> PollVote | None:
        """A vote (its options by name) in a poll whose options this session knows; None
        for one it never saw or whatsmeow cannot decrypt (logged)."""
        poll_id = update.pollCreationMessageKey.ID
        options = self.ids.poll_options(poll_id)
        if options is None:
            log.info(
                "vote %s in poll %s not reported: this session never saw that poll",
                ev.Info.ID,
                poll_id,
            )
            return None
        vote = self.decrypt_vote(ev)
        if vote is None:
            return None
        by_hash = {hashlib.sha256(o.encode()).digest(): o for o in options}
        picked = {by_hash.get(bytes(h)) for h in vote.selectedOptions}
        if None in picked:
            log.warning(
                "vote %s in poll %s names an option the poll does not have", ev.Info.ID, poll_id
            )
        chat, voter = self._source_parties(ev.Info.MessageSource, ev.Info.Pushname)
        return PollVote(
            poll_id=self.ids.to_kabar(poll_id),
            chat=chat,
            voter=voter,
            options=tuple(o for o in options if o in picked),
            timestamp=_when(update.senderTimestampMS or ev.Info.Timestamp),
        )

    # groups


class ReceivingMessages:
    """The transport's side of inbound messages."""

    def _on_message(self, client: Any, ev: Any) -> None:
        with _logged("message"):
            event = self._inbound.message(ev)
            if event is not None:
                self.emit(event)  # MessageReceived waits until it is stored (intended)

    def _decrypt_vote(self, ev: Any) -> Any | None:
        """whatsmeow's decryption of a poll vote (a PollVoteMessage of option hashes).
        Only while connected, under ``_go_lock``, as the LID look-ups: without a Go
        client Go answers "client is nil" (tested; no abort), and stop() must not tear
        the client down mid-call."""
        with self._go_lock:
            if not self._connected or self._stopping.is_set() or self._client is None:
                return None
            try:
                return self._client.decrypt_poll_vote(ev)
            except Exception as exc:
                log.warning(
                    "session %s: could not decrypt vote %s: %s",
                    self.session_id,
                    ev.Info.ID,
                    _error_text(exc),
                )
                return None
