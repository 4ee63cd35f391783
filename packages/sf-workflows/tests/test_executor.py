"""The executor over real HTTP (scripted server + the real openai client).

Requests, cost, cache, retries, concurrency, configuration errors.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from sf_workflows import Executor, ExecutorConfig, ExecutorError, PriceTable, WorkflowConfigError
from sf_workflows.executor import Price
from sf_workflows.testing import Script, ScriptedServer

MSG = [{"role": "user", "content": "What is six times seven?"}]


def test_request_reply_tokens_and_cost(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server)
    completion = asyncio.run(executor.complete(MSG))
    assert completion.text == "The answer is 42" and not completion.cached
    assert (completion.prompt_tokens, completion.completion_tokens) == (5, 4)  # words, counted by the server
    assert completion.cost == pytest.approx((5 * 0.15 + 4 * 0.60) / 1e6)  # gpt-4o-mini list price
    body = server.requests[0]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.0 and body["messages"] == MSG
    assert executor.usage.calls == 1 and executor.usage.cost == pytest.approx(completion.cost)


def test_parameters_override_defaults(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server, max_tokens=64)
    asyncio.run(executor.complete(MSG, temperature=0.7, seed=3))
    body = server.requests[0]
    assert body["temperature"] == 0.7 and body["max_tokens"] == 64 and body["seed"] == 3


def test_cache_makes_a_rerun_free_and_identical(
    server: ScriptedServer, make_executor, tmp_path: Path
) -> None:
    first = make_executor(server)
    a = asyncio.run(first.complete(MSG))
    b = asyncio.run(first.complete(MSG))
    assert server.chat_requests == 1 and b.cached and b.text == a.text
    assert first.usage.calls == 2 and first.usage.cached_calls == 1
    assert first.usage.cost == pytest.approx(a.cost) and first.usage.saved_cost == pytest.approx(a.cost)
    first.close_cache()
    rerun = make_executor(server)  # a new process would see the same cache dir
    c = asyncio.run(rerun.complete(MSG))
    assert server.chat_requests == 1 and c.cached and c.text == a.text and rerun.usage.cost == 0.0


def test_cache_key_is_the_full_request(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server)

    async def go() -> None:
        await executor.complete(MSG)
        await executor.complete(MSG, temperature=0.5)
        await executor.complete(MSG, cache_tag="sample-1")
        await executor.complete([{"role": "user", "content": "other"}])
        await executor.complete(MSG)

    asyncio.run(go())
    assert server.chat_requests == 4


def test_cache_can_be_disabled(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server, use_cache=False)
    asyncio.run(executor.complete(MSG))
    asyncio.run(executor.complete(MSG))
    assert server.chat_requests == 2 and executor.cache is None


def test_rate_limits_and_server_errors_are_retried(server: ScriptedServer, make_executor) -> None:
    server.fail(429, 2, retry_after=0.01)
    server.fail(500)
    server.fail(503)
    executor = make_executor(server, max_retries=4)
    completion = asyncio.run(executor.complete(MSG))
    assert completion.text == "The answer is 42" and server.chat_requests == 5


def test_retries_give_up_with_a_clear_error(server: ScriptedServer, make_executor) -> None:
    server.fail(500, 10)
    executor = make_executor(server, max_retries=2)
    with pytest.raises(ExecutorError, match=r"HTTP 500.*gave up after 3 attempts") as info:
        asyncio.run(executor.complete(MSG))
    assert info.value.retryable and info.value.status_code == 500 and server.chat_requests == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "HTTP 400"), (401, "rejected the API key"), (404, "has no model 'gpt-4o-mini'")],
)
def test_client_errors_are_not_retried(
    server: ScriptedServer, make_executor, status: int, message: str
) -> None:
    server.fail(status, 5)
    executor = make_executor(server, max_retries=3)
    with pytest.raises(ExecutorError, match=message) as info:
        asyncio.run(executor.complete(MSG))
    assert not info.value.retryable and server.chat_requests == 1


def test_unreachable_endpoint_is_an_executor_error(make_executor) -> None:
    srv = ScriptedServer()
    url = srv.base_url
    srv.stop()  # the port is closed now
    executor = Executor(
        ExecutorConfig(base_url=url, api_key="k", use_cache=False, max_retries=1, retry_base_delay=0.01)
    )
    with pytest.raises(ExecutorError, match="cannot reach the executor endpoint"):
        asyncio.run(executor.complete(MSG))


def test_concurrency_limit_is_respected(make_executor) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def reply(_request: dict) -> str:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        threading.Event().wait(0.05)
        with lock:
            state["now"] -= 1
        return "ok"

    with ScriptedServer(reply) as srv:
        executor = make_executor(srv, concurrency=2, use_cache=False)

        async def go() -> None:
            await asyncio.gather(
                *[executor.complete([{"role": "user", "content": f"q{i}"}]) for i in range(6)]
            )

        asyncio.run(go())
    assert state["max"] == 2


def test_identical_requests_in_flight_are_sent_once(make_executor) -> None:
    with ScriptedServer(Script(default="ok"), latency=0.05) as srv:
        executor = make_executor(srv)

        async def go() -> list:
            return await asyncio.gather(*[executor.complete(MSG) for _ in range(3)])

        replies = asyncio.run(go())
    assert srv.chat_requests == 1 and [r.text for r in replies] == ["ok"] * 3
    assert sum(r.cached for r in replies) == 2


def test_no_key_and_no_base_url_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "SF_EXECUTOR_API_KEY", "OPENAI_BASE_URL", "SF_EXECUTOR_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(WorkflowConfigError) as info:
        Executor(ExecutorConfig(use_cache=False))
    text = str(info.value)
    assert "\n" not in text and "OPENAI_API_KEY" in text and "--base-url" in text
    assert "vLLM" in text and "llama.cpp" in text and "Ollama" in text


def test_base_url_without_key_works(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "SF_EXECUTOR_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    executor = Executor(ExecutorConfig(base_url=server.base_url, use_cache=False))
    assert asyncio.run(executor.complete(MSG)).text == "The answer is 42"


def test_key_and_base_url_from_environment(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_EXECUTOR_BASE_URL", server.base_url)
    monkeypatch.setenv("SF_EXECUTOR_API_KEY", "env-key")
    executor = Executor(ExecutorConfig(use_cache=False))
    assert executor.base_url == server.base_url
    assert asyncio.run(executor.complete(MSG)).text == "The answer is 42"


def test_malformed_messages_are_config_errors(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server)
    with pytest.raises(WorkflowConfigError, match="messages must be"):
        asyncio.run(executor.complete([{"role": "wizard", "content": "x"}]))
    with pytest.raises(WorkflowConfigError, match="unsupported chat parameters: logit_bias"):
        asyncio.run(executor.complete(MSG, logit_bias={}))
    assert server.chat_requests == 0


def test_price_table_lookup_and_extension(tmp_path: Path) -> None:
    table = PriceTable()
    assert table.lookup("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert table.lookup("openai/gpt-4o") == Price(2.50, 10.00)
    assert table.lookup("llama-3.1-8b") is None and table.cost("llama-3.1-8b", 10**6, 10**6) == 0.0
    path = tmp_path / "prices.json"
    path.write_text('{"llama-3.1-8b": {"input": 0.1, "output": 0.2}, "gpt-4o-mini": [1, 2]}')
    extended = table.extended(PriceTable.read_file(path))
    assert extended.cost("llama-3.1-8b", 10**6, 2 * 10**6) == pytest.approx(0.5)
    assert extended.lookup("gpt-4o-mini") == Price(1.0, 2.0)


def test_price_file_errors_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": {"input": 1}}')
    with pytest.raises(WorkflowConfigError, match="entry 'm' must be"):
        PriceTable.read_file(bad)
    with pytest.raises(WorkflowConfigError, match="cannot read price file"):
        PriceTable.read_file(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text('{"my-model": [3, 4]}')
    monkeypatch.setenv("SF_WORKFLOWS_PRICES", str(good))
    assert PriceTable.default().lookup("my-model") == Price(3.0, 4.0)


def test_unpriced_model_costs_zero_but_counts_tokens(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server, model="local-llama")
    completion = asyncio.run(executor.complete(MSG))
    assert completion.cost == 0.0 and executor.usage.prompt_tokens == 5


def test_executor_works_across_event_loops(server: ScriptedServer, make_executor) -> None:
    executor = make_executor(server, use_cache=False)
    for _ in range(2):
        assert asyncio.run(executor.complete(MSG)).text == "The answer is 42"
    assert server.chat_requests == 2


@pytest.mark.parametrize("concurrency", [16, 256])
def test_each_loops_client_is_closed_when_that_loop_shuts_down(
    server: ScriptedServer, make_executor, concurrency: int
) -> None:
    """A caller running the executor in several ``asyncio.run`` calls leaks no client or session.

    256 takes the pool built past ``KEEPALIVE`` (aiohttp where installed), whose unclosed sessions
    would warn at garbage collection.
    """
    executor = make_executor(server, use_cache=False, concurrency=concurrency)
    clients = []

    async def call() -> str:
        text = (await executor.complete(MSG)).text
        clients.append(executor._state().client)
        return text

    for _ in range(2):
        assert asyncio.run(call()) == "The answer is 42"
    assert len(clients) == 2 and clients[0] is not clients[1]
    assert all(client.is_closed() for client in clients)
