"""Shared fixtures for sf-bench's tests.

``code_scorer`` starts one warm sandbox pool per test module (real Docker; skipped when the
engine or image is missing, FAILED instead when ``SF_REQUIRE_DOCKER=1``). ``shared_data`` is the
project's verified copy of the official dataset files (tests needing it skip without it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench.datasets import DATA_DIR_ENV
from sf_bench.types import Problem, TaskType


def _find_shared_data() -> Path | None:
    """``$SF_BENCH_DATA_DIR``, else the project's ``../shared/data``: the first holding ``aflow_splits/``."""
    env = os.environ.get(DATA_DIR_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    for path in candidates:
        if (path / "aflow_splits").is_dir():
            return path
    return None


SHARED_DATA = _find_shared_data()  # looked up once, at import, before any test changes the env


@pytest.fixture(scope="session")
def shared_data_if_any() -> Path | None:
    """The folder of official dataset files (``full`` splits, ``SHA256SUMS``), or None if absent."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of official dataset files; the test is skipped when there is none."""
    if SHARED_DATA is None:
        pytest.skip("../shared/data (official files) not present")
    return SHARED_DATA


@pytest.fixture(scope="module")
def code_scorer() -> Iterator[Any]:
    """A started :class:`~sf_bench.scorers.code.CodeScorer` (pool of 2) shared by a module."""
    from sf_bench.scorers.code import CodeScorer
    from sf_sandbox.testing import require_sandbox

    require_sandbox()
    scorer = CodeScorer(concurrency=2, timeout=10.0)
    scorer.start()
    try:
        yield scorer
    finally:
        scorer.close()


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Docker and the sandbox image are there (skip, or FAILED when ``SF_REQUIRE_DOCKER=1``)."""
    from sf_sandbox.testing import require_sandbox

    require_sandbox()


@pytest.fixture
def make_problem() -> Callable[..., Problem]:
    """Factory for small hand-made problems: ``make_problem("gsm8k", "p1", answer="4")``."""

    def make(
        dataset: str,
        pid: str,
        *,
        answer: str = "",
        prompt: str = "",
        task_type: TaskType | None = None,
        **extras: Any,
    ) -> Problem:
        kind = task_type or {
            "humaneval": TaskType.CODE,
            "mbpp": TaskType.CODE,
            "gsm8k": TaskType.MATH,
            "math": TaskType.MATH,
        }.get(dataset, TaskType.QA)
        return Problem(
            id=pid,
            dataset=dataset,
            task_type=kind,
            prompt=prompt or f"question {pid}",
            reference=answer,
            answers=(answer,),
            extras=extras,
        )

    return make


@pytest.fixture
def run_args() -> Callable[..., list[str]]:
    """Argv of a quiet ``sf bench run`` on the validate split.

    ``run_args("gsm8k", "io", out, "--limit", "2")`` is ``["run", "gsm8k", "--split", "validate",
    "--solver", "io", "--out", str(out), "--limit", "2", "-q"]``; pass it to ``main`` or ``run_cli``.
    """

    def make(dataset: str, solver: str, out: Path, *extra: str) -> list[str]:
        return ["run", dataset, "--split", "validate", "--solver", solver, "--out", str(out), *extra, "-q"]

    return make


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m sf_bench ARGS`` in a subprocess (cwd and env overridable)."""

    def run(
        *args: str,
        cwd: Path | None = None,
        timeout: float = 240,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "sf_bench", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            env=full_env,
            preexec_fn=preexec_fn,
        )

    return run


# ---------------------------------------------------------------------------------- LLM doubles
GENERATOR_MARK = "Here is the graph without any problem information"
EXTRACT_MARK = "Extract the final answer from the response below"
JUDGE_MARK = "Only output 1 (correct) or 0 (incorrect)"


class Oracle:
    """Scripted replies for sf-workflows' ``ScriptedServer`` (real HTTP, real openai client).

    Generator prompts get a shipped workflow (the first ``bad_first`` ones an invalid one that
    imports os); judge extraction prompts get the gold answer; judge prompts get ``judge(problem)``
    (default "1"); operator prompts get the gold answer of whichever problem the prompt holds, in
    the operator's format. Counts what it was asked in ``generator_calls``/``judge_calls``.
    """

    def __init__(
        self,
        problems: list[Any],
        workflow: str = "scoreflow",
        bad_first: int = 0,
        judge: Callable[[Any], str] | None = None,
    ) -> None:
        self.problems = problems
        self.workflow = workflow
        self.bad_first = bad_first
        self.judge = judge or (lambda problem: "1")
        self.generator_calls = 0
        self.judge_calls = 0

    @staticmethod
    def gold(problem: Any) -> tuple[str, str | None]:
        """(answer text, code) that the official scorer accepts for ``problem``."""
        if problem.dataset in ("humaneval", "mbpp"):
            return "", problem.answers[0]
        if problem.dataset == "math":
            return f"\\boxed{{{problem.answers[0]}}}", None
        return problem.answers[0], None

    def _by_question(self, text: str) -> Any:
        for problem in self.problems:
            question = str(problem.extras.get("question") or problem.prompt).strip()
            if question[:300] in text:
                return problem
        raise LookupError(f"no problem matches {text[:200]!r}")

    def __call__(self, request: dict) -> str:
        from sf_workflows import get_template
        from sf_workflows.testing import answer_script, last_user_message

        text = last_user_message(request)
        if GENERATOR_MARK in text:
            self.generator_calls += 1
            kind = "code" if "\nTask: " in text else "qa" if "\nQuestion: " in text else "math"
            if self.generator_calls <= self.bad_first:
                return "<graph>\nimport os\n" + get_template(self.workflow, kind)
            return "<graph>\n" + get_template(self.workflow, kind)
        if EXTRACT_MARK in text:
            return self.gold(self._by_question(text))[0]
        if JUDGE_MARK in text:
            self.judge_calls += 1
            return self.judge(self._by_question(text))
        for problem in self.problems:
            if problem.prompt.strip()[:300] in text:
                answer, code = self.gold(problem)
                return answer_script(answer or "x", code=code)(request)
        return "no idea"


@pytest.fixture
def oracle() -> type[Oracle]:
    """The :class:`Oracle` class (test modules cannot import conftest)."""
    return Oracle


@pytest.fixture
def no_llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LLM key or endpoint in the environment; a private response cache."""
    for prefix in ("SF_EXECUTOR", "SF_GENERATOR", "OPENAI"):
        for suffix in ("API_KEY", "BASE_URL", "MODEL"):
            monkeypatch.delenv(f"{prefix}_{suffix}", raising=False)
    monkeypatch.delenv("SF_WORKFLOWS_PRICES", raising=False)
    monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / "llm-cache"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the engine (through a fixture) carry the ``docker`` marker."""
    from sf_sandbox.testing import mark_docker_tests

    mark_docker_tests(items)
