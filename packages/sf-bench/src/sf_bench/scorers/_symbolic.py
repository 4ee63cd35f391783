"""math-verify equivalence checks in helper processes, with a hard time limit, from any thread.

math-verify bounds its own work with ``signal.alarm``, which works only in a process's main
thread, and sympy cannot be interrupted from another thread. So each check runs in a helper
process (``python -m sf_bench.scorers._math_worker``, started on first use and reused) where
math-verify's own timeouts are active, and the caller waits at most ``timeout`` seconds: a
helper that does not answer in time is killed and replaced, and the check counts as undecided.

Helpers are plain subprocesses speaking JSON lines over pipes (no multiprocessing start method,
so nothing re-imports the caller's ``__main__``); at most :data:`MAX_WORKERS` run at once (env
``SF_BENCH_MATH_WORKERS``), each used by one thread at a time. They exit when the parent closes
their stdin, and are killed at interpreter exit.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import cast

from sf_bench.errors import BenchError

DEFAULT_TIMEOUT = 10.0
"""Seconds a caller waits for one check (parsing both sides and verifying) before killing it."""

INNER_TIMEOUT = 3
"""Seconds math-verify itself allows each parse/verify step inside the helper (signal.alarm)."""

START_TIMEOUT = 120.0
"""Seconds a new helper may take to import math-verify and say it is ready."""


def _max_workers() -> int:
    raw = os.environ.get("SF_BENCH_MATH_WORKERS", "").strip()
    try:
        return max(1, int(raw)) if raw else 2
    except ValueError:
        return 2


MAX_WORKERS = _max_workers()
"""Helper processes at most (``$SF_BENCH_MATH_WORKERS``, default 2; a bad value means 2)."""


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONIOENCODING", "utf-8")
        # make sf_bench importable in the child however the parent found it
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty helper never blocks
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sf_bench.scorers._math_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            close_fds=True,
        )
        self._buffer = b""
        ready = self._read_line(START_TIMEOUT)
        if ready is None or json.loads(ready).get("ready") is not True:
            err = self._stderr_tail()
            self.kill()
            raise BenchError(
                f"the math-verify helper process did not start ({err or 'no output'}); "
                'is math-verify installed? pip install "math-verify[antlr4_13_2]>=0.9,<0.10"'
            )

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            data = self._stderr.read()
        except (OSError, ValueError):
            return ""
        lines = data.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def _read_line(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            poller = select.poll()  # poll, not select: works for descriptors >= FD_SETSIZE
            poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            if not poller.poll(max(1, int(remaining * 1000))):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8")

    def request(self, payload: dict[str, object], timeout: float) -> dict[str, object] | None:
        """Send one request; None if no answer in ``timeout`` s or the helper died."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(payload) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None
        try:
            line = self._read_line(timeout)
        except (OSError, ValueError):  # the pool was closed under us
            return None
        if line is None:
            return None
        try:
            reply: object = json.loads(line)
        except json.JSONDecodeError:
            return None
        return cast("dict[str, object]", reply) if isinstance(reply, dict) else None  # JSON: str keys

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a killed child always exits
            pass
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class _Pool:
    def __init__(self, max_workers: int) -> None:
        self._max = max_workers
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._starting = 0
        self._cond = threading.Condition()

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._workers.discard(worker)
                    worker.kill()
                if len(self._workers) + self._starting < self._max:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker()
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._starting -= 1
            self._workers.add(worker)
        return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._cond:
            if healthy and worker.alive() and worker in self._workers:
                self._idle.append(worker)
            else:
                self._workers.discard(worker)
            self._cond.notify()

    def call(self, payload: dict[str, object], timeout: float) -> dict[str, object] | None:
        worker = self._acquire()
        reply = None
        try:
            reply = worker.request(payload, timeout)
        finally:
            self._release(worker, healthy=reply is not None)
        return reply

    def close(self) -> None:
        with self._cond:
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.kill()


_POOL = _Pool(MAX_WORKERS)
atexit.register(_POOL.close)


def equivalent(
    gold: str, prediction: str, *, pred_is_boxed_content: bool, timeout: float | None = None
) -> bool | None:
    """math-verify's verdict on ``prediction`` against ``gold`` (a boxed answer's content).

    Args:
        gold: The gold answer (content of the reference's last box).
        prediction: The predicted box content, or the whole answer text.
        pred_is_boxed_content: True if ``prediction`` is a box's content (it is re-boxed for
            parsing); False to let math-verify extract from free text.
        timeout: Hard limit in seconds for this check (None: :data:`DEFAULT_TIMEOUT`).

    Returns:
        True/False, or None if the check did not finish in ``timeout`` seconds (or the helper
        crashed).

    Raises:
        BenchError: A helper process could not be started (math-verify not installed?).
    """
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    reply = _POOL.call(
        {"gold": gold, "pred": prediction, "boxed": pred_is_boxed_content, "timeout": INNER_TIMEOUT},
        limit,
    )
    if reply is None:
        return None
    return bool(reply.get("equivalent"))


def shutdown() -> None:
    """Kill every helper process now (they restart on the next check)."""
    _POOL.close()
