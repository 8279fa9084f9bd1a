"""WhatsApp transports. Only the runtime process creates them (see transport.py)."""

from __future__ import annotations

from server.whatsapp.transport import Transport, TransportFactory


def factory(name: str) -> TransportFactory:
    """The transport class for a session's ``transport`` name. neonize is imported only
    here, on demand, so the web process never loads it."""
    if name == "sandbox":
        from server.whatsapp.sandbox import SandboxTransport

        return SandboxTransport
    if name == "neonize":
        from server.whatsapp.neonize import NeonizeTransport

        return NeonizeTransport
    raise ValueError(f"unknown transport {name!r}")


__all__ = ["Transport", "TransportFactory", "factory"]
