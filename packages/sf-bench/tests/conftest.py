"""Shared fixtures for sf-bench's tests.

``code_scorer`` starts one warm sandbox pool per test module (real Docker; skipped when the
engine or image is missing, FAILED instead when ``SF_REQUIRE_DOCKER=1``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sf_bench.types import Problem, TaskType


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
