"""Run workflows: inside sf-sandbox, or in-process for comparison only.

The sandbox run is :func:`run_workflow`, the in-process one :func:`run_workflow_unsafe`.

In the sandbox the workflow has no network and no key. Each operator's LLM call is a host call
``sf_workflows_llm`` answered here by the executor, so caching, retries and cost accounting
happen in one place, on the host. The sandbox must expose that host call: build it with
:func:`open_sandbox`, or pass :func:`host_calls` to ``Sandbox(host_calls=...)``. On an
sf-sandbox ``RayPool`` the host calls are answered on the node that runs the job, by an
executor built there: give the pool ``node_host=sf_workflows.remote_host(...)``
(:mod:`sf_workflows.remote`); the run's accounting comes back with the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import io
import json
import marshal
import re
import secrets
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from sf_workflows.errors import WorkflowConfigError
from sf_workflows.generator.validate import validate_workflow
from sf_workflows.llm_calls import (
    HOST_CALL,
    JOB_FILE,
    RunState,
    WorkflowHostCalls,
    accepts_cache_tag,
    host_calls,
    host_calls_of,
    serve_llm,
)
from sf_workflows.protocols import LLM
from sf_workflows.types import Outcome, OutcomeStatus, Task, as_task

if TYPE_CHECKING:
    from sf_sandbox import Sandbox
    from sf_sandbox.pool import Pool
    from sf_sandbox.settings import SandboxSettings

RUNTIME_PACKAGE = "sfw_operators"
"""Name of the operator package inside the sandbox (``sf_workflows.operators``, zipped)."""
_RESULT_FILE = "sfw_result.json"
_ZIP_FILE = "sfw_runtime.zip"
_BOOT = (
    "import os, sys\n"
    "sys.modules.setdefault('ssl', None)  # no network in the sandbox; skips loading OpenSSL with asyncio\n"
    f"sys.path.insert(0, os.path.abspath({_ZIP_FILE!r}))\n"
    f"from {RUNTIME_PACKAGE}._bootstrap import main\n"
    f"main({JOB_FILE!r}, {_RESULT_FILE!r})\n"
)
JOB_GRACE_S = 5.0
"""Default seconds the sandbox job may run past the workflow timeout (start-up, result writing)."""
STALL_SHARE = 0.5
"""A workflow that times out while one of its executor calls has waited for at least this share
of the workflow's timeout timed out because of the endpoint (hung or too slow): ``llm_error``,
ours, not the workflow's ``timeout``."""
_WORKFLOW_CLASS = re.compile(r"\bclass\s+Workflow\b")


def runtime_preload() -> Any:
    """An ``sf_sandbox.Preload`` of the operator runtime.

    Every job of the pool starts with it imported, so :func:`run_workflow` ships neither the runtime
    zip nor imports it per job.
    """
    from sf_sandbox import Preload

    return Preload(
        files={_ZIP_FILE: runtime_bundle()}, path=(_ZIP_FILE,), modules=(f"{RUNTIME_PACKAGE}._bootstrap",)
    )


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

    return isinstance(sandbox.node_host, RemoteHost)


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


@functools.lru_cache(maxsize=1)
def runtime_bundle() -> bytes:
    """The operator package as a zip.

    Sources plus unchecked-hash ``.pyc`` for this Python, which the sandbox uses when its Python has
    the same bytecode version, else the sources.
    """
    buf = io.BytesIO()
    root = resources.files("sf_workflows.operators")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in sorted(root.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".py"):
                continue
            source = entry.read_bytes()
            name = f"{RUNTIME_PACKAGE}/{entry.name}"
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), source)
            code = compile(source, name, "exec", dont_inherit=True)
            pyc = bytearray(importlib.util.MAGIC_NUMBER)
            pyc += (1).to_bytes(4, "little")  # hash-based, unchecked
            pyc += importlib.util.source_hash(source)
            pyc += marshal.dumps(code)
            zf.writestr(zipfile.ZipInfo(name + "c", (2020, 1, 1, 0, 0, 0)), bytes(pyc))
    return buf.getvalue()


