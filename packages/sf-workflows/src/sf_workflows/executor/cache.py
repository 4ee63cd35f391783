"""On-disk response cache keyed by the full request (SQLite, stdlib)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CACHE_ENV = "SF_WORKFLOWS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$SF_WORKFLOWS_CACHE_DIR``, else ``$XDG_CACHE_HOME/sf-workflows``, else ``~/.cache/sf-workflows``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sf-workflows"


def request_key(request: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``request`` (sorted keys, no whitespace)."""
    blob = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key → JSON-value store in one SQLite file, safe for several processes.

    Values are written once per key (``INSERT OR REPLACE``); a crash can lose at most the
    entries being written. Open it from one thread (the event loop's).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    @classmethod
    def in_dir(cls, directory: str | os.PathLike[str] | None = None) -> ResponseCache:
        """The cache file ``responses.sqlite`` in ``directory`` (default: :func:`default_cache_dir`)."""
        base = Path(directory) if directory is not None else default_cache_dir()
        return cls(base / "responses.sqlite")

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or ``None``."""
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``key``."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)",
            (key, json.dumps(value, ensure_ascii=False)),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()
