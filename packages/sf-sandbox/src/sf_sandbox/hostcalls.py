"""Host calls: functions the host exposes to jobs by name.

The host decides what is callable: a ``Mapping[str, Callable]`` handed to :class:`Sandbox`.
Arguments and return values cross as JSON. A function may be sync (run in a thread pool) or
``async`` (run on the event loop of the ``arun``/``arun_many`` caller, or on a private loop for
the sync API). An exception in the function becomes ``HostCallError`` inside the job, with
``"<ExceptionType>: <message>"``; the host's traceback never crosses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sf_sandbox.errors import SandboxConfigError

HostFunction = Callable[..., Any]


class HostCalls:
    """Dispatches host-call requests to registered functions without blocking the caller."""

    def __init__(self, functions: Mapping[str, HostFunction] | None, max_workers: int = 8) -> None:
        self.functions = dict(functions or {})
        for name, fn in self.functions.items():
            if not isinstance(name, str) or not callable(fn):
                raise SandboxConfigError(f"host call {name!r} must map a str name to a callable")
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._max_workers = max_workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def dispatch(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop | None,
        reply: Callable[[dict[str, Any]], None],
    ) -> None:
        """Start the call; ``reply`` gets ``{"ok", "value"|"error"}`` exactly once, from any thread."""
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            reply({"ok": False, "error": f"unknown host function {name!r} (available: {known})"})
            return

        def finish(value: Any = None, exc: BaseException | None = None) -> None:
            if exc is not None:
                reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                return
            try:
                json.dumps(value)
            except (TypeError, ValueError) as err:
                reply({"ok": False, "error": f"host function {name!r} returned a non-JSON value: {err}"})
                return
            reply({"ok": True, "value": value})

        if inspect.iscoroutinefunction(fn):
            target = loop if loop is not None and loop.is_running() else self._private_loop()
            fut = asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), target)

            def done(f: concurrent.futures.Future[Any]) -> None:
                exc = f.exception()
                finish(None if exc else f.result(), exc)

            fut.add_done_callback(done)
            return

        def call() -> None:
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported to the job
                finish(exc=exc)
                return
            finish(value)

        self._executor().submit(call)

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
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