def _invalid(source: str, task: Task, operators: Sequence[str] | None, started: float) -> Outcome | None:
    """The ``no_workflow`` or ``invalid`` outcome of a workflow source, or None when it passes.

    ``no_workflow`` is the outcome of a source without ``class Workflow`` (a generator reply with no
    workflow in it), ``invalid`` that of one the validator rejects.
    """
    if not _WORKFLOW_CLASS.search(source):
        return Outcome(
            status=OutcomeStatus.NO_WORKFLOW,
            error="no workflow in the reply: it defines no `class Workflow` "
            "(expected a <graph> block or fenced Python code holding one)",
            duration=time.monotonic() - started,
        )
    report = validate_workflow(source, task.task_type, operators=operators, problem_text=task.generator_text)
    if report.ok:
        return None
    return Outcome(status=OutcomeStatus.INVALID, error=report.message, duration=time.monotonic() - started)


def build_job(
    source: str,
    task: Task,
    token: str,
    *,
    timeout: float,
    code_timeout: float,
    max_llm_calls: int,
    max_answer_bytes: int,
    base_limits: Any,
    pipelined: bool = True,
    grace: float = JOB_GRACE_S,
    tag: str = "0",
    runtime_preloaded: bool = False,
    operator_style: Any = None,
) -> Any:
    """The sandbox job that runs ``source`` on ``task`` (see ``operators/_bootstrap.py``).

    ``runtime_preloaded``: the sandbox's jobs start with the runtime imported
    (:func:`runtime_preload`), so the job does not carry the runtime zip.
    ``operator_style``: an ``OperatorStyle`` (``None``: ours) the operators use in the job.

    The spec's ``host`` entry (the run's cache ``tag`` and call limit) is read by a remote node's
    :class:`~sf_workflows.remote.WorkflowHost` from the job as the driver built it; the job
    itself ignores it.
    """
    from sf_sandbox import Job, Limits

    spec = {
        "source": source,
        "problem": task.workflow_input(),
        "task_type": task.task_type,
        "entry_point": task.entry_point,
        "public_tests": list(task.public_tests),
        "timeout": timeout,
        "code_timeout": code_timeout,
        "token": token,
        "max_answer_bytes": max_answer_bytes,
        "pipelined": pipelined,
        "host": {"tag": tag, "max_llm_calls": max_llm_calls},
    }
    if operator_style is not None:
        spec["operator_style"] = operator_style.to_json()
    base = base_limits if isinstance(base_limits, Limits) else Limits()
    limits = dataclasses.replace(
        base,
        timeout=timeout + grace,
        host_calls=max_llm_calls + 16,
        files_out_bytes=max(base.files_out_bytes, max_answer_bytes * 2 + 4096),
    )
    return Job(
        source=_BOOT,
        files={
            **({} if runtime_preloaded else {_ZIP_FILE: runtime_bundle()}),
            JOB_FILE: json.dumps(spec).encode(),
        },
        collect=(_RESULT_FILE,),
        limits=limits,
        id=task.id,
    )


def _tail(text: str, n: int = 2000) -> str:
    return text[-n:] if len(text) > n else text


def _stalled(outcome: Outcome, state: RunState, timeout: float, waited: float) -> Outcome:
    """``outcome``, or ``llm_error`` when a ``timeout`` was the endpoint hanging.

    ``llm_error`` when it is a ``timeout`` during which an executor call had waited ``waited`` >=
    :data:`STALL_SHARE` of ``timeout`` seconds (the endpoint hung).
    """
    if outcome.status is not OutcomeStatus.TIMEOUT or waited < STALL_SHARE * timeout:
        return outcome
    where = getattr(state.executor, "base_url", None) or getattr(state.executor, "model", None)
    at = f" {where}" if where else ""
    return dataclasses.replace(
        outcome,
        status=OutcomeStatus.LLM_ERROR,
        error=f"executor failed: the executor endpoint{at} left a call unanswered for {waited:.1f} s "
        f"when the workflow's {timeout:g} s timeout hit (the endpoint hung or is too slow)",
    )


