"""sf_workflows.remote: a node's own executor answers a workflow's LLM calls.

The run's accounting comes back to the driver in the result, exactly as a local run reports it.

The node is played in this process: the node host's hooks run around a real sandbox job, as a
``RayPool`` node's actor runs them (the Ray path itself is tested in sf-train's
``test_loop_ray.py`` on a 2-node cluster).
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from sf_workflows import (
    ExecutorConfig,
    OutcomeStatus,
    RemoteHost,
    Task,
    WorkflowConfigError,
    WorkflowHost,
    get_template,
    remote_host,
    run_workflow,
)
from sf_workflows.run import HOST_CALL
from sf_workflows.testing import ScriptedLLM, answer_script

pytestmark = pytest.mark.docker


class NodeLike:
    """A pool whose host side is a node host, as on a RayPool node.

    ``node_host`` marks it so: the node's own sandbox exposes the node host's host calls, as
    ``RayPool``'s node actor builds it.
    """

    def __init__(self, factory: RemoteHost, sandbox: Any) -> None:
        from sf_sandbox import Sandbox

        self.node_host = factory
        self.host = factory()
        self.sandbox = Sandbox(
            pool_size=1, limits=sandbox.limits, preload=sandbox.preload, host_calls=self.host.host_calls()
        )
        self.limits = sandbox.limits
        self.results: list[Any] = []

    def __enter__(self) -> NodeLike:
        self.sandbox.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sandbox.__exit__(*exc)

    async def arun(self, job: Any) -> Any:
        self.host.job_started(job)
        result = self.host.job_finished(job, await self.sandbox.arun(job))
        self.results.append(result)
        return result


class Unused:
    """The driver's executor: never asked when the node answers."""

    async def complete(self, messages: Any, **params: Any) -> Any:
        raise AssertionError("the driver's executor was called")


def test_the_nodes_executor_answers_and_the_accounting_comes_back(sandbox: Any, math_task: Task) -> None:
    import asyncio

    node_llm = ScriptedLLM(answer_script("42"), cost_per_token=0.001)
    source = get_template("scoreflow", "math")
    with NodeLike(remote_host(node_llm), sandbox) as node:
        remote = asyncio.run(run_workflow(source, math_task, Unused(), node, tag="t"))
    local = asyncio.run(
        run_workflow(
            source, math_task, ScriptedLLM(answer_script("42"), cost_per_token=0.001), sandbox, tag="t"
        )
    )
    assert remote.status is OutcomeStatus.OK and remote.answer == local.answer
    assert remote.usage == local.usage and remote.usage.calls > 0 and remote.usage.cost > 0
    assert node.host.executor.requests  # the node's own copy of the executor answered
    facts = node.results[0].host_data[HOST_CALL]
    assert facts["calls"] == remote.usage.calls and facts["llm_error"] is None


def test_an_executor_failure_on_the_node_is_an_llm_error(sandbox: Any, math_task: Task) -> None:
    import asyncio

    def broken(request: Any) -> str:
        raise ConnectionError("endpoint down")

    with NodeLike(remote_host(ScriptedLLM(broken)), sandbox) as node:
        outcome = asyncio.run(run_workflow(get_template("scoreflow", "math"), math_task, Unused(), node))
    assert outcome.status is OutcomeStatus.LLM_ERROR and "endpoint down" in (outcome.error or "")


def test_remote_host_pickles_and_builds_an_executor_from_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config = ExecutorConfig(model="m", cache_dir=str(tmp_path / "cache"), key_envs=("SF_TEST_NODE_KEY",))
    factory = pickle.loads(pickle.dumps(remote_host(config)))
    monkeypatch.delenv("SF_TEST_NODE_KEY", raising=False)
    monkeypatch.delenv("SF_EXECUTOR_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(WorkflowConfigError, match="SF_TEST_NODE_KEY"):  # no key on this "node"
        factory()
    monkeypatch.setenv("SF_TEST_NODE_KEY", "node-key")
    host = factory()
    assert isinstance(host, WorkflowHost) and host.executor.model == "m"
    assert set(host.host_calls()) == {HOST_CALL}
    host.executor.close_cache()


def test_remote_host_refuses_what_cannot_work(math_task: Task) -> None:
    import asyncio

    from sf_sandbox.ray_pool import RayPool

    with pytest.raises(WorkflowConfigError, match="api_key"):  # the key would be pickled to every node
        remote_host(ExecutorConfig(model="m", api_key="secret"))
    with pytest.raises(WorkflowConfigError, match="ExecutorConfig, an LLM"):
        remote_host(42)
    pool = RayPool()  # never started: the check comes first
    with pytest.raises(WorkflowConfigError, match="node_host=sf_workflows.remote_host"):
        asyncio.run(run_workflow(get_template("scoreflow", "math"), math_task, Unused(), pool))
