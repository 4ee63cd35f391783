"""Wire format between the host and the supervisor: 4-byte big-endian length + JSON."""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


def encode(obj: dict[str, Any]) -> bytes:
    """One frame for ``obj``."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


class FrameDecoder:
    """Turns a byte stream into frames; raises ValueError on a corrupt stream."""

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
            frames.append(json.loads(bytes(self._buf[4 : 4 + n])))
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
