"""One pool slot: a supervisor (container) and the host end of its protocol."""

from __future__ import annotations

import asyncio
import base64
import itertools
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, cast

from sf_sandbox._json import json_object
from sf_sandbox._protocol import HEADER, FrameDecoder, encode
from sf_sandbox.backends.base import Backend, Connection
from sf_sandbox.errors import SandboxConfigError, SandboxError, SupervisorError
from sf_sandbox.hostcalls import HostCalls, Lane, reply_body
from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.preload import Preload
from sf_sandbox.result import Result, Status

START_TIMEOUT = 60.0
GRACE = 15.0
"""Seconds past a job's timeout before the host gives up on the supervisor and kills the box."""
OUTBOX_FRAMES = 1024
"""Frames waiting for the writer. The supervisor keeps at most ``host_calls_in_flight`` calls of
its job with the host, so only a misbehaving supervisor fills this; it is then killed."""
SETUP_FAILURES = 2
"""Consecutive jobs failing set-up after which a slot is replaced even if it did not say tainted."""

_ids = itertools.count(1)


class Worker:
    """Owns one container.

    Runs one job at a time per lane (``lanes`` of them, 1 by default); ``tainted`` means: replace
    me (once no lane runs a job).

    With ``lanes`` > 1 the container's PID 1 is the supervisor's ``Multiplexer``: every frame to
    lane ``i`` goes wrapped (:meth:`_to_lane`); replies need no routing (job ids are unique).

    Threads: the backend's reader calls ``_on_data`` and never blocks: host calls are queued on
    :class:`HostCalls`, and the frames the reader itself answers go to a bounded queue that a
    writer thread sends. Other threads (``run``, host-call threads) send under the same lock and
    empty the queue as they go, so a frame never waits for a thread hand-off. ``run`` waits on an
    event and never on the engine (a kill is sent from a thread of its own).
    """

    def __init__(
        self,
        backend: Backend,
        limits: Limits,
        hostcalls: HostCalls,
        preload: Preload | None = None,
        lanes: int = 1,
    ) -> None:
        self.limits = limits
        self.lanes = lanes
        """Concurrent jobs this container runs (each in a lane of its own)."""
        self.in_use = 0
        """Lanes running a job now (kept by the pool, under its lock)."""
        self.retired = False
        """Set by the pool once the container is being closed."""
        self.hostcalls = hostcalls
        self.tainted = False
        self.taint_reason = ""
        self._decoder = FrameDecoder()
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[int, _Running] = {}
        """The jobs running now, by their (pool-wide unique) id."""
        self._hello: dict[str, Any] = {}
        self._outbox: queue.Queue[tuple[bytes, ...] | None] = queue.Queue(OUTBOX_FRAMES)
        self._send_lock = threading.Lock()
        self.setup_failures = 0
        """Consecutive jobs of this slot whose set-up failed."""
        self.conn: Connection
        extra = {"lanes": lanes} if lanes > 1 else {}
        self.conn, config = backend.start(limits, self._on_data, self._on_close, **extra)
        if preload is not None:
            config["preload"] = preload.to_config()
        self._writer = threading.Thread(target=self._write, name=f"sf-writer-{self.conn.label}", daemon=True)
        try:
            self.conn.send(encode(config))
            self._writer.start()
            if not self._ready.wait(START_TIMEOUT) or self._closed.is_set() and not self._ready.is_set():
                raise SupervisorError(
                    f"sandbox supervisor did not start in {self.conn.label}: "
                    f"{self.conn.diagnostics()[-500:]!r}"
                )
            if self._hello.get("error"):
                raise SandboxConfigError(f"sandbox {self.conn.label}: {self._hello['error']}")
        except BaseException:
            self._outbox.put_nowait(None)
            self.conn.close()
            raise

    # reader-thread callbacks
    def _on_data(self, chunk: bytes) -> None:
        try:
            frames = self._decoder.feed(chunk)
        except ValueError:
            self._fail("corrupt protocol stream")
            return
        for frame in frames:
            op = frame.get("op")
            if op == "ready":
                self._hello = frame
                self._ready.set()
            elif op == "result":
                with self._lock:
                    running = self._jobs.get(frame.get("id"))  # type: ignore[arg-type]
                if running is not None:
                    running.box.append(frame)
                    running.done.set()
            elif op == "hostcall":
                self._hostcall(frame)

    def _on_close(self) -> None:
        self._closed.set()
        self._ready.set()
        with self._lock:
            running = list(self._jobs.values())
        for job in running:
            job.done.set()

    def _fail(self, reason: str) -> None:
        self.tainted = True
        self.taint_reason = reason
        self._kill_soon()

    def _kill_soon(self) -> None:
        """Kill the container from a thread of its own: an engine that hangs never holds us."""
        threading.Thread(target=self.conn.kill, name=f"sf-kill-{self.conn.label}", daemon=True).start()

    # sending: the reader only queues; any other thread may send under the lock
    def _send(self, *chunks: bytes) -> None:
        """Queue ``chunks`` (sent back to back) for the writer thread.

        Never blocks: this is what the reader uses. A full queue means a peer that stopped
        reading: it is killed.
        """
        try:
            self._outbox.put_nowait(chunks)
        except queue.Full:
            self._fail("the supervisor stopped reading")

    def _send_now(self, *chunks: bytes) -> None:
        """Send ``chunks`` from this (non-reader) thread, then whatever is queued.

        May block on the connection, so the reader never calls it. Saves a thread hand-off per
        frame.
        """
        with self._send_lock:
            self._emit(chunks)
            self._drain_queue()

    def _emit(self, chunks: tuple[bytes, ...]) -> None:
        try:
            for data in chunks:
                self.conn.send(data)
        except OSError:
            pass  # the reader sees the end of the stream and reports it

    def _drain_queue(self) -> None:
        while True:
            try:
                chunks = self._outbox.get_nowait()
            except queue.Empty:
                return
            if chunks is None:  # the writer's stop mark: leave it for the writer
                self._outbox.put_nowait(None)
                return
            self._emit(chunks)

    def _write(self) -> None:
        """The writer thread: sends what the reader queued (frames queued by others too)."""
        while True:
            chunks = self._outbox.get()
            if chunks is None:
                return
            with self._send_lock:
                self._emit(chunks)
                self._drain_queue()

    def _hostcall(self, frame: dict[str, Any]) -> None:
        job_id, call = frame.get("id"), frame.get("call")
        req = json_object(frame.get("req"))
        with self._lock:
            running = self._jobs.get(job_id)  # type: ignore[arg-type]
        if running is None or req is None:
            return  # a finished job's call: nothing of it runs
        call_id = req.get("call_id")
        reader = threading.current_thread()  # _hostcall runs on the connection's reader

        def reply(payload: dict[str, Any]) -> None:
            # a small routing frame, then the job-ready reply as a raw frame the supervisor
            # forwards without decoding it (one JSON encoding in all)
            body = reply_body(payload, call_id)
            head = encode({"op": "hostcall_result", "id": job_id, "call": call, "body": len(body)})
            chunks = self._to_lane(running.lane, head + HEADER.pack(len(body)), body)
            if threading.current_thread() is reader:
                self._send(*chunks)  # never block the reader
            else:
                self._send_now(*chunks)

        self.hostcalls.dispatch(
            str(req.get("name")),
            # the supervisor checked their shapes (a list, an object) before relaying the call
            list(cast("list[Any]", req.get("args") or [])),
            dict(cast("dict[str, Any]", req.get("kwargs") or {})),
            running.loop,
            reply,
            lane=running.calls,
            size=int(frame.get("size") or 0),
        )

    # running a job
    def _to_lane(self, lane: int, *chunks: bytes) -> tuple[bytes, ...]:
        """``chunks`` (whole frames) addressed to ``lane``.

        Unchanged with one lane, else behind a ``{"op": "lane"}`` head whose raw frame holds them
        (the multiplexer forwards it unread).
        """
        if self.lanes == 1:
            return chunks
        size = sum(len(c) for c in chunks)
        return (encode({"op": "lane", "lane": lane, "body": size}) + HEADER.pack(size), *chunks)

    def run(self, job: Job, loop: asyncio.AbstractEventLoop | None = None, lane: int = 0) -> Result:
        """Run ``job`` in ``lane`` (one job per lane at a time); never raises for anything the job does."""
        limits = job.limits or self.limits
        if self._closed.is_set():
            self.tainted = True
            diag = " | ".join(self.conn.diagnostics().strip().splitlines()[-3:])
            return Result(
                status=Status.SANDBOX_ERROR,
                id=job.id,
                error="sandbox container is gone" + (f": {diag}" if diag else ""),
            )
        too_big = job.input_bytes > limits.file_size_mb * 1024 * 1024
        if too_big:
            return Result(
                status=Status.SANDBOX_ERROR,
                id=job.id,
                error=(
                    f"job input ({job.input_bytes} bytes of source, stdin and files) exceeds the "
                    f"{limits.file_size_mb} MiB work dir; raise Limits.file_size_mb"
                ),
            )
        job_id = next(_ids)
        done = threading.Event()
        box: list[dict[str, Any]] = []
        calls = self.hostcalls.open_lane(limits.host_calls_in_flight, limits.host_call_bytes)
        with self._lock:
            self._jobs[job_id] = _Running(done=done, box=box, calls=calls, loop=loop, lane=lane)
        request = {
            "op": "run",
            "id": job_id,
            "job": {
                "source": job.source,
                "argv": list(job.argv) if job.argv is not None else None,
                "stdin": base64.b64encode(job.stdin).decode(),
                "files": {k: base64.b64encode(v).decode() for k, v in job.files.items()},
                "collect": list(job.collect),
                "env": dict(job.env),
                "args": list(job.args),
                "timeout": limits.timeout,
                "output_bytes": limits.output_bytes,
                "file_size": limits.file_size_mb * 1024 * 1024,
                "files_out_bytes": limits.files_out_bytes,
                "host_calls": limits.host_calls,
                "host_calls_in_flight": limits.host_calls_in_flight,
                "host_call_bytes": limits.host_call_bytes,
                "pids": self.limits.pids,
            },
        }
        started = time.monotonic()
        self._send_now(*self._to_lane(lane, encode(request)))
        if self._closed.is_set():
            done.set()  # the container went while we sent: _on_close may have run before we registered
        finished = done.wait(limits.timeout + GRACE)
        with self._lock:
            self._jobs.pop(job_id, None)
        self.hostcalls.close_lane(calls)  # nothing of this job runs from now on
        if not finished or not box:
            self.tainted = True
            self._kill_soon()
            why = "did not answer in time" if not finished else "died"
            diag = self.conn.diagnostics().strip().splitlines()[-3:]
            return Result(
                status=Status.SANDBOX_ERROR,
                id=job.id,
                duration=time.monotonic() - started,
                error=f"sandbox supervisor {why}" + (f": {' | '.join(diag)}" if diag else ""),
            )
        return self._result(box[0], job)

    def _result(self, frame: dict[str, Any], job: Job) -> Result:
        if frame.get("tainted"):
            self.tainted = True
            self.taint_reason = str(frame.get("taint") or "")
        self.setup_failures = self.setup_failures + 1 if frame.get("setup_failed") else 0
        if self.setup_failures >= SETUP_FAILURES:
            self.tainted = True
            self.taint_reason = f"{self.setup_failures} jobs in a row failed set-up"
        try:
            status = Status(frame.get("status"))
        except ValueError:
            status = Status.SANDBOX_ERROR
        encoded: dict[str, str] = frame.get("files") or {}
        files = {k: base64.b64decode(v) for k, v in encoded.items()}
        error = frame.get("error")
        if frame.get("file_errors") and status is Status.OK:
            error = "; ".join(frame["file_errors"])
        return Result(
            status=status,
            exit_code=frame.get("exit_code"),
            stdout_bytes=base64.b64decode(frame.get("stdout") or ""),
            stderr_bytes=base64.b64decode(frame.get("stderr") or ""),
            stdout_truncated=bool(frame.get("stdout_truncated")),
            stderr_truncated=bool(frame.get("stderr_truncated")),
            duration=float(frame.get("duration") or 0.0),
            files=files,
            error=error,
            id=job.id,
        )

    def close(self) -> None:
        """Ask the supervisor to stop, then remove the container (waits for the engine)."""
        try:
            self._outbox.put_nowait((encode({"op": "shutdown"}),))
            self._outbox.put_nowait(None)
        except queue.Full:
            pass
        self._writer.join(timeout=5)
        self.conn.close()


@dataclass(slots=True)
class _Running:
    """One job in flight: what the reader needs to answer its frames."""

    done: threading.Event
    box: list[dict[str, Any]]
    calls: Lane
    loop: asyncio.AbstractEventLoop | None
    lane: int


def with_id(result: Result, job_id: str | None) -> Result:
    """``result`` carrying ``job_id``."""
    return result if result.id == job_id else replace(result, id=job_id)


__all__ = ["Worker", "SandboxError"]
