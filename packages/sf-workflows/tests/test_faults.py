"""Fault injection: an OpenAI-compatible server on 127.0.0.1 that misbehaves as real ones do.

It is driven by the real ``openai`` client over real HTTP, and workflows run in the real sandbox.

For each fault: what the executor (and a workflow run's outcome) says, that nothing bad is
cached so a rerun asks again, and that the batch goes on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sf_workflows import ExecutorError, OutcomeStatus, Task, get_template, run_workflow, run_workflows
from sf_workflows.failures import (
    FailureKind,
    InfraCause,
    InfrastructureError,
    failure_kind,
    failure_label,
    infra_cause,
    raise_for_infra,
)
from sf_workflows.testing import Fault, ScriptedServer, answer_script

MSG = [{"role": "user", "content": "What is six times seven?"}]

FAULTS = {
    "500": (Fault.STATUS, {"status": 500}, "HTTP 500"),
    "503": (Fault.STATUS, {"status": 503}, "HTTP 503"),
    "429 with Retry-After": (Fault.STATUS, {"status": 429, "retry_after": 0.05}, "HTTP 429"),
    "429 without Retry-After": (Fault.STATUS, {"status": 429}, "HTTP 429"),
    "reset mid-body": (Fault.RESET, {}, "cannot reach the executor endpoint"),
    "hang": (Fault.HANG, {}, "did not answer within 0.5 s"),
    "empty choices": (Fault.EMPTY_CHOICES, {}, "reply with no choices"),
    "non-JSON 200": (Fault.NON_JSON, {}, "not a chat completion"),
    "slow drip": (Fault.DRIP, {}, "did not answer within 0.5 s"),
}


@pytest.fixture
def faulty() -> Any:
    """A server answering 42, whose hangs and drips outlast the executors' 0.5 s request timeout."""
    with ScriptedServer(answer_script("42"), hang_seconds=5.0, drip_seconds=2.0) as srv:
        yield srv


CONCURRENCY = {"default pool": 16, "pool sized for 256": 256}
"""Executor concurrencies: the client's own HTTP pool, and the one built past ``KEEPALIVE``."""


@pytest.mark.parametrize("pool", list(CONCURRENCY))
@pytest.mark.parametrize("case", list(FAULTS))
def test_a_passing_fault_is_retried_and_the_reply_is_the_healthy_one(
    case: str, pool: str, faulty: ScriptedServer, make_executor: Any
) -> None:
    fault, options, _ = FAULTS[case]
    faulty.inject(fault, 2, **options)
    executor = make_executor(faulty, max_retries=3, request_timeout=0.5, concurrency=CONCURRENCY[pool])
    completion = asyncio.run(executor.complete(MSG))
    assert completion.text == "The answer is 42"
    assert faulty.chat_requests == 3 and faulty.failed_requests == 2


@pytest.mark.parametrize("pool", list(CONCURRENCY))
@pytest.mark.parametrize("case", list(FAULTS))
def test_a_fault_past_the_retries_is_an_infrastructure_error_naming_the_endpoint_and_is_not_cached(
    case: str, pool: str, faulty: ScriptedServer, make_executor: Any
) -> None:
    fault, options, message = FAULTS[case]
    faulty.inject(fault, 3, **options)
    executor = make_executor(faulty, max_retries=2, request_timeout=0.5, concurrency=CONCURRENCY[pool])
    with pytest.raises(ExecutorError, match=message) as info:
        asyncio.run(executor.complete(MSG))
    error = info.value
    assert faulty.base_url in str(error) and "gave up after 3 attempts" in str(error)
    assert error.retryable and infra_cause(error) is InfraCause.ENDPOINT
    assert executor.cache is not None and len(executor.cache) == 0  # a rerun asks again
    rerun = asyncio.run(executor.complete(MSG))  # the endpoint is healthy again
    assert rerun.text == "The answer is 42" and not rerun.cached and faulty.chat_requests == 4


def test_retry_after_is_honoured(faulty: ScriptedServer, make_executor: Any) -> None:
    faulty.fail(429, 1, retry_after=0.4)
    executor = make_executor(faulty, max_retries=2, retry_base_delay=0.001, retry_max_delay=5.0)
    started = time.monotonic()
    asyncio.run(executor.complete(MSG))
    assert time.monotonic() - started >= 0.3  # 0.4 s with at most 25% jitter


