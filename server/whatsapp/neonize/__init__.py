"""The real WhatsApp transport: neonize 0.5.2 (whatsmeow, in Go, loaded with ctypes).

Split by topic as whatsmeow splits its client: ``connection`` (start, the connect loop,
stop, lifecycle events), ``pairing`` (QR and pairing codes), ``store`` (the device store
and the client over it), ``messages``/``receipts``/``calls``/``groups`` (inbound events by
kind, and the calls of each topic), ``send`` and ``media`` (outbound), ``lookups``,
``history`` (backfill), ``idmap`` (Kabar ids <-> WhatsApp ids), ``errors``, ``jids``,
``loader`` (the one ``import neonize``); ``transport`` composes them.

This package is the only code in Kabar that imports neonize, and it does so lazily
(``loader._nz()``):
importing neonize loads an 18 MB Go library, starts a log-forwarding thread and configures
the root logger, none of which the web process may ever do. Facts about neonize below come
from ``docs/neonize-notes.md`` (checked against the installed package); the section numbers
in comments (§n) point there.

One ``NeonizeTransport`` per session, one neonize ``NewClient`` per transport, with the
session id as the client's ``uuid`` (the key of neonize's Go-side client map). The device
store is a SQLite file in the session's store folder (WAL, busy timeout) or, with
``options["store_url"]``, a PostgreSQL database.

Hazards this module is built around (each is commented where it matters):

- ``get_me``, ``revoke_message`` and the LID<->phone look-ups abort the whole process when
  neonize has no Go client for the uuid (before connect, after stop, not logged in; §6).
  They are only called while a ``Connected`` event has been seen and under ``_go_lock``,
  which ``stop()`` takes before it tears the client down. ``revoke_message`` is never
  called: revokes are built in Python with our own JID.
- ``StreamReplaced``, ``KeepAliveRestored`` and ``ClientOutdated`` are never subscribed.
- Handlers run one at a time on neonize's connect thread (§4): they convert (at most a
  local LID look-up) and ``emit``, nothing else. ``emit`` only enqueues, except for
  ``MessageReceived``, which waits until the runtime has stored the message (intended:
  WhatsApp must not be told "received" about a message Kabar has not saved).
- ``is_connected``/``stop``/``disconnect`` can block while whatsmeow dials (§6): they are
  only reached from the runtime's control thread (``is_connected()``, ``stop()``), each
  bounded, and every other method decides "connected?" from this transport's own state.
  ``pair_code()`` and ``logout()`` also run on that thread, which must renew the runtime
  lease every 2 s: their waits are bounded too (``pair_code_wait``, ``call_timeout``).
- ``connect()`` blocks for the life of the session, so ``start()`` runs it on a thread of
  its own and returns at once; neonize does not retry a first connect that fails (§6), so
  this module does, with exponential backoff, reporting ``reconnecting`` each time.
- ``stop()`` returns within ``stop_timeout`` even when ``connect()`` is stuck.

neonize 0.5.2 cannot send a message under an id chosen by the caller: neither
``NewClient.send_message`` nor the Go export behind it (uuid, recipient, message; no
options) takes one, and the Go side passes whatsmeow an empty ``SendRequestExtra``, so
whatsmeow picks the id. Kabar picks ``Outbound.message_id`` before the first attempt
and keys receipts, edits, reactions and retries on it, so this module keeps a small map
(``_IdMap``, a SQLite file next to the device store) between Kabar's id and WhatsApp's:
a retry of an id already sent is answered from the map instead of being sent twice, and
ids in receipts, reactions, edits, revokes and quotes are translated both ways. The
window between whatsmeow sending and the map being written remains: a crash exactly
there sends the message twice.

Poll votes arrive encrypted, naming the chosen options only by their SHA-256: whatsmeow
decrypts them (``decrypt_poll_vote``, with the poll's secret it kept when the poll was
sent or received) and the same SQLite file keeps each poll's option names, for polls this
session sent or saw, so a vote can be reported by name, after a restart too. A vote in a
poll that came before Kabar ran (or was pruned) cannot be named and is logged, not
reported. Group events come from WhatsApp's group notifications, which reach this device
for the changes it made itself as well: nothing is emitted by the group calls here.
"""

from server.whatsapp.neonize.loader import _nz
from server.whatsapp.neonize.settings import Settings
from server.whatsapp.neonize.store import new_neonize_client, sqlite_store_name
from server.whatsapp.neonize.transport import NeonizeTransport

__all__ = ["NeonizeTransport", "Settings", "_nz", "new_neonize_client", "sqlite_store_name"]
