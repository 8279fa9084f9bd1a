"""The id map: Kabar's message ids <-> WhatsApp's, and each poll's option names."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

IDS_FILE = "kabar-ids.sqlite3"


class _IdMap:
    """Kabar's message id for each message this session sent, and WhatsApp's; and the
    option names of each poll this session sent or saw (votes name options by hash).

    Needed because neonize 0.5.2 cannot send under a chosen id (module docstring). A
    SQLite file in the session folder, so it survives restarts; rows older than
    ``KEEP_DAYS`` are dropped when it opens. Any failure here degrades to "the same id on
    both sides" (logged) rather than failing a send, or to a vote not reported.
    """

    KEEP_DAYS = 180

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=5, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            # sent_at is WhatsApp's time; recorded_at this machine's, used for pruning.
            db.execute(
                "CREATE TABLE IF NOT EXISTS sent (kabar_id TEXT PRIMARY KEY, "
                "wa_id TEXT NOT NULL, chat TEXT NOT NULL, sent_at REAL NOT NULL, "
                "recorded_at REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS sent_wa_id ON sent (wa_id)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS polls (wa_id TEXT PRIMARY KEY, "
                "options TEXT NOT NULL, recorded_at REAL NOT NULL)"
            )
            for table in ("sent", "polls"):
                db.execute(
                    f"DELETE FROM {table} WHERE recorded_at < ?",
                    (time.time() - self.KEEP_DAYS * 86400,),
                )
            self._db = db
        return self._db

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._open().execute(sql, args).fetchall()
            except sqlite3.Error:
                log.exception("message id map %s failed", self.path)
                return []

    def record(self, kabar_id: str, wa_id: str, chat: str, sent_at: datetime) -> None:
        self._query(
            "INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?)",
            (kabar_id, wa_id, chat, sent_at.timestamp(), time.time()),
        )

    def sent(self, kabar_id: str) -> tuple[str, datetime] | None:
        rows = self._query("SELECT wa_id, sent_at FROM sent WHERE kabar_id = ?", (kabar_id,))
        return (rows[0][0], datetime.fromtimestamp(rows[0][1], UTC)) if rows else None

    def to_wa(self, message_id: str) -> str:
        """WhatsApp's id for an id Kabar knows (its own for messages it sent)."""
        rows = self._query("SELECT wa_id FROM sent WHERE kabar_id = ?", (message_id,))
        return rows[0][0] if rows else message_id

    def to_kabar(self, message_id: str) -> str:
        """The id Kabar knows a message by, for an id WhatsApp reports."""
        rows = self._query("SELECT kabar_id FROM sent WHERE wa_id = ?", (message_id,))
        return rows[0][0] if rows else message_id

    def remember_poll(self, wa_id: str, options: list[str]) -> None:
        self._query(
            "INSERT OR REPLACE INTO polls VALUES (?, ?, ?)",
            (wa_id, json.dumps(list(options)), time.time()),
        )

    def poll_options(self, wa_id: str) -> list[str] | None:
        """The option names of poll ``wa_id`` (WhatsApp's id), if this session knows it."""
        rows = self._query("SELECT options FROM polls WHERE wa_id = ?", (wa_id,))
        return json.loads(rows[0][0]) if rows else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
