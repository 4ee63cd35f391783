"""Host calls: functions the host exposes to jobs by name.

The host decides what is callable: a ``Mapping[str, Callable]`` handed to :class:`Sandbox`.
Arguments and return values cross as JSON. A function may be sync (run in a thread pool) or
``async`` (run on the event loop of the ``arun``/``arun_many`` caller, or on a private loop for
the sync API). An exception in the function becomes ``HostCallError`` inside the job, with
``"<ExceptionType>: <message>"``; the host's traceback never crosses.

Every job gets a :class:`Lane`: at most ``Limits.host_calls_in_flight`` of its calls run at once
(sync and async alike), the arguments of its queued and running calls total at most
``Limits.host_call_bytes``, lanes take turns for the shared threads (round robin), and when the
job ends its lane is closed: queued calls never start, running async calls are cancelled, and a
running sync call (Python cannot interrupt a thread) finishes unseen, its reply dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sf_sandbox._protocol import MAX_DEPTH, MAX_REPLY, too_deep
from sf_sandbox.errors import SandboxConfigError

HostFunction = Callable[..., Any]
Reply = Callable[[dict[str, Any]], None]
"""Receives ``{"ok": True, "value": …}`` or ``{"ok": False, "error": "…"}`` exactly once."""

DEFAULT_THREADS = 64
"""Threads shared by every job's sync host calls (each job holds at most its in-flight cap)."""


@dataclass(eq=False, slots=True)
class _Call:
    name: str
    fn: HostFunction
    args: list[Any]
    kwargs: dict[str, Any]
    size: int
    reply: Reply
    loop: asyncio.AbstractEventLoop | None
    lane: Lane
    future: concurrent.futures.Future[Any] | None = None


@dataclass(eq=False, slots=True)
class Lane:
    """One job's share of the host: its cap, its byte budget and its calls."""

    in_flight: int
    """Most calls of the job running at once."""
    byte_budget: int
    """Most bytes of arguments across the job's queued and running calls."""
    queued: deque[_Call] = field(default_factory=deque[_Call])
    running: set[_Call] = field(default_factory=set[_Call])
    bytes: int = 0
    closed: bool = False
    started: int = 0
    """Calls of this job that began to run (for tests and accounting)."""
    served: int = -1
    """When this lane last got a call started (the scheduler's tick); -1 before its first."""


