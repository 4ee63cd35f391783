"""The host side of a workflow's LLM calls: the ``sf_workflows_llm`` host call and its runs.

A workflow run inside the sandbox reaches the executor through one host call, :data:`HOST_CALL`.
The host call belongs to a :class:`WorkflowHostCalls` object, which owns the table of the runs it
serves: each run registers a :class:`RunState` there under a random token, and the host call finds
the run by its token and serves the call with the run's limits, cache numbering and accounting.
There is no module-level state: two sandboxes (or two nodes' hosts) in one process each have
their own object, and neither sees the other's runs. Both :mod:`sf_workflows.run` (one machine)
and :mod:`sf_workflows.remote` (host calls answered on a Ray node) use this module's public
names, so neither imports the other's internals.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sf_workflows.errors import WorkflowConfigError, WorkflowError
from sf_workflows.executor.cache import request_key
from sf_workflows.protocols import LLM, Message
from sf_workflows.types import Usage

if TYPE_CHECKING:
    from sf_sandbox.pool import Pool

__all__ = [
    "HOST_CALL",
    "JOB_FILE",
    "RunState",
    "WorkflowHostCalls",
    "accepts_cache_tag",
    "host_calls",
    "host_calls_of",
    "serve_llm",
]

HOST_CALL = "sf_workflows_llm"
"""The name of the host call that serves a workflow's executor calls."""
JOB_FILE = "sfw_job.json"
"""The job's spec file inside the sandbox (it carries the run's token)."""
_PARAMS = frozenset({"temperature", "max_tokens", "top_p", "stop", "seed"})
"""Chat parameters a workflow may set per call; others are dropped."""


@dataclass
class RunState:
    """The host side of one workflow run: its executor, limits and accounting so far."""

    executor: LLM
    """The LLM answering the run's operator calls."""
    tag: str
    """The run's cache tag (see ``run_workflow(tag=...)``)."""
    max_calls: int
    """Executor calls served before the run ends as ``call_limit``."""
    pass_tag: bool
    """Whether ``executor.complete`` accepts ``cache_tag`` (:func:`accepts_cache_tag`)."""
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    seen: Counter[str] = field(default_factory=Counter[str])
    over_limit: bool = False
    llm_error: str | None = None
    pending: dict[int, tuple[float, asyncio.Task[Any] | None]] = field(
        default_factory=dict[int, tuple[float, asyncio.Task[Any] | None]]
    )
    """Executor calls in flight: call number -> (monotonic start, the host-call task)."""
    cancelled_wait: float = 0.0
    """Longest wait of an executor call cancelled before it was answered (the run's timeout)."""
    remote_waited: float = 0.0
    """:meth:`waited` as a remote node reported it (:mod:`sf_workflows.remote`)."""

    def waited(self) -> float:
        """Seconds of the longest unanswered executor call (0 when none).

        The longest is the oldest one in flight, or one cancelled while waiting.
        """
        now = time.monotonic()
        oldest = max((now - started for started, _ in self.pending.values()), default=0.0)
        return max(oldest, self.cancelled_wait, self.remote_waited)

    def cancel_pending(self) -> None:
        """Cancel the executor calls still in flight (their run is over)."""
        for _, task in self.pending.values():
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.pending.clear()

    def facts(self) -> dict[str, Any]:
        """The JSON facts of a finished run that travel from a remote node back to the driver.

        They travel in ``Result.host_data[HOST_CALL]``, see :mod:`sf_workflows.remote`.
        """
        return {
            "calls": self.calls,
            "usage": self.usage.to_dict(),
            "over_limit": self.over_limit,
            "llm_error": self.llm_error,
            "waited": round(self.waited(), 3),
        }

    def absorb(self, facts: Mapping[str, Any]) -> None:
        """Take a node's :meth:`facts` of this same run into this (the driver's) state."""
        self.calls = int(facts.get("calls", 0))
        self.usage = Usage(**dict(facts.get("usage") or {}))
        self.over_limit = bool(facts.get("over_limit", False))
        error = facts.get("llm_error")
        self.llm_error = str(error) if error is not None else None
        self.remote_waited = float(facts.get("waited", 0.0) or 0.0)


def accepts_cache_tag(llm: object) -> bool:
    """Whether ``llm.complete`` takes a ``cache_tag`` keyword (by name or ``**params``).

    False for an object without a ``complete`` whose signature can be read.
    """
    complete: object = getattr(llm, "complete", None)
    if not callable(complete):
        return False
    try:
        params = inspect.signature(complete).parameters
    except (TypeError, ValueError):
        return False
    return "cache_tag" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


