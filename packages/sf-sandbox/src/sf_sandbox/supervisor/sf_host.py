"""Host calls from inside a sandbox job (stdlib only; importable as ``sf_host`` in every job).

    from sf_host import call, HostCallError
    reply = call("echo", "hello", n=3)

``call`` sends ``name``, ``args`` and ``kwargs`` (JSON-serialisable) to the supervisor, which
forwards them to the function the host registered under ``name`` and returns its JSON result.
It raises :class:`HostCallError` when the function raised, is unknown, the job's host-call
budget is spent, or the request is refused (over 16 MiB, nested deeper than 100 levels, past the
job's byte budget for calls in flight). Calls are serialised per process (thread-safe); child
processes of the job must not share the channel.

Wire format, for runtimes that pipeline calls (e.g. an asyncio workflow runtime): each request
is a 4-byte big-endian length + JSON ``{"name", "args", "kwargs", "call_id"?}`` written to fd
``SF_HOST_FD``; each reply is framed the same way, ``{"ok", "value"|"error", "call_id"}``, with
the request's ``call_id`` echoed. Replies to pipelined requests may come back in any order.
At most ``Limits.host_calls_in_flight`` calls of a job are with the host at once; the supervisor
reads further requests only as replies are read, so a runtime that pipelines simply waits.
"""

# Python 3.8 style (this file runs under the image's python3): type comments, not annotations.
# pyright: reportTypeCommentUsage=false

import json
import os
import select
import struct
import threading

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing into every job that imports this
if TYPE_CHECKING:
    from typing import Any, List, Optional  # noqa: F401 (type comments)

__all__ = ["call", "HostCallError", "available"]

_HEADER = struct.Struct(">I")
_lock = threading.Lock()


class HostCallError(Exception):
    """The host call failed; the message says why."""


def available():
    # type: () -> bool
    """True when this process has a host-call channel."""
    return os.environ.get("SF_HOST_FD", "") != ""


def _read_exact(fd, n):
    # type: (int, int) -> bytes
    chunks = []  # type: List[bytes]
    got = 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            raise HostCallError("host-call channel closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _refusal(fd):
    # type: (int) -> Optional[Any]
    """The reply already sent for a request the supervisor refused, or None."""
    try:
        if not select.select([fd], [], [], 5.0)[0]:
            return None
        (n,) = _HEADER.unpack(_read_exact(fd, 4))
        return json.loads(_read_exact(fd, n).decode())
    except (OSError, ValueError, HostCallError):
        return None


def call(name, *args, **kwargs):
    # type: (str, *Any, **Any) -> Any
    """Call the host function ``name`` and return its result (JSON values, as the host returned them)."""
    fd_text = os.environ.get("SF_HOST_FD", "")
    if not fd_text:
        raise HostCallError("no host-call channel in this process")
    fd = int(fd_text)
    payload = json.dumps({"name": name, "args": list(args), "kwargs": kwargs}).encode()
    with _lock:
        data = _HEADER.pack(len(payload)) + payload
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            # the supervisor refused the request from its header and shut the channel: its
            # answer (why) is waiting to be read
            reply = _refusal(fd)
            if reply is None:
                raise HostCallError("host-call channel failed: %s" % exc) from None
        else:
            try:
                (n,) = _HEADER.unpack(_read_exact(fd, 4))
                reply = json.loads(_read_exact(fd, n).decode())
            except OSError as exc:
                raise HostCallError("host-call channel failed: %s" % exc) from None
    if not reply.get("ok"):
        raise HostCallError(reply.get("error") or "host call failed")
    return reply.get("value")