class HostCalls:
    """Dispatches host-call requests to registered functions without blocking the caller.

    ``dispatch`` never blocks and never runs the function on the caller's thread (the caller is
    the connection's reader, which must keep draining the channel).
    """

    def __init__(
        self, functions: Mapping[str, HostFunction] | None, max_workers: int = DEFAULT_THREADS
    ) -> None:
        self.functions = dict(functions or {})
        for name, fn in self.functions.items():
            # callers without a type checker may pass anything
            if not isinstance(cast(object, name), str) or not callable(fn):
                raise SandboxConfigError(f"host call {name!r} must map a str name to a callable")
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._max_workers = max_workers
        self._threads_busy = 0
        self._tick = 0
        self._ready: deque[Lane] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # lanes
    def open_lane(self, in_flight: int, byte_budget: int) -> Lane:
        """A lane for one job: ``in_flight`` calls at once, ``byte_budget`` bytes of arguments."""
        return Lane(in_flight=max(1, in_flight), byte_budget=byte_budget)

    def close_lane(self, lane: Lane) -> None:
        """The job ended: drop its queued calls, cancel its running async ones, mute its replies."""
        with self._lock:
            lane.closed = True
            lane.queued.clear()
            running = list(lane.running)
        for call in running:
            if call.future is not None and inspect.iscoroutinefunction(call.fn):
                call.future.cancel()

    # calls
    def dispatch(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop | None,
        reply: Reply,
        lane: Lane | None = None,
        size: int = 0,
    ) -> None:
        """Queue the call on ``lane`` (a private unlimited lane when None); ``reply`` gets the answer.

        ``size`` is the request's size in bytes, charged to the lane's budget while the call is
        queued or running. Refusals (unknown name, budget passed) are answered at once.
        """
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            reply({"ok": False, "error": f"unknown host function {name!r} (available: {known})"})
            return
        if lane is None:
            lane = Lane(in_flight=1 << 30, byte_budget=1 << 62)
        call = _Call(name, fn, args, kwargs, size, reply, loop, lane)
        with self._lock:
            refusal = self._refusal(lane, size)
            if refusal is None:
                lane.queued.append(call)
                lane.bytes += size
                if lane not in self._ready:
                    self._ready.append(lane)
        if refusal is not None:
            reply({"ok": False, "error": refusal})
            return
        self._pump()

    @staticmethod
    def _refusal(lane: Lane, size: int) -> str | None:
        if lane.closed:
            return "the job has ended"
        if lane.bytes + size > lane.byte_budget:
            return (
                f"host call refused: its {size} bytes of arguments would pass the job's budget of "
                f"{lane.byte_budget} bytes for calls in flight (Limits.host_call_bytes)"
            )
        if len(lane.queued) + len(lane.running) >= 4 * lane.in_flight:
            return f"host call refused: more than {4 * lane.in_flight} calls of this job are waiting"
        return None

    def _pump(self) -> None:
        """Start queued calls while the caps allow.

        The next call comes from the lane served
        longest ago (round robin across jobs), so a job with a long queue cannot starve one
        that waited; an ``async`` call needs no thread and starts even when all are busy.
        """
        starts: list[_Call] = []
        with self._lock:
            while True:
                self._ready = deque(lane for lane in self._ready if not lane.closed and lane.queued)
                open_lanes = [lane for lane in self._ready if len(lane.running) < lane.in_flight]
                if self._threads_busy >= self._max_workers:
                    open_lanes = [lane for lane in open_lanes if _is_async(lane.queued[0].fn)]
                if not open_lanes:
                    break
                lane = min(open_lanes, key=lambda lane: lane.served)
                call = lane.queued.popleft()
                lane.running.add(call)
                lane.started += 1
                self._tick += 1
                lane.served = self._tick
                self._threads_busy += not _is_async(call.fn)
                starts.append(call)
        for call in starts:
            self._start(call)

    def _start(self, call: _Call) -> None:
        lane = call.lane
        if inspect.iscoroutinefunction(call.fn):
            loop = call.loop
            target = loop if loop is not None and loop.is_running() else self._private_loop()

            async def guarded() -> Any:
                if lane.closed:  # the job ended before the loop got to this call
                    raise asyncio.CancelledError
                return await call.fn(*call.args, **call.kwargs)

            fut = asyncio.run_coroutine_threadsafe(guarded(), target)
            call.future = fut

            def done(f: concurrent.futures.Future[Any]) -> None:
                if f.cancelled():
                    self._finish(lane, call, exc=asyncio.CancelledError("the job has ended"))
                    return
                exc = f.exception()
                self._finish(lane, call, None if exc else f.result(), exc)

            fut.add_done_callback(done)
            return

        def run() -> None:
            if lane.closed:  # the job ended before a thread got to this call: it never runs
                self._finish(lane, call, thread=True)
                return
            try:
                value = call.fn(*call.args, **call.kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported to the job
                self._finish(lane, call, exc=exc, thread=True)
                return
            self._finish(lane, call, value, thread=True)

        self._executor().submit(run)

    def _finish(
        self,
        lane: Lane,
        call: _Call,
        value: Any = None,
        exc: BaseException | None = None,
        thread: bool = False,
    ) -> None:
        with self._lock:
            lane.running.discard(call)
            lane.bytes -= call.size
            self._threads_busy -= thread
            closed = lane.closed
            if lane.queued and not closed and lane not in self._ready:
                self._ready.append(lane)
        if not closed:
            call.reply(_answer(call.name, value, exc))
        self._pump()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._max_workers, "sf-hostcall")
            return self._pool

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="sf-hostcall-loop", daemon=True).start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        """Stop the shared threads and the private loop (running calls finish unseen)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None


def _is_async(fn: HostFunction) -> bool:
    return inspect.iscoroutinefunction(fn)


def _answer(name: str, value: Any, exc: BaseException | None) -> dict[str, Any]:
    """The reply for a finished call: its value, or the error it raised.

    Values nested deeper than ``MAX_DEPTH`` become an error here; whether the value is JSON at
    all, and no larger than ``MAX_REPLY``, is checked when the reply is encoded (``reply_body``).
    """
    if exc is not None:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if too_deep(value, MAX_DEPTH):
        error = f"host function {name!r} returned a value nested deeper than {MAX_DEPTH} levels"
        return {"ok": False, "error": error}
    return {"ok": True, "value": value, "name": name}


def reply_body(payload: dict[str, Any], call_id: Any) -> bytes:
    """The job-ready JSON of a reply (``{"ok", "value", "error", "call_id"}``), encoded once.

    A value that is not JSON, or whose JSON passes ``MAX_REPLY`` bytes, becomes an error reply.
    """
    name = payload.get("name", "host function")
    body = {"ok": payload.get("ok"), "value": payload.get("value"), "error": payload.get("error")}
    body["call_id"] = call_id
    try:
        data = json.dumps(body, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError, OverflowError) as err:
        return reply_body(
            {"ok": False, "error": f"host function {name!r} returned a non-JSON value: {err}"}, call_id
        )
    if len(data) > MAX_REPLY:
        error = f"host function {name!r} returned {len(data)} bytes of JSON; the limit is {MAX_REPLY}"
        return reply_body({"ok": False, "error": error}, call_id)
    return data