async def serve_llm(state: RunState, messages: object, params: object) -> str:
    """One LLM call for a run: limits, per-run occurrence numbering for the cache, accounting.

    ``messages`` and ``params`` are as the workflow sent them (untrusted): a non-empty list of
    messages (checked by the executor), and a mapping of chat parameters or None, of which those
    a workflow may set are kept.

    Returns the reply's text.

    Raises:
        WorkflowError: the run's call limit is reached or ``messages`` is malformed.
        Exception: whatever the executor raised (recorded as the run's ``llm_error`` unless it
            is a ``WorkflowConfigError``).
    """
    if state.calls >= state.max_calls:
        state.over_limit = True
        raise WorkflowError(f"LLM call limit reached ({state.max_calls} calls per workflow run)")
    state.calls += 1
    if not isinstance(messages, list) or not messages:
        raise WorkflowError("messages must be a non-empty list of {'role', 'content'} objects")
    sent = cast("Mapping[str, object]", params or {})  # not a mapping: AttributeError, reported
    params = {k: v for k, v in sent.items() if k in _PARAMS and v is not None}
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
        completion = await state.executor.complete(cast("list[Message]", messages), **params, **extra)
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


class WorkflowHostCalls(Mapping[str, Callable[..., Any]]):
    """The workflow host call (:data:`HOST_CALL`) of one sandbox or node, with its runs.

    A ``Mapping`` of one entry, so it goes wherever sf-sandbox takes host calls
    (``Sandbox(host_calls=...)``, merged with others by ``{**mine, **host_calls()}``). The entry
    is the bound method :meth:`serve`, so the sandbox keeps this object alive and
    :func:`host_calls_of` finds it again from the sandbox. Runs are registered with
    :meth:`register` and removed with :meth:`unregister`; a call for a token that is not
    registered here is refused, whichever other object in the process knows it.
    """

    def __init__(self) -> None:
        """An object with no runs."""
        self._runs: dict[str, RunState] = {}

    def __getitem__(self, name: str) -> Callable[..., Any]:
        """The host function named ``name`` (only :data:`HOST_CALL`)."""
        if name != HOST_CALL:
            raise KeyError(name)
        return self.serve

    def __iter__(self) -> Iterator[str]:
        """The one host call's name."""
        return iter((HOST_CALL,))

    def __len__(self) -> int:
        """One host call."""
        return 1

    def register(self, token: str, state: RunState) -> None:
        """Serve the host calls that carry ``token`` with ``state`` until :meth:`unregister`."""
        self._runs[token] = state

    def unregister(self, token: str) -> RunState | None:
        """Stop serving ``token``; return its state (None when it was not registered)."""
        return self._runs.pop(token, None)

    def tokens(self) -> frozenset[str]:
        """The tokens of the runs registered here now."""
        return frozenset(self._runs)

    async def serve(
        self, token: object, rid: object, messages: object, params: object = None
    ) -> dict[str, Any]:
        """The ``sf_workflows_llm`` host call; never raises.

        Its arguments come from the workflow (untrusted): the run's ``token``, the request id
        ``rid`` (echoed back), and ``messages`` and ``params`` for :func:`serve_llm`.

        Errors go back as ``{"rid", "error"}`` so the in-sandbox channel can match them to their
        request.
        """
        state = self._runs.get(token) if isinstance(token, str) else None
        if state is None:
            return {"rid": rid, "error": "unknown or finished workflow run"}
        try:
            return {"rid": rid, "text": await serve_llm(state, messages, params)}
        except asyncio.CancelledError:
            # the run is over (its job ended, or the loop is closing): nobody reads this reply, and
            # ending normally keeps sf-sandbox from reporting the cancellation as a traceback
            return {"rid": rid, "error": "cancelled: the workflow run is over", "final": True}
        except Exception as exc:  # noqa: BLE001 - reported to the workflow
            return {"rid": rid, "error": f"{type(exc).__name__}: {exc}", "final": state.over_limit}


def host_calls() -> WorkflowHostCalls:
    """The host calls a sandbox must expose for :func:`~sf_workflows.run_workflow`.

    A new :class:`WorkflowHostCalls` (give each sandbox its own).
    """
    return WorkflowHostCalls()


def host_calls_of(sandbox: Pool) -> WorkflowHostCalls | None:
    """The :class:`WorkflowHostCalls` whose :data:`HOST_CALL` ``sandbox`` exposes, or None.

    ``sandbox`` is an ``sf_sandbox.Sandbox`` (its ``hostcalls.functions`` holds the bound
    :meth:`WorkflowHostCalls.serve`); None when it has no such host call, or one that is not
    from :func:`host_calls`.
    """
    functions: Mapping[str, object] = getattr(getattr(sandbox, "hostcalls", None), "functions", None) or {}
    owner: object = getattr(functions.get(HOST_CALL), "__self__", None)
    return owner if isinstance(owner, WorkflowHostCalls) else None
