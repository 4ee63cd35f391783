"""run_workflow in the real sandbox.

Shipped workflows, misbehaving workflows (each a score-0 outcome with its reason; the batch goes
on), caching across reruns, accounting, isolation.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from sf_workflows import (
    TEMPLATE_NAMES,
    OutcomeStatus,
    Task,
    WorkflowConfigError,
    get_template,
    open_sandbox,
    run_workflow,
    run_workflows,
)
from sf_workflows.testing import Script, ScriptedLLM, ScriptedServer, answer_script, custom_workflow

pytestmark = pytest.mark.docker

ADD_CODE = "def add(a, b):\n    return a + b\n"


wf = custom_workflow


def run(source: str, task: Task, llm: Any, sandbox: Any, **options: Any):
    options.setdefault("timeout", 10)
    options.setdefault("grace", 2)
    return asyncio.run(run_workflow(source, task, llm, sandbox, **options))


@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES])
@pytest.mark.parametrize("task_type", ["math", "qa", "code"])
def test_shipped_workflows_run_in_the_sandbox(
    name: str, task_type: str, sandbox: Any, math_task: Task, qa_task: Task, code_task: Task
) -> None:
    task = {"math": math_task, "qa": qa_task, "code": code_task}[task_type]
    llm = ScriptedLLM(answer_script("42", code=ADD_CODE))
    outcome = run(get_template(name, task_type), task, llm, sandbox)
    assert outcome.status is OutcomeStatus.OK, (outcome.error, outcome.stderr)
    assert outcome.usage.calls == len(llm.requests) >= 1
    if task_type == "code" and name not in ("multipersona", "self_refine"):
        assert "def add(a, b)" in outcome.answer


def test_operator_calls_go_through_the_host_executor_over_http(
    server: ScriptedServer, make_executor, sandbox: Any, math_task: Task
) -> None:
    executor = make_executor(server)
    outcome = run(get_template("scoreflow", "math"), math_task, executor, sandbox)
    assert outcome.ok and outcome.answer == "42"
    assert server.chat_requests == 5 == outcome.usage.calls  # 2 custom, programmer, sc_ensemble, review
    assert outcome.usage.prompt_tokens == executor.usage.prompt_tokens > 0
    assert outcome.usage.cost == pytest.approx(executor.usage.cost) and outcome.usage.cost > 0


def test_rerun_is_served_from_the_cache(
    server: ScriptedServer, make_executor, sandbox: Any, math_task: Task
) -> None:
    source = get_template("cot_sc", "math")
    first = run(source, math_task, make_executor(server), sandbox)
    sent = server.chat_requests
    assert sent == 6  # five identical T=0.7 samples are distinct cache entries, plus the vote
    again = run(source, math_task, make_executor(server), sandbox)
    assert server.chat_requests == sent and again.answer == first.answer
    assert again.usage.cached_calls == 6 and again.usage.cost == 0.0
    resampled = run(source, math_task, make_executor(server), sandbox, tag="repeat-1")
    assert server.chat_requests == 2 * sent and resampled.ok


def test_concurrent_operators_overlap_on_the_host(make_executor, sandbox: Any, math_task: Task) -> None:
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def reply(_request: dict) -> str:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        threading.Event().wait(0.1)
        with lock:
            state["now"] -= 1
        return "ok"

    source = wf(
        "xs = await asyncio.gather(*[self.custom(instruction=str(i)) for i in range(4)])\nreturn xs[0]"
    )
    with ScriptedServer(reply) as srv:
        outcome = run(source, math_task, make_executor(srv, use_cache=False), sandbox)
    assert outcome.ok and state["max"] == 4


MISBEHAVING = {
    "infinite loop": (
        wf("while True:\n    pass\nreturn await self.custom(instruction='x')"),
        {"timeout": 1},
        OutcomeStatus.TIMEOUT,
        "blocked without awaiting",
    ),
    "never returns": (
        wf("await asyncio.sleep(3600)\nreturn await self.custom(instruction='x')"),
        {"timeout": 1},
        OutcomeStatus.TIMEOUT,
        "did not finish within 1s",
    ),
    "huge output": (
        wf("while True:\n    print('x' * 100000)\nreturn await self.custom(instruction='x')"),
        {},
        OutcomeStatus.OUTPUT_LIMIT,
        "printed too much",
    ),
    "huge answer": (
        wf("s = await self.custom(instruction='x')\nreturn s * 2000000"),
        {},
        OutcomeStatus.BAD_RETURN,
        "over the 1048576-byte limit",
    ),
    "bad operator args": (
        wf("return await self.custom(foo='x')"),
        {"validate": False},
        OutcomeStatus.ERROR,
        "unexpected keyword argument 'foo'",
    ),
    "bad operator arg type": (
        wf("return await self.custom(instruction=42)"),
        {},
        OutcomeStatus.ERROR,
        "argument 'instruction' must be a str, got int (workflow line",
    ),
    "floods host calls": (
        wf("for i in range(100000):\n    await self.custom(instruction=str(i))\nreturn 'x'"),
        {"max_llm_calls": 20},
        OutcomeStatus.CALL_LIMIT,
        "more than 20 LLM calls",
    ),
    "floods and swallows errors": (
        wf(
            "for i in range(100000):\n    try:\n        await self.custom(instruction=str(i))\n"
            "    except Exception:\n        pass\nreturn 'done'"
        ),
        {"max_llm_calls": 20},
        OutcomeStatus.CALL_LIMIT,
        "more than 20 LLM calls",
    ),
    "raises": (
        wf("x = await self.custom(instruction='x')\nraise ValueError('boom')\nreturn x"),
        {},
        OutcomeStatus.ERROR,
        "ValueError: boom (workflow line 9)",
    ),
    "returns a tuple": (
        wf("x = await self.custom(instruction='x')\nreturn x, 0.0"),
        {},
        OutcomeStatus.BAD_RETURN,
        "run_workflow returned tuple, expected str",
    ),
    "syntax error": (
        "class Workflow:\n    def __init__(self, config, problem)\n",
        {"validate": False},
        OutcomeStatus.ERROR,
        "SyntaxError",
    ),
    "sync run_workflow": (
        wf("return 'x'").replace("async def run_workflow", "def run_workflow"),
        {"validate": False},
        OutcomeStatus.BAD_RETURN,
        "must be 'async def'",
    ),
    "calls exit": (
        wf("raise SystemExit(3)\nreturn await self.custom(instruction='x')"),
        {"validate": False},
        OutcomeStatus.ERROR,
        "the workflow called exit(3)",
    ),
    "imports os (validated)": (
        "import os\n" + wf("return await self.custom(instruction='x')"),
        {},
        OutcomeStatus.INVALID,
        "import of 'os' is not allowed",
    ),
    "imports socket (run anyway)": (
        "import socket\n"
        + wf(
            "socket.create_connection(('1.1.1.1', 80), timeout=2)\nreturn await self.custom(instruction='x')"
        ),
        {"validate": False},
        OutcomeStatus.ERROR,
        "OSError",
    ),
    "kills its own process": (
        "import os\n" + wf("os._exit(0)\nreturn await self.custom(instruction='x')"),
        {"validate": False},
        OutcomeStatus.ERROR,
        "ended without a result",
    ),
}


@pytest.mark.parametrize("case", list(MISBEHAVING))
def test_misbehaving_workflow_becomes_a_scored_failure(case: str, sandbox: Any, math_task: Task) -> None:
    source, options, status, reason = MISBEHAVING[case]
    outcome = run(source, math_task, ScriptedLLM("ok"), sandbox, **options)
    assert outcome.status is status, (outcome.error, outcome.stderr[-500:])
    assert outcome.answer is None and reason in (outcome.error or ""), outcome.error


def test_the_container_has_no_key_and_no_network(
    sandbox: Any, math_task: Task, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-on-the-host")
    source = "import os\nimport socket\n" + wf(
        "await self.custom(instruction='x')\n"
        "try:\n    socket.create_connection(('93.184.216.34', 80), timeout=2)\n    net = 'net'\n"
        "except OSError as exc:\n    net = 'no-net'\n"
        "return repr(os.environ.get('OPENAI_API_KEY')) + ' ' + net"
    )
    outcome = run(source, math_task, ScriptedLLM("ok"), sandbox, validate=False)
    assert outcome.ok and outcome.answer == "None no-net"


def test_executor_failure_is_reported_as_llm_error(make_executor, sandbox: Any, math_task: Task) -> None:
    with ScriptedServer("ok") as srv:
        srv.fail(500, 10)
        outcome = run(get_template("cot", "math"), math_task, make_executor(srv, max_retries=1), sandbox)
    assert outcome.status is OutcomeStatus.LLM_ERROR and "HTTP 500" in outcome.error


def test_batch_goes_on_past_failures_in_order(sandbox: Any, math_task: Task) -> None:
    good = get_template("cot", "math")
    bad = wf("raise RuntimeError('bad')\nreturn await self.custom(instruction='x')")
    hang = wf("await asyncio.sleep(60)\nreturn await self.custom(instruction='x')")
    items = [
        (good, math_task),
        (bad, math_task),
        (hang, math_task),
        ("not python", math_task),
        (good, math_task),
    ]
    outcomes = asyncio.run(
        run_workflows(items, ScriptedLLM("The answer is 42"), sandbox, concurrency=2, timeout=1, grace=2)
    )
    assert [o.status for o in outcomes] == [
        OutcomeStatus.OK,
        OutcomeStatus.ERROR,
        OutcomeStatus.TIMEOUT,
        OutcomeStatus.NO_WORKFLOW,  # "not python" holds no workflow at all
        OutcomeStatus.OK,
    ]
    assert outcomes[0].answer == outcomes[4].answer == "The answer is 42"


def test_programmer_and_test_run_inside_the_workflow_job(sandbox: Any, code_task: Task) -> None:
    buggy = "def add(a, b):\n    return a - b\n"
    fixes = Script([(r"Failures:", f"```python\n{ADD_CODE}```")], default=f"```python\n{buggy}```")
    source = (
        "class Workflow:\n"
        "    def __init__(self, config, problem) -> None:\n"
        "        self.llm = create(config)\n"
        "        self.code_generate = operator.CustomCodeGenerate(self.llm, problem)\n"
        "        self.test = operator.Test(self.llm, problem)\n\n"
        "    async def run_workflow(self):\n"
        "        code = await self.code_generate(instruction='Write it.')\n"
        "        return await self.test(solution=code)\n"
    )
    llm = ScriptedLLM(fixes)
    outcome = run(source, code_task, llm, sandbox)
    assert outcome.ok and outcome.answer == ADD_CODE
    assert "assert add(1, 2) == 3" in llm.requests[1]["messages"][0]["content"]


def test_sandbox_without_the_host_call_is_a_config_error(docker_ready: None, math_task: Task) -> None:
    from sf_sandbox import Sandbox

    with Sandbox(pool_size=1) as plain, pytest.raises(WorkflowConfigError, match="open_sandbox"):
        run(get_template("cot", "math"), math_task, ScriptedLLM("x"), plain)


def test_the_runtime_is_preloaded_or_shipped_as_the_pool_has_it(docker_ready: None, math_task: Task) -> None:
    """open_sandbox preloads the operator runtime; a pool without it ships the zip per job.

    open_sandbox's jobs carry no zip; a pool without the preload gets the zip with every job; both
    run the workflow the same way.
    """
    from sf_sandbox import Sandbox
    from sf_workflows import host_calls
    from sf_workflows._job import ZIP_FILE
    from sf_workflows.run import build_job

    plain = dict(timeout=5.0, code_timeout=5.0, max_llm_calls=4, max_answer_bytes=1000, base_limits=None)
    assert ZIP_FILE in build_job("x", math_task, "t", **plain).files
    assert ZIP_FILE not in build_job("x", math_task, "t", runtime_preloaded=True, **plain).files
    outcomes = []
    for pool in (open_sandbox(pool_size=1), Sandbox(pool_size=1, host_calls=host_calls())):
        with pool:
            llm = ScriptedLLM(answer_script("42"))
            outcomes.append(run(get_template("cot", "math"), math_task, llm, pool))
    assert [o.status for o in outcomes] == [OutcomeStatus.OK, OutcomeStatus.OK]
    assert outcomes[0].answer == outcomes[1].answer


def test_duck_typed_problem_is_accepted(sandbox: Any) -> None:
    class Problem:
        id = "HumanEval/0"
        task_type = "code"
        prompt = "def add(a, b):\n"
        extras = {"entry_point": "add", "public_tests": ["assert candidate(1, 1) == 2"], "test": "hidden"}

    llm = ScriptedLLM(answer_script(code="def add(a, b):\n    return a - b\n"))  # fails the public test
    outcome = run(get_template("scoreflow", "code"), Problem(), llm, sandbox)
    assert outcome.ok and "def add" in outcome.answer
    assert any("assert candidate(1, 1) == 2" in r["messages"][0]["content"] for r in llm.requests)
    assert all("hidden" not in r["messages"][0]["content"] for r in llm.requests)


def test_two_sandboxes_do_not_see_each_others_runs(sandbox: Any, math_task: Task) -> None:
    """Each sandbox's host-call object owns its run table.

    A run registers on the sandbox it was given, the other sandbox's host call refuses its token,
    and nothing stays after the run.
    """
    from sf_workflows.llm_calls import host_calls_of
    from sf_workflows.protocols import Completion

    other = open_sandbox(pool_size=1)
    mine, theirs = host_calls_of(sandbox), host_calls_of(other)
    assert mine is not None and theirs is not None and mine is not theirs
    seen: list[tuple[frozenset[str], frozenset[str], dict[str, Any]]] = []

    class Probe:
        async def complete(self, messages: Any, **params: Any) -> Completion:
            (token,) = mine.tokens()
            refused = await theirs.serve(token, 7, [{"role": "user", "content": "x"}])
            seen.append((mine.tokens(), theirs.tokens(), refused))
            return Completion(text="The answer is 42")

    with other:
        outcome = run(get_template("cot", "math"), math_task, Probe(), sandbox)
    assert outcome.ok and seen
    for here, there, refused in seen:
        assert len(here) == 1 and not there
        assert refused == {"rid": 7, "error": "unknown or finished workflow run"}
    assert not mine.tokens() and not theirs.tokens()
    assert host_calls_of(open_sandbox(pool_size=1)) is not mine  # every sandbox gets its own
