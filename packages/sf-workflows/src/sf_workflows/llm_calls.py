"""The host side of a workflow's LLM calls: the ``sf_workflows_llm`` host call and its runs.

A workflow run inside the sandbox reaches the executor through one host call, :data:`HOST_CALL`.
Each run registers a :class:`_RunState` under a random token; the host call finds the run by its
token and serves the call with the run's limits, cache numbering and accounting. Both
:mod:`sf_workflows.run` (one machine) and :mod:`sf_workflows.remote` (host calls answered on a
Ray node) use this module, so neither imports the other's internals.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sf_workflows.errors import WorkflowConfigError, WorkflowError
from sf_workflows.executor.cache import request_key
from sf_workflows.types import Usage

__all__ = ["HOST_CALL", "host_calls"]

HOST_CALL = "sf_workflows_llm"
"""The name of the host call that serves a workflow's executor calls."""
_JOB_FILE = "sfw_job.json"
"""The job's spec file inside the sandbox (it carries the run's token)."""
_PARAMS = frozenset({"temperature", "max_tokens", "top_p", "stop", "seed"})
"""Chat parameters a workflow may set per call; others are dropped."""


@dataclass
class _RunState:
    executor: Any
    tag: str
    max_calls: int
    pass_tag: bool
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    seen: Counter[str] = field(default_factory=Counter)
    over_limit: bool = False
    llm_error: str | None = None
    pending: dict[int, tuple[float, asyncio.Task[Any] | None]] = field(default_factory=dict)
    """Executor calls in flight: call number -> (monotonic start, the host-call task)."""
    cancelled_wait: float = 0.0
    """Longest wait of an executor call cancelled before it was answered (the run's timeout)."""
    remote_waited: float = 0.0
    """:meth:`waited` as a remote node reported it (:mod:`sf_workflows.remote`)."""

    def waited(self) -> float:
        """Seconds of the longest unanswered executor call: the oldest one in flight, or one
        cancelled while waiting (0 when none)."""
        now = time.monotonic()
        oldest = max((now - started for started, _ in self.pending.values()), default=0.0)
        return max(oldest, self.cancelled_wait, self.remote_waited)

    def cancel_pending(self) -> None:
        """Cancel the executor calls still in flight (their run is over)."""
        for _, task in self.pending.values():
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.pending.clear()


_RUNS: dict[str, _RunState] = {}


def _accepts_cache_tag(llm: Any) -> bool:
    try:
        params = inspect.signature(llm.complete).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "cache_tag" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


async def _serve_llm(state: _RunState, messages: Any, params: Any) -> str:
    """One LLM call for a run: limits, per-run occurrence numbering for the cache, accounting."""
    if state.calls >= state.max_calls:
        state.over_limit = True
        raise WorkflowError(f"LLM call limit reached ({state.max_calls} calls per workflow run)")
    state.calls += 1
    if not isinstance(messages, list) or not messages:
        raise WorkflowError("messages must be a non-empty list of {'role', 'content'} objects")
    params = {k: v for k, v in (params or {}).items() if k in _PARAMS and v is not None}
    key = request_key({"messages": messages, "params": params})
    occurrence = state.seen[key]
    state.seen[key] += 1
    extra = {"cache_tag": f"{state.tag}#{occurrence}"} if state.pass_tag else {}
    number = state.calls
    try:
        task = asyncio.current_task()
    except RuntimeError:  # pragma: no cover - always called from a coroutine
        task = None
    began = time.monotonic()
    state.pending[number] = (began, task)
    try:
        completion = await state.executor.complete(messages, **params, **extra)
    except asyncio.CancelledError:
        state.cancelled_wait = max(state.cancelled_wait, time.monotonic() - began)
        raise
    except WorkflowConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the executor failed: not the workflow's fault
        state.llm_error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        state.pending.pop(number, None)
    state.usage = state.usage + Usage.of(completion)
    return completion.text


async def _llm_host_call(token: str, rid: int, messages: Any, params: Any = None) -> dict[str, Any]:
    """The ``sf_workflows_llm`` host call. Never raises: errors go back as ``{"rid", "error"}``
    so the in-sandbox channel can match them to their request."""
    state = _RUNS.get(token) if isinstance(token, str) else None
    if state is None:
        return {"rid": rid, "error": "unknown or finished workflow run"}
    try:
        return {"rid": rid, "text": await _serve_llm(state, messages, params)}
    except asyncio.CancelledError:
        # the run is over (its job ended, or the loop is closing): nobody reads this reply, and
        # ending normally keeps sf-sandbox from reporting the cancellation as a traceback
        return {"rid": rid, "error": "cancelled: the workflow run is over", "final": True}
    except Exception as exc:  # noqa: BLE001 - reported to the workflow
        return {"rid": rid, "error": f"{type(exc).__name__}: {exc}", "final": state.over_limit}


def host_calls() -> dict[str, Callable[..., Any]]:
    """The host calls a sandbox must expose for :func:`run_workflow`."""
    return {HOST_CALL: _llm_host_call}