def _outcome_from(result: Any, state: RunState, started: float, timeout: float) -> Outcome:
    """Map the sandbox result and the host-side run state to an :class:`Outcome`."""
    waited = state.waited()
    return _stalled(_raw_outcome(result, state, started, timeout), state, timeout, waited)


def _raw_outcome(result: Any, state: RunState, started: float, timeout: float) -> Outcome:
    from sf_sandbox import Status

    common: dict[str, Any] = {
        "usage": state.usage,
        "duration": time.monotonic() - started,
        "stderr": _tail(getattr(result, "stderr", "") or ""),
    }
    if state.llm_error is not None:
        return Outcome(status=OutcomeStatus.LLM_ERROR, error=f"executor failed: {state.llm_error}", **common)
    if state.over_limit:
        return Outcome(
            status=OutcomeStatus.CALL_LIMIT,
            error=f"the workflow tried more than {state.max_calls} LLM calls",
            **common,
        )
    status = result.status
    if status is Status.TIMEOUT:
        return Outcome(
            status=OutcomeStatus.TIMEOUT,
            error=f"killed after {result.duration:.1f}s: the workflow blocked without awaiting "
            f"(limit {timeout:g}s)",
            **common,
        )
    if status is Status.OUTPUT_LIMIT:
        return Outcome(
            status=OutcomeStatus.OUTPUT_LIMIT,
            error=f"the workflow printed too much ({result.error or 'output cap'})",
            **common,
        )
    if status is Status.MEMORY:
        return Outcome(status=OutcomeStatus.MEMORY, error=result.error or "out of memory", **common)
    if status is Status.SANDBOX_ERROR:
        return Outcome(status=OutcomeStatus.SANDBOX_ERROR, error=result.error or "sandbox failure", **common)
    raw = result.files.get(_RESULT_FILE)
    if raw is None:
        last = (result.stderr.strip().splitlines() or [""])[-1]
        reason = f"the workflow process ended without a result (exit {result.exit_code})" + (
            f": {last}" if last else ""
        )
        return Outcome(status=OutcomeStatus.ERROR, error=reason, **common)
    try:
        inner = json.loads(raw.decode("utf-8", "replace"))
        kind = OutcomeStatus(inner["status"])
    except (ValueError, KeyError, TypeError):
        return Outcome(status=OutcomeStatus.ERROR, error="the workflow's result file is corrupt", **common)
    if kind is OutcomeStatus.OK:
        return Outcome(status=kind, answer=inner.get("answer"), **common)
    return Outcome(status=kind, error=inner.get("error") or str(kind), **common)


