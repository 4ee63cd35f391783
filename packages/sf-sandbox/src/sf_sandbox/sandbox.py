"""The public entry point: :class:`Sandbox`, a warm pool of hardened containers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Self

from sf_sandbox.backends.base import Backend
from sf_sandbox.backends.registry import get_backend
from sf_sandbox.errors import SandboxConfigError, SandboxError
from sf_sandbox.hostcalls import HostCalls, HostFunction
from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.pool import PoolBase, Progress, check_job, progress_reporter
from sf_sandbox.preload import Preload
from sf_sandbox.result import Result, Status
from sf_sandbox.settings import SandboxSettings
from sf_sandbox.worker import Worker, with_id

__all__ = ["LANES_UNDER_RUNSC", "Progress", "Sandbox", "make_backend"]

LANES_UNDER_RUNSC = (
    "jobs_per_container > 1 is refused under gVisor (runsc): gVisor's /proc and SysV IPC do not keep "
    "one uid from another's processes (a lane could read a concurrent neighbour's environ, maps and "
    "open files and attach or remove its shared memory); use jobs_per_container=1 with runsc"
)
"""Why lanes and runsc do not mix (measured: tests/test_runsc.py, gVisor 0.0~20221219)."""


def make_backend(
    backend: str | Backend | SandboxSettings, image: str | None = None, runtime: str | None = None
) -> Backend:
    """A ready :class:`~sf_sandbox.backends.base.Backend` from settings, a name, or a backend.

    ``make_backend(settings)`` is the path every pool takes; ``make_backend(name, image,
    runtime)`` is the older spelling (it builds the settings). A ``Backend`` instance comes back
    as it is.

    Raises:
        SandboxConfigError: unknown name, or a runtime for a backend that takes none.
    """
    if isinstance(backend, Backend):
        return backend
    settings = (
        backend
        if isinstance(backend, SandboxSettings)
        else SandboxSettings(backend=backend, image=image, runtime=runtime)
    )
    return get_backend(settings.backend).factory(settings)


class Sandbox(PoolBase):
    """A pool of warm sandbox containers that run :class:`Job` s and return :class:`Result` s.

    Containers start when the sandbox is entered (``pool_size`` of them, in parallel) and grow on
    demand up to the largest ``concurrency`` asked of ``run_many``. Each runs one job at a time; a
    container that may be tainted (timeout, memory, output flood, stray processes, IPC objects)
    is replaced in the background. Thread-safe; the async methods may be used from any loop.

    ``preload`` (:class:`~sf_sandbox.preload.Preload`) gives every job of the pool trusted modules
    already imported (a runtime the host would otherwise ship and import with every job).

    ``jobs_per_container`` (default 1: one job per container, as always) makes each container
    hold that many *lanes*, each running one job at a time in a uid, work dir, tmp dir and process
    group of its own, with the per-job kill, wipe and checks scoped to the lane. For I/O-bound jobs
    (workflows waiting on an LLM): ``pool_size`` containers then give ``pool_size x
    jobs_per_container`` slots, and growth to a concurrency ``c`` starts ``ceil(c /
    jobs_per_container)`` containers. A lane whose job taints its container takes the container
    out of service; it is replaced once its other lanes finish. Memory, pids and CPU limits of
    a container are ``Limits`` x lanes (CPU capped at the engine's cores). See the README's
    "Several jobs per container" for what lanes share.

    Raises (on entry):
        EngineUnavailableError: no Docker engine answers.
        ImageNotFoundError: the image is missing (``sf sandbox build-image`` builds the default).
        SandboxConfigError: the preload's modules fail to import in the container.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        image: str | None = None,
        limits: Limits | None = None,
        pool_size: int | None = None,
        host_calls: Mapping[str, HostFunction] | None = None,
        backend: str | Backend | None = None,
        runtime: str | None = None,
        preload: Preload | None = None,
        jobs_per_container: int | None = None,
    ) -> None:
        """Open (not yet start) a pool as ``settings`` say; the keywords given override them.

        ``Sandbox(image=..., pool_size=...)`` and ``Sandbox(settings=SandboxSettings(...))`` are
        the same pool. ``backend`` may also be a ready :class:`~sf_sandbox.backends.base.Backend`
        (then ``settings.backend`` is not used). ``host_calls`` are not settings: they are
        functions of this process.

        Raises:
            SandboxConfigError: invalid settings (see :class:`~sf_sandbox.settings.SandboxSettings`).
        """
        named = backend if isinstance(backend, str) else None
        self.settings = SandboxSettings.given(settings).merge(
            image=image,
            limits=limits,
            pool_size=pool_size,
            backend=named,
            runtime=runtime,
            preload=preload,
            jobs_per_container=jobs_per_container,
        )
        """How this pool was opened (:class:`~sf_sandbox.settings.SandboxSettings`)."""
        self.limits = self.settings.limits
        self.preload = self.settings.preload
        """Trusted code every job starts with imported (:class:`~sf_sandbox.preload.Preload`), or None."""
        self.backend = backend if isinstance(backend, Backend) else make_backend(self.settings)
        self.hostcalls = HostCalls(host_calls)
        self._pool_size = self.settings.pool_size or 1
        self._max = self._pool_size
        if self.settings.jobs_per_container > 1 and not self.backend.in_container:
            raise SandboxConfigError("jobs_per_container > 1 needs a container backend (docker)")
        if self.settings.jobs_per_container > 1 and getattr(self.backend, "runtime", None) == "runsc":
            raise SandboxConfigError(LANES_UNDER_RUNSC)
        self.jobs_per_container = self.settings.jobs_per_container
        """Concurrent jobs per container (lanes); 1 = one job per container."""
        self._cond = threading.Condition()
        self._idle: list[tuple[Worker, int]] = []
        """Free slots: (container, lane)."""
        self._count = 0
        self._started = False
        self._closed = False
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="sf-job")
        self._replacing: list[threading.Thread] = []
        self._closing: list[threading.Thread] = []
        self.replaced = 0
        """How many containers were replaced because they might be tainted."""

    @classmethod
    def from_settings(
        cls, settings: SandboxSettings, *, host_calls: Mapping[str, HostFunction] | None = None
    ) -> Self:
        """The pool ``settings`` describe, with ``host_calls`` (see :meth:`__init__`)."""
        return cls(settings, host_calls=host_calls)

    # lifecycle (entering starts, leaving closes: sf_sandbox.pool.PoolBase)
    def start(self) -> None:
        """Check the backend and warm ``pool_size`` containers. Idempotent."""
        if self._started:
            return
        self.backend.check()
        if self.backend.name == "docker":
            from sf_sandbox.gc import collect_garbage

            collect_garbage(self.backend.client, only_dead_owners=True)  # type: ignore[attr-defined]
        self._started = True
        self._warm(self._pool_size)

    def _warm(self, n: int) -> None:
        with self._cond:
            missing = max(0, min(n, self._max) - self._count)
            self._count += missing
        if not missing:
            return
        errors: list[BaseException] = []

        def one() -> None:
            try:
                worker = self._new_worker()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                with self._cond:
                    self._count -= 1
                    self._cond.notify_all()
                return
            self._put(worker)

        threads = [threading.Thread(target=one) for _ in range(missing)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors and not self._idle:
            raise errors[0] if isinstance(errors[0], SandboxError) else SandboxError(str(errors[0]))

    def close(self) -> None:
        """Kill and remove every container. Safe to call twice."""
        with self._cond:
            self._closed = True
            idle = list({id(w): w for w, _ in self._idle if w.in_use == 0 and not w.retired}.values())
            for w in idle:
                w.retired = True
            self._idle = []
            replacing = list(self._replacing)
            closing = list(self._closing)
            self._cond.notify_all()
        for thread in replacing:  # a container still starting is closed by _put once it is up
            thread.join(timeout=120)
        for thread in closing:  # tainted containers being removed: none may be left behind
            thread.join(timeout=120)
        threads = [threading.Thread(target=w.close) for w in idle]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.hostcalls.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.backend.close()

    # pool
    def _new_worker(self) -> Worker:
        lanes = self.jobs_per_container
        extra = {"lanes": lanes} if lanes > 1 else {}
        return Worker(self.backend, self.limits, self.hostcalls, self.preload, **extra)

    def _put(self, worker: Worker) -> None:
        """A fresh container: every lane of it is free."""
        with self._cond:
            closing = self._closed
            if not closing:
                self._idle.extend((worker, lane) for lane in reversed(range(worker.lanes)))
                self._cond.notify_all()
        if closing:
            worker.retired = True
            worker.close()

    def _acquire(self) -> tuple[Worker, int]:
        if not self._started:
            self.start()
        stale: list[Worker] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise SandboxError("the sandbox is closed")
                    slot = self._free_slot(stale)
                    if slot is not None:
                        return slot
                    if self._count < self._max:
                        self._count += 1
                        break
                    self._cond.wait()
        finally:
            for worker in stale:  # tainted while idle (its container died): replace it
                self._retire(worker)
        try:
            worker = self._new_worker()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            worker.in_use = 1
            if not self._closed:
                self._idle.extend((worker, lane) for lane in reversed(range(1, worker.lanes)))
                self._cond.notify_all()
        return worker, 0

    def _free_slot(self, stale: list[Worker]) -> tuple[Worker, int] | None:
        """Take a free slot (under the lock).

        Slots of tainted containers are dropped, and a tainted container no lane uses is added to
        ``stale`` (retired by the caller).
        """
        while self._idle:
            worker, lane = self._idle.pop()
            if not worker.tainted:
                worker.in_use += 1
                return worker, lane
            if worker.in_use == 0 and not worker.retired:
                worker.retired = True
                stale.append(worker)
        return None

    def _release(self, worker: Worker, lane: int = 0) -> None:
        with self._cond:
            worker.in_use -= 1
            if not worker.tainted and not self._closed:
                self._idle.append((worker, lane))
                self._cond.notify()
                return
            if worker.in_use > 0 or worker.retired:
                return  # its other lanes finish first; the last one retires it
            worker.retired = True
            replace_it = worker.tainted and not self._closed
        if not replace_it:
            worker.close()  # the pool closed while this container ran jobs
            return
        self._retire(worker)

    def _retire(self, worker: Worker) -> None:
        """Close a tainted container and start its replacement, both in the background."""
        self.replaced += 1
        closer = threading.Thread(target=worker.close, daemon=True)
        with self._cond:
            self._closing = [t for t in self._closing if t.is_alive()] + [closer]
        closer.start()

        def replace() -> None:
            try:
                fresh = self._new_worker()
            except BaseException:  # noqa: BLE001 - the next acquire will retry and report
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                return
            self._put(fresh)

        thread = threading.Thread(target=replace, daemon=True)
        with self._cond:
            self._replacing = [t for t in self._replacing if t.is_alive()] + [thread]
        thread.start()

    def _grow(self, concurrency: int) -> None:
        with self._cond:
            self._max = max(self._max, self._containers(concurrency))

    def _containers(self, slots: int) -> int:
        """Containers that give ``slots`` concurrent jobs."""
        return -(-slots // self.jobs_per_container)

    # running
    def _run(self, job: Job, loop: asyncio.AbstractEventLoop | None = None) -> Result:
        check_job(job)
        try:
            worker, lane = self._acquire()
        except SandboxError as exc:
            return Result(status=Status.SANDBOX_ERROR, error=str(exc), id=job.id)
        except Exception as exc:  # noqa: BLE001 - e.g. the engine vanished mid-batch
            return Result(status=Status.SANDBOX_ERROR, error=f"cannot start a sandbox: {exc}", id=job.id)
        try:
            result = worker.run(job, loop, lane) if worker.lanes > 1 else worker.run(job, loop)
        except BaseException as exc:  # noqa: BLE001 - a bug here must not lose the batch
            worker.tainted = True
            result = Result(status=Status.SANDBOX_ERROR, error=f"{type(exc).__name__}: {exc}", id=job.id)
        finally:
            self._release(worker, lane)
        return with_id(result, job.id)

    def run(self, job: Job) -> Result:
        """Run one job and return its result (never raises for what the job does)."""
        return self._run(job)

    def run_many(
        self, jobs: Iterable[Job], *, concurrency: int | None = None, progress: bool | Progress = False
    ) -> list[Result]:
        """Run ``jobs`` with up to ``concurrency`` at once; results come back in input order.

        ``progress`` is a callback ``(done, total)`` or True for a line on stderr.
        """
        jobs = list(jobs)
        conc = self._concurrency(concurrency, len(jobs))
        report = progress_reporter(progress, len(jobs))
        results: list[Result | None] = [None] * len(jobs)
        done = 0
        lock = threading.Lock()

        def one(i: int) -> None:
            nonlocal done
            results[i] = self._run(jobs[i])
            with lock:
                done += 1
                report(done)

        with concurrent.futures.ThreadPoolExecutor(max_workers=conc, thread_name_prefix="sf-batch") as ex:
            list(ex.map(one, range(len(jobs))))
        report(len(jobs), final=True)
        return [r for r in results if r is not None]

    async def arun(self, job: Job) -> Result:
        """Async :meth:`run`; async host-call functions run on the calling loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run, job, loop)

    async def arun_many(
        self, jobs: Iterable[Job], *, concurrency: int | None = None, progress: bool | Progress = False
    ) -> list[Result]:
        """Async :meth:`run_many` (input order kept)."""
        jobs = list(jobs)
        conc = self._concurrency(concurrency, len(jobs))
        report = progress_reporter(progress, len(jobs))
        sem = asyncio.Semaphore(conc)
        done = 0

        async def one(job: Job) -> Result:
            nonlocal done
            async with sem:
                result = await self.arun(job)
            done += 1
            report(done)
            return result

        results = await asyncio.gather(*(one(j) for j in jobs))
        report(len(jobs), final=True)
        return list(results)

    def _concurrency(self, concurrency: int | None, n: int) -> int:
        conc = concurrency or self._max * self.jobs_per_container
        if conc < 1:
            raise SandboxConfigError("concurrency must be >= 1")
        conc = max(1, min(conc, n or 1))
        self._grow(conc)
        if self._started and n:
            self._warm(self._containers(conc))
        return conc


def __getattr__(name: str) -> Any:  # pragma: no cover
    raise AttributeError(name)
