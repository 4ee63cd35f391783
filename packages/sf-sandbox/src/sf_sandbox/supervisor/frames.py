# pyright: reportTypeCommentUsage=false
"""Frames on the host channel: length-prefixed JSON, an incremental reader and a never-blocking writer."""

import base64
import collections
import json
import os
import select
import struct
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union  # noqa: F401 (type comments)

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
MAX_HOST_FRAME = 16 * 1024 * 1024
"""Largest host-call request a job may send; a bigger one is refused from its header."""
MAX_DEPTH = 100
"""Deepest nesting of lists/dicts in a host call's arguments (the host checks replies the same way)."""

# Frame I/O on the host channel ------------------------------------------------------------------


class Outbox:
    """Bytes waiting for a non-blocking descriptor, written in order and never blocking.

    Each item carries a tag; ``write`` returns the tags of the items it finished, so a caller
    learns when a whole frame has left (the relay frees a call's slot only then).
    """

    def __init__(self):
        # type: () -> None
        self.items = collections.deque()  # type: Deque[List[Any]]  # [data left, tag, begun to leave]
        self.size = 0

    def put(self, data, tag=None):
        # type: (bytes, object) -> None
        """Queue ``data`` (after everything queued) under ``tag``; empty ``data`` is ignored."""
        if data:
            self.items.append([memoryview(data), tag, False])
            self.size += len(data)

    def drop(self, tag):
        # type: (object) -> None
        """Forget the items tagged ``tag`` that have not begun to leave."""
        keep = collections.deque()  # type: Deque[List[Any]]
        for item in self.items:
            if item[1] == tag and not item[2]:
                self.size -= len(item[0])
            else:
                keep.append(item)
        self.items = keep

    def write(self, writer):
        # type: (Callable[[memoryview], int]) -> List[object]
        """Write what ``writer`` takes now; return the tags of the items fully written.

        ``writer`` raises BlockingIOError when the descriptor is full; other OSErrors propagate.
        """
        done = []  # type: List[object]
        while self.items:
            item = self.items[0]
            try:
                n = writer(item[0])
            except (BlockingIOError, InterruptedError):
                break
            self.size -= n
            item[0] = item[0][n:]
            item[2] = True
            if len(item[0]):
                break  # partial write: the descriptor is full
            self.items.popleft()
            done.append(item[1])
        return done

    def clear(self):
        # type: () -> List[object]
        """Drop everything queued, begun or not; return the tags of the items dropped, in order."""
        tags = [item[1] for item in self.items]
        self.items.clear()
        self.size = 0
        return tags


class Channel:
    """Frames to and from the host: an incremental reader and a never-blocking writer.

    Frames queued with ``queue`` leave when ``flush`` is called with the descriptor writable, so
    the job loop keeps enforcing limits however slowly the host reads. ``send`` (between jobs)
    waits until its frame is written.
    """

    def __init__(self, rfd, wfd):
        # type: (int, int) -> None
        self.rfd = rfd
        self.wfd = wfd
        self.buf = bytearray()
        self.eof = False
        self.head = None  # type: Optional[Dict[str, Any]]  # a frame whose raw body comes next
        self.out = Outbox()
        os.set_blocking(wfd, False)

    def queue(self, data):
        # type: (bytes) -> None
        """Queue one encoded frame (``frame()``)."""
        self.out.put(data)

    def flush(self):
        # type: () -> bool
        """Write what the descriptor takes now; True when nothing is left."""
        self.out.write(lambda view: os.write(self.wfd, view))
        return not self.out.items

    def send(self, obj):
        # type: (Dict[str, Any]) -> None
        """Write ``obj`` (after everything queued), waiting for the host to take it."""
        self.queue(frame(obj))
        poller = select.poll()
        poller.register(self.wfd, select.POLLOUT)
        while not self.flush():
            try:
                poller.poll()
            except InterruptedError:
                pass

    def feed(self):
        # type: () -> List[Dict[str, Any]]
        """Read what is available (call when poll says readable). Returns parsed frames."""
        try:
            chunk = os.read(self.rfd, 1 << 20)
        except InterruptedError:
            return []
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        return self._parse()

    def _parse(self):
        # type: () -> List[Dict[str, Any]]
        """Whole frames from the buffer.

        A frame with ``body`` is followed by a raw frame, kept
        undecoded as ``raw`` (its 4-byte header included: a host-call reply exactly as the job
        reads it, forwarded without a copy into a new frame).
        """
        frames = []  # type: List[Dict[str, Any]]
        buf, pos = self.buf, 0
        while len(buf) - pos >= 4:
            (n,) = HEADER.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise ValueError("frame too large")
            if len(buf) - pos < 4 + n:
                break
            start, pos = pos, pos + 4 + n
            if self.head is not None:
                with memoryview(buf) as view:
                    self.head["raw"] = view[start:pos].tobytes()  # one copy
                frames.append(self.head)
                self.head = None
                continue
            msg = json.loads(buf[start + 4 : pos].decode())
            if "body" in msg:
                self.head = msg
            else:
                frames.append(msg)
        if pos:
            del buf[:pos]
        return frames

    def recv_blocking(self):
        # type: () -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]]]
        """Wait for one whole frame; return it and the frames that arrived with it.

        Returns ``(None, [])`` once the host closed its end. Raises ValueError on a frame over
        ``MAX_FRAME`` (and what ``json.loads`` raises on a frame that is not JSON).
        """
        while True:
            frames = self._parse()
            if frames:
                return frames[0], frames[1:]
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                return None, []
            self.buf += chunk


def frame(obj):
    # type: (Dict[str, Any]) -> bytes
    """One length-prefixed JSON frame."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def too_deep(obj, limit):
    # type: (Any, int) -> bool
    """True when lists/dicts in ``obj`` nest deeper than ``limit`` (iterative: any depth)."""
    stack = [(obj, 1)] if isinstance(obj, (list, dict)) else []  # type: List[Tuple[Union[List[Any], Dict[Any, Any]], int]]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (list, dict)):
                # a JSON value: isinstance narrows its Any to list[Unknown] | dict[Unknown, Unknown]
                stack.append((child, depth + 1))  # pyright: ignore[reportUnknownArgumentType]
    return False


def b64(data):
    # type: (bytes) -> str
    """``data`` as base64 text (ASCII ``str``)."""
    return base64.b64encode(data).decode()


def unb64(text):
    # type: (str) -> bytes
    """The bytes that the base64 ``text`` encodes; ``b""`` for an empty ``text``."""
    return base64.b64decode(text.encode()) if text else b""
