"""Run workflows: inside sf-sandbox, or in-process for comparison only.

The sandbox run is :func:`run_workflow`, the in-process one :func:`run_workflow_unsafe`.

In the sandbox the workflow has no network and no key. Each operator's LLM call is a host call
``sf_workflows_llm`` answered here by the executor, so caching, retries and cost accounting
happen in one place, on the host. The sandbox must expose that host call: build it with
:func:`open_sandbox`, or pass :func:`host_calls` to ``Sandbox(host_calls=...)``. On an
sf-sandbox ``RayPool`` the host calls are answered on the node that runs the job, by an
executor built there: give the pool ``node_host=sf_workflows.remote_host(...)``
(:mod:`sf_workflows.remote`); the run's accounting comes back with the result.

The job itself is built in :mod:`sf_workflows._job`, its end read into an ``Outcome`` in
:mod:`sf_workflows._outcome`, and the in-process run lives in :mod:`sf_workflows._in_process`;
this module re-exports their public names.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sf_workflows._in_process import run_workflow_unsafe, sandbox_code_runner
from sf_workflows._job import (
    JOB_GRACE_S,
    RESULT_FILE,
    RUNTIME_PACKAGE,
    build_job,
    runtime_bundle,
    runtime_preload,
)
from sf_workflows._outcome import STALL_SHARE, invalid_outcome, sandbox_outcome
from sf_workflows.errors import WorkflowConfigError
from sf_workflows.llm_calls import (
    HOST_CALL,
    RunState,
    WorkflowHostCalls,
    accepts_cache_tag,
    host_calls,
    host_calls_of,
)
from sf_workflows.protocols import LLM, ProblemLike
from sf_workflows.types import Outcome, as_task

if TYPE_CHECKING:
    from sf_sandbox import Job, Sandbox
    from sf_sandbox.pool import Pool
    from sf_sandbox.progress import ProgressBar
    from sf_sandbox.settings import SandboxSettings
    from sf_workflows.operators._style import OperatorStyle

__all__ = [
    "HOST_CALL",
    "JOB_GRACE_S",
    "RUNTIME_PACKAGE",
    "STALL_SHARE",
    "build_job",
    "host_calls",
    "open_sandbox",
    "run_workflow",
    "run_workflow_unsafe",
    "run_workflows",
    "runtime_bundle",
    "runtime_preload",
    "sandbox_code_runner",
]


def open_sandbox(settings: SandboxSettings | None = None, **kwargs: Any) -> Sandbox:
    """A ``sf_sandbox.Sandbox`` opened as ``settings`` say, with the workflow host calls.

    The workflow host calls are added to ``kwargs["host_calls"]`` and, unless a preload is given (in
    ``settings`` or ``preload=``), the operator runtime is preloaded (:func:`runtime_preload`).

    Enter it (``with``/``async with``) before use. Other keyword arguments go to ``Sandbox``
    (they override ``settings``), among them ``jobs_per_container``: workflows mostly wait on the
    executor, so a pool of
    ``jobs_per_container=16`` to ``32`` (lanes: each workflow in a uid, work dir and process group
    of its own, several per container) serves the same concurrency with far fewer containers. It
    stays 1 by default because lanes forbid what one job per container allows (writing ``/tmp``,
    listening sockets); see sf-sandbox's README, "Several jobs per container".
    """
    from sf_sandbox import Sandbox

    calls = {**dict(kwargs.pop("host_calls", None) or {}), **host_calls()}
    if settings is None or settings.preload is None:
        kwargs.setdefault("preload", runtime_preload())
    return Sandbox(settings, host_calls=calls, **kwargs)


def _runtime_preloaded(sandbox: Pool) -> bool:
    preload = getattr(sandbox, "preload", None)
    return f"{RUNTIME_PACKAGE}._bootstrap" in getattr(preload, "modules", ())


def _is_remote(sandbox: Pool) -> bool:
    """A pool whose host calls are answered on other machines (a ``RayPool``)."""
    return hasattr(sandbox, "node_host")


def _remote_ready(sandbox: Pool) -> bool:
    from sf_workflows.remote import RemoteHost

    return isinstance(getattr(sandbox, "node_host", None), RemoteHost)


def _runs_of(sandbox: Pool) -> WorkflowHostCalls | None:
    """Where a run on ``sandbox`` registers.

    That is the sandbox's own :class:`WorkflowHostCalls` (None for a remote pool, whose nodes
    register the run themselves).

    Raises:
        WorkflowConfigError: the sandbox cannot serve the workflow host call.
    """
    if _is_remote(sandbox):
        if not _remote_ready(sandbox):
            raise WorkflowConfigError(
                f"{type(sandbox).__name__} answers host calls on its nodes: create it with "
                "node_host=sf_workflows.remote_host(executor_config) so every node can answer "
                f"the {HOST_CALL!r} host call"
            )
        return None
    runs = host_calls_of(sandbox)
    if runs is None:
        raise WorkflowConfigError(
            f"the sandbox does not expose the {HOST_CALL!r} host call: "
            "create it with sf_workflows.open_sandbox() "
            "or Sandbox(host_calls=sf_workflows.host_calls())"
        )
    return runs


async def run_workflow(
    source: str,
    problem: ProblemLike,
    executor: LLM,
    sandbox: Pool,
    *,
    timeout: float = 120.0,
    validate: bool = True,
    operators: Sequence[str] | None = None,
    max_llm_calls: int = 50,
    code_timeout: float = 10.0,
    max_answer_bytes: int = 1 << 20,
    tag: str = "0",
    pipelined: bool = True,
    grace: float = JOB_GRACE_S,
    operator_style: OperatorStyle | None = None,
) -> Outcome:
    """Run one workflow on one problem inside the sandbox; never raises for the workflow's faults.

    Args:
        source: Workflow code (``class Workflow`` in ScoreFlow's shape; see the README).
        problem: A :class:`~sf_workflows.Task` or any object with ``id``, ``task_type``,
            ``prompt`` and ``extras`` (sf-bench's ``Problem``).
        executor: The LLM answering operator calls (:class:`~sf_workflows.Executor`, a
            :class:`~sf_workflows.testing.ScriptedLLM`, ...). It runs on the host.
        sandbox: An entered ``sf_sandbox.pool.Pool`` (a ``Sandbox`` or a ``RayPool``) exposing
            :func:`host_calls` (:func:`open_sandbox` makes one).
        timeout: Seconds ``run_workflow`` may take. Awaiting past it ends as ``timeout``; code
            that blocks without awaiting is killed by the sandbox ``grace`` seconds later.
        validate: Check the source first (:func:`~sf_workflows.validate_workflow`); an invalid
            one is not run and ends as ``invalid`` with the validator's messages.
        operators: Operator names allowed (default: the task type's set, see ``DEFAULT_OPERATORS``).
        max_llm_calls: LLM calls served per run; past it calls fail and the run ends as ``call_limit``.
        code_timeout: Seconds for one Programmer execution or one Test round's test.
        max_answer_bytes: Larger answers end as ``bad_return``.
        tag: Part of every cache key of this run: the same ``tag`` reproduces the same replies
            from the cache; a different one (for example the repeat index) samples anew.
        pipelined: Overlap concurrent operator calls (see ``operators/_channel.py``).
        grace: Extra seconds for the sandbox job beyond ``timeout`` (start-up, writing the result).
        operator_style: The operators' prompts and behaviour (an ``OperatorStyle``;
            ``None``: ours). ``sf_workflows.generator.scoreflow.operator_style`` gives ScoreFlow's.

    Returns:
        An :class:`~sf_workflows.Outcome`: ``ok`` with the answer, or a failure status with the
        reason (score 0). Its ``usage`` counts this run's executor calls.

    Raises:
        WorkflowConfigError: the problem is malformed or the sandbox lacks the host call.
    """
    task = as_task(problem)
    started = time.monotonic()
    invalid = invalid_outcome(source, task, operators, started) if validate else None
    if invalid is not None:
        return invalid
    runs = _runs_of(sandbox)
    token = secrets.token_hex(16)
    state = RunState(
        executor=executor, tag=tag, max_calls=max_llm_calls, pass_tag=accepts_cache_tag(executor)
    )
    job = build_job(
        source,
        task,
        token,
        timeout=timeout,
        code_timeout=code_timeout,
        max_llm_calls=max_llm_calls,
        max_answer_bytes=max_answer_bytes,
        base_limits=getattr(sandbox, "limits", None),
        pipelined=pipelined,
        grace=grace,
        tag=tag,
        runtime_preloaded=_runtime_preloaded(sandbox),
        operator_style=operator_style,
    )
    return await _run_job(job, sandbox, runs, token, state, started=started, timeout=timeout)


async def _run_job(
    job: Job,
    sandbox: Pool,
    runs: WorkflowHostCalls | None,
    token: str,
    state: RunState,
    *,
    started: float,
    timeout: float,
) -> Outcome:
    """Run a workflow's ``job`` with its run ``state`` registered under ``token`` in ``runs``.

    The run is unregistered and its executor calls still in flight are cancelled when the job
    ends, whichever way it ends.
    """
    if runs is not None:
        runs.register(token, state)
    try:
        result = await sandbox.arun(job)
        remote = result.host_data.get(HOST_CALL)
        if remote is not None:  # served on a remote node (sf_workflows.remote): its accounting counts
            state.absorb(remote)
        return sandbox_outcome(result, RESULT_FILE, state, started, timeout)
    finally:
        if runs is not None:
            runs.unregister(token)
        state.cancel_pending()  # nothing of a finished run keeps calling the endpoint


async def run_workflows(
    items: Iterable[tuple[str, ProblemLike]],
    executor: LLM,
    sandbox: Pool,
    *,
    concurrency: int = 4,
    progress: Callable[[int, int], None] | bool | None = None,
    **options: Any,
) -> list[Outcome]:
    """Run ``(source, problem)`` pairs with at most ``concurrency`` at once; results in input order.

    A failing workflow never stops the batch. ``options`` go to :func:`run_workflow`.
    ``progress``: a callback ``(done, total)`` after each run, or True for a progress bar on
    stderr (:class:`sf_sandbox.progress.ProgressBar`).
    """
    pairs = list(items)
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    bar = None
    if progress is True:
        from sf_sandbox.progress import ProgressBar

        bar = ProgressBar("workflows", len(pairs), unit="runs")
        progress = _drawer(bar)
    elif progress is False:
        progress = None

    async def one(source: str, problem: ProblemLike) -> Outcome:
        nonlocal done
        async with gate:
            outcome = await run_workflow(source, problem, executor, sandbox, **options)
        done += 1
        if progress is not None:
            progress(done, len(pairs))
        return outcome

    try:
        return list(await asyncio.gather(*(one(s, p) for s, p in pairs)))
    finally:
        if bar is not None:
            bar.close()


def _drawer(bar: ProgressBar) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing on ``bar``."""

    def draw(done: int, total: int) -> None:
        bar.update(done)

    return draw
