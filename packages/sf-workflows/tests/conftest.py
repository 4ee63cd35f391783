"""Fixtures: scripted OpenAI-compatible server, executors over it, the real sandbox, tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_workflows import Executor, ExecutorConfig, Task, open_sandbox
from sf_workflows.testing import ScriptedServer, answer_script


@pytest.fixture(scope="session")
def docker_ready() -> None:
    from sf_sandbox.testing import require_sandbox

    require_sandbox()


@pytest.fixture(scope="module")
def sandbox(docker_ready: None) -> Iterator[Any]:
    """A warm two-container pool with the workflow host calls, shared by a test module."""
    from sf_sandbox import Limits

    with open_sandbox(limits=Limits(timeout=30), pool_size=2) as sb:
        yield sb


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted server answering every operator prompt with answer 42."""
    with ScriptedServer(answer_script("42")) as srv:
        yield srv


@pytest.fixture
def make_executor(tmp_path: Path) -> Iterator[Callable[..., Executor]]:
    """Build executors against a scripted server, with a per-test cache and fast retries."""
    made: list[Executor] = []

    def make(srv: ScriptedServer, **options: Any) -> Executor:
        options.setdefault("model", "gpt-4o-mini")
        options.setdefault("cache_dir", str(tmp_path / "cache"))
        options.setdefault("retry_base_delay", 0.01)
        options.setdefault("retry_max_delay", 0.05)
        executor = Executor(ExecutorConfig(base_url=srv.base_url, api_key="test-key", **options))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close_cache()


@pytest.fixture
def math_task() -> Task:
    return Task(id="m1", task_type="math", prompt="What is six times seven? Give the number.")


@pytest.fixture
def code_task() -> Task:
    return Task(
        id="c1",
        task_type="code",
        prompt='def add(a, b):\n    """Return the sum of a and b."""\n',
        entry_point="add",
        public_tests=("assert add(1, 2) == 3", "assert add(-1, 1) == 0"),
    )


@pytest.fixture
def qa_task() -> Task:
    return Task(
        id="q1",
        task_type="qa",
        prompt="Context: Ann has a red car.\nQuestion: What colour is Ann's car?",
        question="What colour is Ann's car?",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the engine (through a fixture) carry the ``docker`` marker."""
    from sf_sandbox.testing import mark_docker_tests

    mark_docker_tests(items)