async def run_workflow(
    source: str,
    problem: Any,
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
    operator_style: Any = None,
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
    invalid = _invalid(source, task, operators, started) if validate else None
    if invalid is not None:
        return invalid
    runs = _runs_of(sandbox)
    token = secrets.token_hex(16)
    state = RunState(
        executor=executor, tag=tag, max_calls=max_llm_calls, pass_tag=accepts_cache_tag(executor)
    )
    if runs is not None:
        runs.register(token, state)
    try:
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
        result = await sandbox.arun(job)
        remote = (getattr(result, "host_data", None) or {}).get(HOST_CALL)
        if remote is not None:  # served on a remote node (sf_workflows.remote): its accounting counts
            state.absorb(remote)
        return _outcome_from(result, state, started, timeout)
    finally:
        if runs is not None:
            runs.unregister(token)
        state.cancel_pending()  # nothing of a finished run keeps calling the endpoint


async def run_workflows(
    items: Iterable[tuple[str, Any]],
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

    async def one(source: str, problem: Any) -> Outcome:
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


def _drawer(bar: Any) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing on ``bar`` (a ``ProgressBar``)."""

    def draw(done: int, total: int) -> None:
        bar.update(done)

    return draw


def sandbox_code_runner(
    sandbox: Pool,
) -> Callable[[dict, float], Any]:
    """A code runner for :func:`run_workflow_unsafe` that runs the harness as a sandbox job.

    So Programmer and Test code stays out of the host even when the workflow itself does not.
    """
    from sf_sandbox import Job, Limits
    from sf_workflows.operators._harness import SOURCE

    async def run(request: dict, timeout: float) -> dict:
        base = getattr(sandbox, "limits", None)
        limits = dataclasses.replace(base if isinstance(base, Limits) else Limits(), timeout=timeout)
        result = await sandbox.arun(Job(source=SOURCE, stdin=json.dumps(request).encode(), limits=limits))
        try:
            reply = json.loads(result.stdout)
            if isinstance(reply, dict) and "ok" in reply:
                return reply
        except ValueError:
            pass
        reason = (
            f"timeout after {timeout:g}s"
            if str(result.status) == "timeout"
            else f"code runner failed: {result.status}"
        )
        return {"ok": False, "output": "", "stdout": "", "error": reason, "results": []}

    return run


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str


class _CountingLLM:
    """What operators see in an unsafe run: the executor behind the same limits and accounting."""

    def __init__(self, state: RunState):
        self._state = state

    async def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> _Reply:
        return _Reply(await serve_llm(self._state, [dict(m) for m in messages], params))


async def run_workflow_unsafe(
    source: str,
    problem: Any,
    executor: LLM,
    *,
    timeout: float = 120.0,
    validate: bool = True,
    operators: Sequence[str] | None = None,
    max_llm_calls: int = 50,
    code_runner: Callable[[dict, float], Any] | None = None,
    code_timeout: float = 10.0,
    tag: str = "0",
    operator_style: Any = None,
) -> Outcome:
    """Run a workflow **in this process, without isolation** — the way AFlow and ScoreFlow do.

    For measurement and debugging of trusted workflows only (``benchmarks/workflow_overhead.py``
    compares it with :func:`run_workflow`). The workflow's code runs with your credentials and
    files; a blocking loop stalls the event loop. Programmer and Test run code only through
    ``code_runner`` (e.g. :func:`sandbox_code_runner`); without one they fail.
    """
    from sf_workflows import operators as operator_module
    from sf_workflows.operators._context import RunContext, activate, deactivate
    from sf_workflows.operators._workflow import execute

    task = as_task(problem)
    started = time.monotonic()
    invalid = _invalid(source, task, operators, started) if validate else None
    if invalid is not None:
        return invalid
    state = RunState(
        executor=executor, tag=tag, max_calls=max_llm_calls, pass_tag=accepts_cache_tag(executor)
    )
    llm = _CountingLLM(state)
    ctx = RunContext(
        llm=llm,
        problem=task.workflow_input(),
        task_type=task.task_type,
        entry_point=task.entry_point,
        public_tests=task.public_tests,
        run_code=code_runner,
        code_timeout=code_timeout,
        **({} if operator_style is None else {"style": operator_style}),
    )
    token = activate(ctx)
    try:
        inner = await execute(source, llm, task.workflow_input(), timeout, operator_module)
    finally:
        deactivate(token)
    waited = state.waited()
    state.cancel_pending()
    return _stalled(_unsafe_outcome(inner, state, started, max_llm_calls), state, timeout, waited)


def _unsafe_outcome(inner: Mapping[str, Any], state: RunState, started: float, max_llm_calls: int) -> Outcome:
    common: dict[str, Any] = {"usage": state.usage, "duration": time.monotonic() - started}
    if state.llm_error is not None:
        return Outcome(status=OutcomeStatus.LLM_ERROR, error=f"executor failed: {state.llm_error}", **common)
    if state.over_limit:
        return Outcome(
            status=OutcomeStatus.CALL_LIMIT,
            error=f"the workflow tried more than {max_llm_calls} LLM calls",
            **common,
        )
    kind = OutcomeStatus(inner["status"])
    if kind is OutcomeStatus.OK:
        return Outcome(status=kind, answer=inner["answer"], **common)
    return Outcome(status=kind, error=inner["error"], **common)
