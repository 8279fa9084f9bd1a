"""The real neonize transport, over the real library, with a window for tests; loaded by
name inside a session host process (``ProcessHost(factory="tests.server.whatsapp.neonize.
real_transports:...")``)."""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any

from server.whatsapp.neonize import NeonizeTransport, new_neonize_client

CLIENTS_FILE = "clients.jsonl"


class RecordingClients(NeonizeTransport):
    """The real transport; every neonize client it makes is noted in
    ``store_dir/clients.jsonl`` (the device it resumes, or a new one), and made by the
    real ``new_neonize_client``."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._client_factory = self._recorded_client

    def _recorded_client(self, name: str, **kwargs: Any) -> Any:
        jid = kwargs.get("jid")
        note = {
            "jid": f"{jid.User}:{jid.Device}@{jid.Server}" if jid is not None else None,
            "new_device": bool(kwargs.get("new_device")),
            "uuid": kwargs["uuid"],
        }
        with open(self.store_dir / CLIENTS_FILE, "a") as notes:
            notes.write(json.dumps(note) + "\n")
        return new_neonize_client(name, **kwargs)


def recorded_clients(store_dir) -> list[dict]:
    path = store_dir / CLIENTS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class UnscannedQr(NeonizeTransport):
    """The real transport and client, whose Go ``Neonize`` call is replaced by what Go
    does when nobody scans the QR code (goneonize ``Neonize`` + whatsmeow ``qrchan.go``):
    a code through neonize's real ctypes QR callback, then ``timeout`` through its login
    status callback, then ``FetchMe``'s endless wait for a device, deaf to ``Stop``.
    Offline, real Go never gets this far (the dial fails before WhatsApp sends a code)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._client_factory = self._unscanned_client

    @staticmethod
    def _unscanned_client(name: str, **kwargs: Any) -> Any:
        from neonize._binder import func_string

        client = new_neonize_client(name, **kwargs)

        def connect(proxy_settings: Any = None) -> None:
            on_qr = func_string(client._NewClient__onQr)
            on_login = func_string(client._NewClient__onLoginStatus)
            uuid = ctypes.create_string_buffer(client.uuid)
            for text in (b"2@first-code,noise,identity,adv", b"timeout"):
                data = ctypes.create_string_buffer(text)
                (on_qr if text.startswith(b"2@") else on_login)(
                    ctypes.addressof(uuid), ctypes.addressof(data)
                )
            threading.Event().wait()  # FetchMe: for store.ID == nil {}

        client.connect = connect
        return client
