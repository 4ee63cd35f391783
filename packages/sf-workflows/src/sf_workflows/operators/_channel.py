"""Pipelined host calls from inside the sandbox (stdlib only).

``sf_host.call`` holds a lock across request and reply, so a workflow's concurrent operators
(``asyncio.gather``) would reach the LLM one at a time. This channel writes requests on the
same host-call descriptor without waiting and lets one reader thread hand each reply to its
caller. The supervisor relays replies in completion order without an id, so the host function
puts the caller's request id (``rid``) in its reply value and never raises (its failures come
back as ``{"rid": ..., "error": ...}``). A reply without a ``rid`` (the sandbox refused a call:
limit reached, malformed) fails every pending call with its message.

Wire format (that of ``sf_host``): 4-byte big-endian length, then JSON ``{"name", "args",
"kwargs"}``; the reply frame is JSON ``{"ok", "value" | "error"}``.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import threading
from concurrent.futures import Future
from typing import Any, cast

_HEADER = struct.Struct(">I")


class ChannelError(RuntimeError):
    """The host refused or failed a call."""


class Channel:
    """Concurrent host calls over the descriptor in ``$SF_HOST_FD``."""

    def __init__(self, fd: int):
        self._fd = fd
        self._write_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._reader: threading.Thread | None = None
        self._dead: str | None = None

    @classmethod
    def from_env(cls) -> Channel | None:
        """The job's channel, or ``None`` when this process has none."""
        text = os.environ.get("SF_HOST_FD", "")
        return cls(int(text)) if text else None

    def submit(self, name: str, *args: Any) -> Future[Any]:
        """Send ``name(rid, *args)``; the future gets the reply value (a dict with ``rid``)."""
        future: Future[Any] = Future()
        rid = next(self._ids)
        if self._dead:
            future.set_exception(ChannelError(self._dead))
            return future
        self._pending[rid] = future
        payload = json.dumps({"name": name, "args": [args[0], rid, *args[1:]], "kwargs": {}}).encode()
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        try:
            with self._write_lock:
                if self._reader is None:
                    self._reader = threading.Thread(
                        target=self._read_loop, name="sf-host-reader", daemon=True
                    )
                    self._reader.start()
                while data:
                    data = data[os.write(self._fd, data) :]
        except OSError as exc:
            self._pending.pop(rid, None)
            future.set_exception(ChannelError(f"host-call channel failed: {exc}"))
        return future

    def _read_exact(self, n: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < n:
            chunk = os.read(self._fd, n - got)
            if not chunk:
                raise EOFError("host-call channel closed")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_loop(self) -> None:
        try:
            while True:
                (n,) = _HEADER.unpack(self._read_exact(4))
                reply = json.loads(self._read_exact(n).decode("utf-8", "replace"))
                value = reply.get("value") if reply.get("ok") else None
                # the host function's reply value: a JSON object (str keys) carrying our rid
                rid = cast("dict[str, object]", value).get("rid") if isinstance(value, dict) else None
                future = self._pending.pop(rid, None) if isinstance(rid, int) else None
                if future is not None:
                    future.set_result(value)
                    continue
                message = reply.get("error") or "host call refused"
                for key in list(self._pending):
                    pending = self._pending.pop(key, None)
                    if pending is not None and not pending.done():
                        pending.set_exception(ChannelError(str(message)))
        except (OSError, EOFError, ValueError) as exc:
            self._dead = f"host-call channel failed: {exc}"
            for key in list(self._pending):
                pending = self._pending.pop(key, None)
                if pending is not None and not pending.done():
                    pending.set_exception(ChannelError(self._dead))
