"""The `Pool` protocol every sandbox pool satisfies, and the code its implementations share.

:class:`~sf_sandbox.Sandbox` (one machine) and :class:`~sf_sandbox.ray_pool.RayPool` (a Ray
cluster) are both :class:`Pool` s, so callers (sf-workflows' ``run_workflow``, sf-bench's
``CodeScorer``, sf-train's scoring) are written once, against this protocol, and run on either.
Results come back in input order, a job's failure never raises (it gets a ``Result`` with a
status), and entering the pool (``with``/``async with``) starts it, leaving closes it.

:class:`PoolBase` holds what the implementations share: the context-manager methods, the job and
``concurrency`` checks, and the progress reporting of ``run_many``/``arun_many``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.job import Job

if TYPE_CHECKING:
    from sf_sandbox.limits import Limits
    from sf_sandbox.preload import Preload
    from sf_sandbox.result import Result
    from sf_sandbox.settings import SandboxSettings

__all__ = ["Pool", "PoolBase", "Progress", "check_concurrency", "check_jobs", "progress_reporter"]

Progress = Callable[[int, int], None]
"""A ``(done, total)`` callback for ``run_many(progress=...)``."""


@runtime_checkable
class Pool(Protocol):
    """A pool of sandboxes that runs :class:`~sf_sandbox.Job` s (``Sandbox``, ``RayPool``, yours).

    Thread-safe; the async methods may be used from any event loop.
    """

    @property
    def settings(self) -> SandboxSettings:
        """How the pool was opened (backend, image, runtime, limits, size, preload)."""
        ...

    @property
    def limits(self) -> Limits:
        """The limits of every job (``settings.limits``)."""
        ...

    @property
    def preload(self) -> Preload | None:
        """What every job starts with imported (``settings.preload``)."""
        ...

    def start(self) -> None:
        """Start the pool now (it otherwise starts on entry or first use). Idempotent.

        Raises:
            SandboxError: the pool cannot start (no engine, no image, no node, ...).
        """
        ...

    def close(self) -> None:
        """Stop the pool; every container it started is removed. Safe to call twice."""
        ...

    def run(self, job: Job) -> Result:
        """Run one job and return its result (never raises for what the job does)."""
        ...

    def run_many(
        self, jobs: Iterable[Job], *, concurrency: int | None = None, progress: bool | Progress = False
    ) -> list[Result]:
        """Run ``jobs``, up to ``concurrency`` at once; results in input order."""
        ...

    async def arun(self, job: Job) -> Result:
        """Async :meth:`run`."""
        ...

    async def arun_many(
        self, jobs: Iterable[Job], *, concurrency: int | None = None, progress: bool | Progress = False
    ) -> list[Result]:
        """Async :meth:`run_many` (input order kept)."""
        ...

    def __enter__(self) -> Self:
        """Start the pool and return it."""
        ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the pool."""
        ...

    async def __aenter__(self) -> Self:
        """Start the pool (off the event loop) and return it."""
        ...

    async def __aexit__(self, *exc: object) -> None:
        """Close the pool (off the event loop)."""
        ...


class PoolBase:
    """The shared half of a pool: ``with``/``async with`` start and close it.

    They do so via :meth:`start`/:meth:`close`, which the subclass provides; the async forms run
    them in a thread, off the event loop.
    """

    def start(self) -> None:
        """Start the pool (the subclass's)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the pool (the subclass's)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def check_jobs(jobs: Iterable[Job]) -> list[Job]:
    """``jobs`` as a list.

    Raises:
        SandboxConfigError: one of them is not a :class:`~sf_sandbox.Job`.
    """
    jobs = list(jobs)
    for job in jobs:
        check_job(job)
    return jobs


def check_job(job: object) -> None:
    """Check that ``job`` is a :class:`~sf_sandbox.Job`; return nothing.

    Raises:
        SandboxConfigError: ``job`` is not a :class:`~sf_sandbox.Job`.
    """
    if not isinstance(job, Job):
        raise SandboxConfigError(f"expected a sf_sandbox.Job, got {type(job).__name__}")


def check_concurrency(concurrency: int | None) -> None:
    """Check that ``concurrency`` is ``None`` (no cap) or at least 1; return nothing.

    Raises:
        SandboxConfigError: ``concurrency`` is given and below 1.
    """
    if concurrency is not None and concurrency < 1:
        raise SandboxConfigError("concurrency must be >= 1")


def progress_reporter(progress: bool | Progress, total: int) -> Callable[..., None]:
    """The ``report(done, final=False)`` function of one ``run_many`` call of ``total`` jobs.

    ``progress`` is a ``(done, total)`` callback (called for every job done, not for the final
    report), True for a :class:`~sf_sandbox.progress.ProgressBar` on stderr (a live bar on a terminal,
    sparse plain lines otherwise; only for two jobs or more), or False for nothing.
    """
    if callable(progress):

        def call(done: int, final: bool = False) -> None:
            if not final:
                progress(done, total)

        return call
    if not progress or total < 2:

        def quiet(done: int, final: bool = False) -> None:
            return None

        return quiet
    from sf_sandbox.progress import ProgressBar

    bar = ProgressBar("sandbox", total, unit="jobs")

    def show(done: int, final: bool = False) -> None:
        bar.update(done)
        if final:
            bar.close()

    return show