def test_a_closed_port_fails_fast_as_an_infrastructure_error(make_executor: Any) -> None:
    srv = ScriptedServer()
    srv.stop()  # nothing listens there any more
    executor = make_executor(srv, max_retries=1)
    started = time.monotonic()
    with pytest.raises(
        ExecutorError, match=r"cannot reach the executor endpoint http://127\.0\.0\.1"
    ) as info:
        asyncio.run(executor.complete(MSG))
    assert infra_cause(info.value) is InfraCause.ENDPOINT and time.monotonic() - started < 10


def test_client_errors_are_the_callers_not_infrastructure(faulty: ScriptedServer, make_executor: Any) -> None:
    faulty.fail(401, 1)
    with pytest.raises(ExecutorError) as info:
        asyncio.run(make_executor(faulty).complete(MSG))
    assert infra_cause(info.value) is None


def test_every_status_is_classified_once() -> None:
    infra = {OutcomeStatus.LLM_ERROR, OutcomeStatus.SANDBOX_ERROR}
    for status in OutcomeStatus:
        kind = failure_kind(status)
        label = failure_label(status)
        if status is OutcomeStatus.OK:
            assert kind is None and label is None
        elif status in infra:
            assert kind is FailureKind.INFRA and label is not None and label.startswith("infra:")
        else:
            assert kind is FailureKind.SYSTEM and label is not None and label.startswith("workflow:")
    assert failure_label(OutcomeStatus.ERROR) == "workflow:exception"
    assert failure_label(OutcomeStatus.NO_WORKFLOW) == "workflow:no_workflow"


# ------------------------------------------------------------------ workflow runs in the sandbox
@pytest.mark.parametrize("case", list(FAULTS))
def test_a_workflow_whose_executor_fails_ends_as_ours_and_the_batch_goes_on(
    case: str, faulty: ScriptedServer, make_executor: Any, sandbox: Any, math_task: Task
) -> None:
    fault, options, message = FAULTS[case]
    source = get_template("cot", "math")
    executor = make_executor(faulty, max_retries=1, request_timeout=0.5)
    faulty.inject(fault, 2, **options)  # the first run's call and its one retry
    outcomes = asyncio.run(
        run_workflows(
            [(source, math_task), (source, math_task)], executor, sandbox, concurrency=1, timeout=20
        )
    )
    first, second = outcomes
    assert first.status is OutcomeStatus.LLM_ERROR and message in (first.error or ""), first.error
    assert first.infrastructure and first.failure == "infra:endpoint"
    with pytest.raises(InfrastructureError) as info:
        raise_for_infra(first)
    assert info.value.infrastructure is InfraCause.ENDPOINT
    assert second.ok and "42" in (second.answer or "")


def test_a_hung_endpoint_is_not_the_workflows_timeout_and_prints_no_traceback(
    make_executor: Any, sandbox: Any, math_task: Task, capfd: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(answer_script("42"), hang_seconds=20.0) as srv:
        srv.inject(Fault.HANG, 1)
        executor = make_executor(srv, request_timeout=30)  # longer than the workflow may take
        outcome = asyncio.run(
            run_workflow(get_template("cot", "math"), math_task, executor, sandbox, timeout=2)
        )
        assert outcome.status is OutcomeStatus.LLM_ERROR, outcome
        assert "left a call unanswered" in (outcome.error or "") and srv.base_url in (outcome.error or "")
        again = asyncio.run(
            run_workflow(get_template("cot", "math"), math_task, executor, sandbox, timeout=20)
        )
        assert again.ok  # nothing was cached: the rerun asks again and gets the answer
    err = capfd.readouterr().err
    assert "Traceback" not in err and "CancelledError" not in err, err[-2000:]


def test_a_workflow_that_times_out_on_its_own_is_still_its_timeout(
    make_executor: Any, sandbox: Any, math_task: Task
) -> None:
    source = (
        "class Workflow:\n"
        "    def __init__(self, config, problem) -> None:\n"
        "        self.custom = operator.Custom(create(config), problem)\n\n"
        "    async def run_workflow(self):\n"
        "        n = 0\n"
        "        while True:\n"
        "            n += 1\n"
        "            await self.custom(instruction=f'again {n}')\n"
    )
    with ScriptedServer(answer_script("42"), latency=0.05) as srv:
        outcome = asyncio.run(
            run_workflow(
                source,
                math_task,
                make_executor(srv),
                sandbox,
                timeout=2,
                validate=False,
                max_llm_calls=10_000,
            )
        )
    assert outcome.status is OutcomeStatus.TIMEOUT and outcome.failure == "workflow:timeout"
