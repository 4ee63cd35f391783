"""Admission and cancellable jobs over one :class:`~sf_sandbox.Sandbox` pool.

:class:`Runner` is what the HTTP handlers call. It guarantees:

* at most ``capacity`` jobs in flight (running + waiting); :meth:`Runner.admit` refuses more at
  once with :class:`QueueFull` (429) or :class:`Draining` (503), it never queues without bound;
* a cancelled job (its client went away, or the server is shutting down) stops *now*: the
  container running it is killed, the pool replaces it, and the job's result is
  ``sandbox_error`` with the reason. Nothing keeps running for a client that is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sf_sandbox.errors import SandboxError
from sf_sandbox.job import Job
from sf_sandbox.result import Result, Status
from sf_sandbox.sandbox import Sandbox
from sf_sandbox.server.metrics import Metrics


class Refused(SandboxError):
    """A request the service will not take now."""

    http_status = 503


class QueueFull(Refused):
    """Every container is busy and the wait queue is full (HTTP 429)."""

    http_status = 429


class Draining(Refused):
    """The service is shutting down or not ready (HTTP 503)."""

    http_status = 503


class _Ticket:
    """One admitted job: cancelled at most once; kills its worker when it has one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.worker: Any = None
        self.cancelled: str | None = None

    def cancel(self, why: str) -> None:
        with self.lock:
            if self.cancelled is None:
                self.cancelled = why
            worker = self.worker
        if worker is not None:
            worker.tainted = True
            worker.conn.kill()


class Runner:
    """Runs jobs on ``sandbox`` for the service; see the module docstring for the guarantees."""

    def __init__(self, sandbox: Sandbox, *, pool_size: int, capacity: int, metrics: Metrics) -> None:
        self.sandbox = sandbox
        self.pool_size = pool_size
        self.capacity = capacity
        self.metrics = metrics
        self._lock = threading.Lock()
        self._inflight = 0
        self._running = 0
        self._tickets: set[_Ticket] = set()
        self.draining = False
        self.ready = False
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=capacity, thread_name_prefix="sf-serve-job"
        )

    @property
    def inflight(self) -> int:
        """Jobs admitted and not finished."""
        return self._inflight

    @property
    def running(self) -> int:
        """Jobs holding a container now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Jobs admitted and waiting for a container (the queue depth)."""
        return max(0, self._inflight - self._running)

    @contextmanager
    def admit(self, n: int = 1) -> Generator[None, None, None]:
        """Reserve room for ``n`` jobs for the duration of the block.

        Raises:
            Draining: the service is shutting down or not ready.
            QueueFull: fewer than ``n`` free places (``capacity`` in flight at most).
        """
        with self._lock:
            if self.draining or not self.ready:
                raise Draining("the sandbox service is shutting down" if self.draining else "not ready yet")
            if self._inflight + n > self.capacity:
                raise QueueFull(
                    f"queue full: {self._inflight} jobs in flight, room for {self.capacity} "
                    f"({self.pool_size} running + queue); retry later"
                )
            self._inflight += n
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= n

    def _run_blocking(self, job: Job, ticket: _Ticket) -> Result:
        sandbox = self.sandbox
        try:
            # the pool's own acquire/release, plus a kill switch
            worker, lane = sandbox._acquire()  # noqa: SLF001  # pyright: ignore[reportPrivateUsage]
        except Exception as exc:  # noqa: BLE001 - the engine vanished, the pool is closed
            return Result(status=Status.SANDBOX_ERROR, error=f"cannot get a sandbox: {exc}", id=job.id)
        with self._lock:
            self._running += 1
        try:
            with ticket.lock:
                ticket.worker = worker
                why = ticket.cancelled
            if why is not None:
                return Result(
                    status=Status.SANDBOX_ERROR, error=f"cancelled before it started: {why}", id=job.id
                )
            try:
                result = worker.run(job, None, lane)
            except BaseException as exc:  # noqa: BLE001 - a bug here must not take the service down
                worker.tainted = True
                result = Result(status=Status.SANDBOX_ERROR, error=f"{type(exc).__name__}: {exc}", id=job.id)
            with ticket.lock:
                ticket.worker = None
                why = ticket.cancelled
            if why is not None:
                result = Result(
                    status=Status.SANDBOX_ERROR,
                    error=f"cancelled: {why}; its container was killed",
                    duration=result.duration,
                    id=job.id,
                )
            return result if result.id == job.id else replace(result, id=job.id)
        finally:
            with self._lock:
                self._running -= 1
            sandbox._release(worker, lane)  # noqa: SLF001  # pyright: ignore[reportPrivateUsage]

    async def run(self, job: Job, endpoint: str) -> Result:
        """Run ``job`` (already admitted); cancelling the awaiting task kills the job's container.

        Records latency and duration; the caller counts the outcome (``sf_sandbox_jobs_total``).
        """
        ticket = _Ticket()
        with self._lock:
            self._tickets.add(ticket)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        future = loop.run_in_executor(self._threads, self._run_blocking, job, ticket)
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            ticket.cancel("the client went away" if not self.draining else "the service shut down")
            self.metrics.inc("sf_sandbox_jobs_cancelled_total", endpoint=endpoint)
            await asyncio.wait([future], timeout=30)  # the kill makes it return promptly
            raise
        finally:
            with self._lock:
                self._tickets.discard(ticket)
        self.metrics.observe("sf_sandbox_job_latency_seconds", time.monotonic() - started, endpoint=endpoint)
        self.metrics.observe("sf_sandbox_job_duration_seconds", result.duration, endpoint=endpoint)
        return result

    def cancel_all(self, why: str) -> int:
        """Kill every job in flight now; return how many there were."""
        with self._lock:
            tickets = list(self._tickets)
        for ticket in tickets:
            ticket.cancel(why)
        return len(tickets)

    def close(self) -> None:
        """Stop taking jobs, kill what runs, release the threads (the sandbox is closed by its owner)."""
        self.draining = True
        self.cancel_all("the service shut down")
        self._threads.shutdown(wait=True, cancel_futures=True)
