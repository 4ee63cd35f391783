"""Scale-out: test code answers on a Ray cluster (``sf bench run … --ray auto|ADDRESS``).

The harness scores code answers through a :class:`~sf_bench.scorers.code.CodeScorer`; here its
sandbox is a :class:`sf_sandbox.ray_pool.RayPool` (one warm pool per node, the same job API as
one machine's ``Sandbox``), so records, files, order, resume, progress and the summary are
exactly those of a single-machine run. Only code datasets (HumanEval, MBPP) touch the pool;
text datasets are scored on the driver as always. Needs ``pip install "sf-bench[ray]"``.

    scorer, pool = ray_code_scorer("auto", test_timeout=None)
    try:
        Harness(system, code_scorer=scorer, ...).run(problems)
    finally:
        pool.close()                # node containers removed, actors released
    print(pool.report.format())     # nodes, jobs per node, lost nodes and retried jobs
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sf_bench.scorers.code import CodeScorer
    from sf_sandbox.ray_pool import RayPool
    from sf_sandbox.settings import SandboxSettings

__all__ = ["ray_code_scorer"]


def ray_code_scorer(
    address: str,
    *,
    concurrency: int = 4,
    test_timeout: float | None = None,
    pool_size: int | None = None,
    image: str | None = None,
    settings: SandboxSettings | None = None,
) -> tuple[CodeScorer, RayPool]:
    """A code scorer whose sandbox is a started :class:`~sf_sandbox.ray_pool.RayPool`.

    The pool's limits are those the harness gives its own sandbox (``test_timeout`` or the
    default 10 s, 512 MiB), so a problem scores the same as on one machine.

    Args:
        address: ``auto`` (the cluster ``ray start`` made on this machine) or the head's
            ``HOST:PORT``.
        concurrency: the harness's ``--concurrency`` (jobs the scorer asks for at once).
        test_timeout: seconds one answer's tests may run (``None``: the scorer's default).
        pool_size: containers per node (``None``: each node's CPU count).
        image: sandbox image, present on every node (default: ``settings.image``).
        settings: how every node's pool is opened (image, runtime, limits; docker backend).

    Raises:
        BenchConfigError: an empty address.
        MissingDependencyError: Ray is not installed (``pip install "sf-bench[ray]"``).
        SandboxError: the cluster cannot be joined or no node can start a pool.
    """
    from dataclasses import replace

    from sf_bench.errors import BenchConfigError
    from sf_bench.scorers.code import DEFAULT_TIMEOUT, CodeScorer
    from sf_sandbox.ray_pool import MissingDependencyError, RayPool, require_ray
    from sf_sandbox.settings import SandboxSettings

    if not address.strip():
        raise BenchConfigError("--ray needs 'auto' or the head's HOST:PORT")
    try:
        require_ray()
    except MissingDependencyError:
        raise MissingDependencyError('--ray needs Ray: pip install "sf-bench[ray]"') from None
    timeout = test_timeout or DEFAULT_TIMEOUT
    base = settings if settings is not None else SandboxSettings()
    pool = RayPool(
        base,
        address=address.strip(),
        image=image,
        pool_size=pool_size,
        limits=replace(base.limits, timeout=timeout),
    )
    pool.start()
    return CodeScorer(pool, timeout=timeout, concurrency=concurrency, settings=pool.settings), pool
