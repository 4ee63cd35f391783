"""How :class:`~sf_sandbox.ray_pool.RayPool` hands queued jobs to its nodes, and what it does on a loss.

Every ``run_many``/``arun`` call is a :class:`Call`; its jobs wait in the pool's queue as
:class:`Entry` s. Each node has ``inflight`` serving threads (:meth:`Dispatch._serve`) that
take a share of the queue, run it on the node in one Ray call, and record each result exactly
once; a node that fails is given up and its unfinished jobs go back to the front of the queue
(see the :mod:`sf_sandbox.ray_pool` docstring, "Faults").
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sf_sandbox._ray_node import require_ray
from sf_sandbox._ray_report import NodeReport, RayReport, Retry
from sf_sandbox.job import Job
from sf_sandbox.result import Result, Status

__all__ = ["Call", "Dispatch", "Entry", "Node", "kill_actor", "ray_cause"]


class Call:
    """One run_many/arun call: its jobs, their result slots, and the future its caller waits on."""

    def __init__(self, jobs: list[Job], progress: Callable[..., None]) -> None:
        self.jobs = jobs
        self.results: list[Result | None] = [None] * len(jobs)
        self.missing = len(jobs)
        self.progress = progress
        self.future: concurrent.futures.Future[list[Result]] = concurrent.futures.Future()
        self.lock = threading.Lock()
        """Orders progress reports; taken before (never while holding) the pool's condition."""


@dataclass(slots=True)
class Entry:
    """One job waiting for a node: the call it belongs to and its index there."""

    call: Call
    index: int


@dataclass(slots=True)
class Node:
    """One Ray node in use: its report, its ``NodePool`` actor and its serving threads."""

    report: NodeReport
    actor: Any
    """The Ray actor handle (Ray's handles are untyped)."""
    threads: list[threading.Thread] = field(default_factory=list[threading.Thread])

    @property
    def alive(self) -> bool:
        """Whether the node is still given work (it was not lost)."""
        return self.report.lost is None


class Dispatch:
    """The queue half of :class:`~sf_sandbox.ray_pool.RayPool` (a mixin: the pool owns the state)."""

    report: RayReport
    batch_size: int | None
    inflight: int
    _nodes: list[Node]
    _pending: collections.deque[Entry]
    _cond: threading.Condition
    _closed: bool

    def _serve(self, node: Node) -> None:
        """One of a node's ``inflight`` slots: take a share of the queue, run it there, repeat."""
        while True:
            with self._cond:
                while not self._closed and node.alive and not self._pending:
                    self._cond.wait()
                if self._closed or not node.alive:
                    return
                if self.batch_size:
                    take = self.batch_size
                else:
                    slots = self.inflight * max(1, sum(1 for n in self._nodes if n.alive))
                    take = min(256, -(-len(self._pending) // slots))
                batch = [self._pending.popleft() for _ in range(min(take, len(self._pending)))]
            self._execute(node, batch)

    def _execute(self, node: Node, batch: list[Entry]) -> None:
        ray = require_ray()
        jobs = [e.call.jobs[e.index] for e in batch]
        try:
            results = ray.get(node.actor.run_batch.remote(jobs))
        except Exception as exc:  # noqa: BLE001 - the node cannot be trusted with more work
            if isinstance(exc, ray.exceptions.RayActorError):
                reason = f"raylet or actor died: {ray_cause(exc)}"
            elif not self._engine_alive(node):
                reason = f"docker engine gone ({ray_cause(exc)})"
            else:
                reason = f"its pool failed: {ray_cause(exc)}"
            self._lose(node, reason)
            self._retry(batch, node)
            return
        broken: set[int] = {k for k, r in enumerate(results) if r.status is Status.SANDBOX_ERROR}
        if broken and not self._engine_alive(node):
            self._lose(node, "docker engine gone")
        else:
            broken = set()
        with self._cond:
            node.report.batches += 1
            node.report.jobs += len(batch) - len(broken)
        for k, entry in enumerate(batch):
            if k not in broken:
                self._finish(entry.call, entry.index, results[k])
        if broken:
            self._retry([batch[k] for k in sorted(broken)], node)

    def _engine_alive(self, node: Node) -> bool:
        ray = require_ray()
        try:
            return bool(ray.get(node.actor.engine_alive.remote(), timeout=60))
        except Exception:  # noqa: BLE001 - actor gone too
            return False

    def _lose(self, node: Node, reason: str) -> None:
        with self._cond:
            if node.report.lost is None:
                node.report.lost = reason
            orphans: list[Entry] = []
            if not any(n.alive for n in self._nodes):  # nobody left to take the queued jobs
                orphans, self._pending = list(self._pending), collections.deque()
            self._cond.notify_all()
        kill_actor(require_ray(), node.actor)
        self._fail(orphans, f"no Ray node with a working sandbox pool is left ({reason})")

    def _retry(self, entries: list[Entry], node: Node) -> None:
        reason = node.report.lost or "node lost"
        with self._cond:
            for e in entries:
                self.report.retried.append(
                    Retry(
                        index=e.index,
                        job_id=e.call.jobs[e.index].id,
                        node=node.report.short_id,
                        reason=reason,
                    )
                )
            if any(n.alive for n in self._nodes) and not self._closed:
                self._pending.extendleft(reversed(entries))  # first in line, in their order
                self._cond.notify_all()
                return
        self._fail(entries, f"no Ray node with a working sandbox pool is left ({reason})")

    def _fail(self, entries: list[Entry], why: str, *, count: bool = True) -> None:
        if count:
            with self._cond:
                self.report.failed_over += len(entries)
        for e in entries:
            self._finish(
                e.call, e.index, Result(status=Status.SANDBOX_ERROR, error=why, id=e.call.jobs[e.index].id)
            )

    def _finish(self, call: Call, index: int, result: Result) -> None:
        with call.lock:
            with self._cond:
                if call.results[index] is not None:  # exactly once: a late duplicate is dropped
                    return
                call.results[index] = result
                call.missing -= 1
                done = len(call.jobs) - call.missing
            call.progress(done)
            if done == len(call.jobs):
                call.progress(done, final=True)
                call.future.set_result([r for r in call.results if r is not None])


def kill_actor(ray: Any, actor: Any) -> None:
    """Kill a Ray actor for good (no restart); one already dead is fine."""
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already dead
        pass


def ray_cause(exc: BaseException) -> str:
    """A one-line reason from a Ray exception (the exception a task raised, when there is one)."""
    cause = getattr(exc, "cause", None)
    base = cause if isinstance(cause, BaseException) else exc
    lines = [line.strip() for line in str(base).splitlines() if line.strip()]
    return f"{type(base).__name__}: {lines[0] if lines else ''}"[:300]
