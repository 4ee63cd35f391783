"""Wire format between the host and the supervisor: 4-byte big-endian length + JSON."""

from __future__ import annotations

import json
import struct
from typing import Any, cast

from sf_sandbox._json import json_list, json_object

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
MAX_DEPTH = 100
"""Deepest nesting of lists/dicts in a host call's arguments or reply (the supervisor's limit too)."""
MAX_REPLY = 32 * 1024 * 1024
"""Largest JSON reply a host function may return to a job; a bigger one becomes an error."""


def too_deep(obj: Any, limit: int) -> bool:
    """True when lists/dicts in ``obj`` nest deeper than ``limit`` (iterative: any depth is safe)."""
    stack: list[tuple[object, int]] = [(obj, 1)] if isinstance(obj, list | dict) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        members = json_object(item)
        for child in members.values() if members is not None else json_list(item) or ():
            if isinstance(child, list | dict):
                stack.append((cast(object, child), depth + 1))  # its items are checked when popped
    return False


def encode(obj: dict[str, Any]) -> bytes:
    """One frame for ``obj``."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


class FrameDecoder:
    """Turns a byte stream into frames; raises ValueError on a corrupt stream.

    A frame whose JSON cannot be decoded within the interpreter's recursion limit is skipped and
    stands as ``{"op": "undecodable"}`` (the stream itself is still in step).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buf += chunk
        frames: list[dict[str, Any]] = []
        while len(self._buf) >= 4:
            (n,) = HEADER.unpack_from(self._buf)
            if n > MAX_FRAME:
                raise ValueError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
            if len(self._buf) < 4 + n:
                break
            try:
                frames.append(json.loads(bytes(self._buf[4 : 4 + n])))
            except RecursionError:
                frames.append({"op": "undecodable"})
            del self._buf[: 4 + n]
        return frames


class DockerStreamDemux:
    """Splits Docker's multiplexed attach stream (8-byte headers) into stdout and stderr bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> tuple[bytes, bytes]:
        self._buf += chunk
        out, err = bytearray(), bytearray()
        while len(self._buf) >= 8:
            kind = self._buf[0]
            size = int.from_bytes(self._buf[4:8], "big")
            if len(self._buf) < 8 + size:
                break
            payload = self._buf[8 : 8 + size]
            (err if kind == 2 else out).extend(payload)
            del self._buf[: 8 + size]
        return bytes(out), bytes(err)
