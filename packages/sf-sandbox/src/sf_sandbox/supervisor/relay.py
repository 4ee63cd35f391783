# pyright: reportTypeCommentUsage=false
"""The host-call relay of one job: its socket on one side, the host channel on the other."""

import json
import socket  # noqa: F401 (type comments)
from typing import Any, Dict, cast  # noqa: F401 (type comments)

from .frames import (
    HEADER,
    MAX_DEPTH,
    MAX_HOST_FRAME,
    Channel,  # noqa: F401 (type comments)
    Outbox,
    frame,
    too_deep,
)


class Relay:
    """Host calls of one job: the job's socket on one side, the host channel on the other.

    Invariants, each enforced here before anything reaches the host:

    * at most ``in_flight`` calls of the job are forwarded and unanswered; a call's slot is
      freed only once its reply has been written to the job, so a job that stops reading its
      replies stops its own calls, never the supervisor (the socket is simply not read);
    * the frames of calls in flight total at most ``budget`` bytes; a call past it is answered
      with an error at once;
    * a frame over ``MAX_HOST_FRAME`` is refused from its header (never read, never re-encoded):
      the job gets an error and its channel is shut;
    * a request is forwarded as the job's own bytes (no re-encoding, so no growth), after its
      shape and nesting depth (``MAX_DEPTH``) are checked;
    * nothing here blocks: the loop polls, reads and writes what is ready.
    """

    def __init__(self, sock, job_id, job, chan):
        # type: (socket.socket, Any, Dict[str, Any], Channel) -> None
        self.sock = sock
        self.job_id = job_id
        self.chan = chan
        self.max_calls = int(job.get("host_calls", 0))
        self.cap = max(1, int(job.get("host_calls_in_flight", 4)))
        self.budget = int(job.get("host_call_bytes", 32 << 20))
        self.calls = 0
        self.sizes = {}  # type: Dict[int, int]  # call number -> request bytes, until answered
        self.in_flight_bytes = 0
        self.inbuf = bytearray()
        self.to_job = Outbox()
        self.reading = True
        self.writing = True

    # polling
    def wants_read(self):
        # type: () -> bool
        """True while the job's socket should be polled for requests.

        That is: still reading, a slot free, and the replies to the job not backed up (under 1 MiB).
        """
        return self.reading and len(self.sizes) < self.cap and self.to_job.size < (1 << 20)

    def wants_write(self):
        # type: () -> bool
        """True while replies wait for the job and its socket can still take them."""
        return self.writing and bool(self.to_job.items)

    # job -> host
    def on_readable(self):
        # type: () -> None
        """Read what the job sent and handle the whole requests in it; its end of stream stops reading."""
        try:
            chunk = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.reading = False
            return
        self.inbuf += chunk
        self.parse()

    def parse(self):
        # type: () -> None
        """Handle each whole request in the buffer while a slot is free; an oversized one is refused."""
        while self.reading and len(self.sizes) < self.cap and len(self.inbuf) >= 4:
            (n,) = HEADER.unpack_from(self.inbuf)
            if n > MAX_HOST_FRAME:
                self.refuse_oversized(n)
                return
            if len(self.inbuf) < 4 + n:
                return
            raw = bytes(self.inbuf[4 : 4 + n])
            del self.inbuf[: 4 + n]
            self.request(raw)

    def request(self, raw):
        # type: (bytes) -> None
        """Check one request (the job's frame body ``raw``) and forward it to the host, or answer it at once.

        A malformed or too deeply nested request, one past the job's call limit, or one that would pass
        ``budget`` gets an error reply from here; otherwise it takes a slot and goes to the host unchanged.
        """
        self.calls += 1
        try:
            req = json.loads(raw.decode("utf-8", "surrogatepass"))
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            req = cast("Dict[str, Any]", req)
            if (
                not isinstance(req.get("name"), str)
                or not isinstance(req.get("args", []), list)
                or not isinstance(req.get("kwargs", {}), dict)
            ):
                raise ValueError("bad request shape")
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, RecursionError):
                exc = ValueError("arguments nest deeper than %d levels" % MAX_DEPTH)
            self.answer({"ok": False, "error": "malformed host call: %s" % exc})
            return
        call_id = req.get("call_id")
        if too_deep(req, MAX_DEPTH + 2):  # the request object and its args list are two levels
            self.answer(
                {"ok": False, "error": "host call arguments nest deeper than %d levels" % MAX_DEPTH},
                call_id,
            )
            return
        if self.calls > self.max_calls:
            self.answer({"ok": False, "error": "host call limit (%d) reached" % self.max_calls}, call_id)
            return
        if self.in_flight_bytes + len(raw) > self.budget:
            self.answer(
                {
                    "ok": False,
                    "error": "host call refused: its %d bytes of arguments would pass the job's "
                    "budget of %d bytes for calls in flight (Limits.host_call_bytes); "
                    "wait for replies or send less" % (len(raw), self.budget),
                },
                call_id,
            )
            return
        self.sizes[self.calls] = len(raw)
        self.in_flight_bytes += len(raw)
        head = '{"op":"hostcall","id":%s,"call":%d,"size":%d,"req":' % (
            json.dumps(self.job_id),
            self.calls,
            len(raw),
        )
        body = head.encode() + raw + b"}"
        self.chan.out.put(HEADER.pack(len(body)) + body, "hostcall")

    def stop(self):
        # type: () -> None
        """The job is over: forward nothing more of it (calls not yet sent to the host are dropped)."""
        self.reading = False
        self.chan.out.drop("hostcall")

    def refuse_oversized(self, n):
        # type: (int) -> None
        """Refuse a call whose frame is ``n`` bytes (over ``MAX_HOST_FRAME``) and shut the job's channel.

        The job gets an error reply; nothing more of it is read (its pending write fails, never hangs).
        """
        self.answer(
            {
                "ok": False,
                "error": "host call of %d bytes refused: the limit is %d bytes per call; "
                "this job's host-call channel is now closed" % (n, MAX_HOST_FRAME),
            }
        )
        self.reading = False
        self.inbuf = bytearray()
        try:
            self.sock.shutdown(socket.SHUT_RD)  # the job's pending write fails (EPIPE), never hangs
        except OSError:
            pass

    # host -> job
    def on_reply(self, msg):
        # type: (Dict[str, Any]) -> None
        """A ``hostcall_result`` from the host; replies to unknown or finished calls are dropped."""
        call = msg.get("call")
        if msg.get("id") != self.job_id or not isinstance(call, int) or call not in self.sizes:
            return
        if not self.writing:
            self.release(call)
            return
        raw = msg.get("raw")  # the job's frame, header included
        if raw is None:  # a reply the host encoded as one frame
            raw = frame({k: msg.get(k) for k in ("ok", "value", "error", "call_id")})
        self.to_job.put(raw, call)

    def answer(self, payload, call_id=None):
        # type: (Dict[str, Any], Any) -> None
        """A reply the supervisor gives itself (refusals); it holds no slot."""
        payload = dict(payload)
        payload["call_id"] = call_id
        self.to_job.put(frame(payload))

    def on_writable(self):
        # type: () -> None
        """Write replies to the job as far as its socket takes them; free the slots of those fully written.

        A job that closed its end gets nothing more (everything queued is dropped, its slots freed).
        """
        try:
            done = self.to_job.write(self.sock.send)
        except OSError:  # the job closed its end: nothing more can reach it
            self.writing = False
            done = self.to_job.clear()
        for call in done:
            self.release(call)
        if done and self.reading:
            self.parse()  # slots freed: requests already buffered may go now

    def release(self, call):
        # type: (object) -> None
        """Free the slot (and the bytes) of call number ``call``; no-op for None or a call not in flight."""
        if call is not None and call in self.sizes:
            self.in_flight_bytes -= self.sizes.pop(call)  # type: ignore[call-overload]

    def close(self):
        # type: () -> None
        """Close the supervisor's end of the job's host-call socket."""
        self.sock.close()
