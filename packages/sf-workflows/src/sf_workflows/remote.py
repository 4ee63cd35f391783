"""Workflow runs whose host side lives on another machine: the nodes of an sf-sandbox ``RayPool``.

In a local sandbox a workflow's operator calls come back to this process, where
:func:`~sf_workflows.run_workflow` answers them with its ``executor``. A ``RayPool`` runs the
job on some node of a Ray cluster, and the job's host calls are answered *on that node*. So each
node needs an executor of its own, and the run's accounting (calls, tokens, cost, executor
failure, call limit) must come back to the driver with the result. :func:`remote_host` gives
both: a picklable factory that the pool runs once on every node, building a
:class:`WorkflowHost` there::

    from sf_sandbox.ray_pool import RayPool
    from sf_workflows import Executor, ExecutorConfig, remote_host, run_workflow

    config = ExecutorConfig(model="gpt-4o-mini", cache_dir="/shared/sf-cache", key_envs=("OPENAI_API_KEY",))
    with RayPool(address="auto", node_host=remote_host(config)) as pool:
        outcome = await run_workflow(source, problem, Executor(config), pool)

The node's executor gets exactly the requests (and cache tags) a local run would send, so a
response cache on storage every node sees replays a resumed run wherever its jobs land; the
outcome (answer, status, usage) is the one a local run gives. The driver's ``executor`` is not
called for such runs; pass the same configuration so its checks (endpoint, key) fail early.

What the node needs: ``sf_workflows`` installed, and for an :class:`~sf_workflows.ExecutorConfig`
the key in one of its ``key_envs`` in the node's environment (the key itself is never pickled:
build the config with ``api_key=None``), or a ``base_url`` the node can reach.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sf_workflows.errors import WorkflowConfigError
from sf_workflows.executor.client import Executor, ExecutorConfig
from sf_workflows.llm_calls import HOST_CALL, JOB_FILE, RunState, WorkflowHostCalls, accepts_cache_tag
from sf_workflows.protocols import LLM

if TYPE_CHECKING:
    from sf_sandbox import Job, Result

__all__ = ["RemoteHost", "WorkflowHost", "remote_host"]

ExecutorSpec = ExecutorConfig | LLM | Callable[[], LLM]
"""How a node gets its executor: an :class:`ExecutorConfig` (the node builds an
:class:`Executor`), an LLM object (anything with ``async complete``, pickled as it is), or a
picklable zero-argument callable returning one."""


def _run_spec(job: Job) -> dict[str, Any] | None:
    """The host part of a workflow job's spec (token, tag, call limit); None for other jobs."""
    files: Mapping[str, bytes] = getattr(job, "files", None) or {}
    raw = files.get(JOB_FILE)
    if raw is None:
        return None
    try:
        spec = json.loads(raw)
        host = spec["host"]
        return {"token": str(spec["token"]), "tag": str(host["tag"]), "max_calls": int(host["max_llm_calls"])}
    except (ValueError, KeyError, TypeError):
        return None


class WorkflowHost:
    """The host side of workflow jobs on one node.

    It answers their LLM calls with this node's executor and reports each run's accounting in
    ``Result.host_data[HOST_CALL]``.

    Satisfies sf-sandbox's ``NodeHost`` protocol; built on the node by :class:`RemoteHost`.
    Jobs that are not workflow runs pass through untouched.
    """

    def __init__(self, executor: LLM) -> None:
        """``executor``: the LLM that answers operator calls on this node."""
        self.executor = executor
        self._pass_tag = accepts_cache_tag(executor)
        self._calls = WorkflowHostCalls()
        """This node's host call and the table of the runs it serves."""

    def host_calls(self) -> WorkflowHostCalls:
        """The workflow host call (:data:`~sf_workflows.run.HOST_CALL`), serving this host's runs."""
        return self._calls

    def job_started(self, job: Job) -> None:
        """Register the run of a workflow job, so its host calls are served on this node."""
        spec = _run_spec(job)
        if spec is not None:
            state = RunState(
                executor=self.executor, tag=spec["tag"], max_calls=spec["max_calls"], pass_tag=self._pass_tag
            )
            self._calls.register(spec["token"], state)

    def job_finished(self, job: Job, result: Result) -> Result:
        """End the run; return ``result`` with the run's accounting in ``host_data``."""
        spec = _run_spec(job)
        state = self._calls.unregister(spec["token"]) if spec is not None else None
        if state is None:
            return result
        facts = state.facts()
        state.cancel_pending()  # nothing of a finished run keeps calling the endpoint
        return dataclasses.replace(result, host_data={**result.host_data, HOST_CALL: facts})

    def close(self) -> None:
        """Close the executor's response cache, if it has one (the node's pool is stopping)."""
        closer = getattr(self.executor, "close_cache", None)
        if callable(closer):
            closer()


@dataclass(frozen=True, slots=True)
class RemoteHost:
    """Picklable factory of a node's :class:`WorkflowHost` (give it to ``RayPool(node_host=...)``).

    Raises (on the node, which then stays out of the pool with this reason):
        WorkflowConfigError: the executor cannot be built there (no key in the node's
            environment and no base URL).
    """

    executor: ExecutorSpec
    """See :data:`ExecutorSpec`."""

    def __call__(self) -> WorkflowHost:
        """Build the node's executor and its :class:`WorkflowHost`."""
        spec = self.executor
        executor: object
        if isinstance(spec, ExecutorConfig):
            executor = Executor(spec)
        elif hasattr(spec, "complete"):
            executor = spec
        else:
            executor = cast("Callable[[], object]", spec)()
        if not hasattr(executor, "complete"):
            raise WorkflowConfigError(
                f"the node's executor must have an async complete() method, got {type(executor).__name__}"
            )
        return WorkflowHost(cast(LLM, executor))  # checked: it has complete()


def remote_host(executor: ExecutorSpec) -> RemoteHost:
    """The ``node_host`` factory for a ``RayPool`` that runs workflows (see the module docstring).

    Args:
        executor: An :class:`ExecutorConfig` (each node builds its own :class:`Executor`; leave
            ``api_key`` unset so no key is pickled, and point ``cache_dir`` at shared storage),
            an LLM object (pickled to every node as it is, e.g. a scripted test double), or a
            picklable zero-argument callable returning one.

    Raises:
        WorkflowConfigError: ``executor`` is none of these, or an ``ExecutorConfig`` carries
            an ``api_key`` (it would be pickled to every node).
    """
    if isinstance(executor, ExecutorConfig):
        if executor.api_key:
            raise WorkflowConfigError(
                "remote_host: leave ExecutorConfig.api_key unset, so the key is not pickled to every "
                f"node; put it in one of {', '.join(executor.key_envs)} in each node's environment"
            )
    elif not hasattr(executor, "complete") and not callable(executor):
        raise WorkflowConfigError(
            "remote_host needs an ExecutorConfig, an LLM (with async complete()) or a factory of one, "
            f"got {type(executor).__name__}"
        )
    return RemoteHost(executor)
