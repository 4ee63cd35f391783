"""Protocols and answers: structural typing, answer normalisation, light imports, import direction."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sf_bench
from sf_bench import Answer, BenchError, Problem, Solver, System, WorkflowGenerator, as_answer, as_system
from sf_bench.protocols import GeneratorSystem, SolverSystem, WorkflowRunner
from sf_bench.systems import resolve

SRC = Path(sf_bench.__file__).parent


def test_as_answer_accepts_every_documented_shape() -> None:
    assert as_answer("x") == Answer(text="x")
    a = Answer(text="y", cost=1.0)
    assert as_answer(a) is a
    m = as_answer({"answer": "z", "cost": 0.5, "input_tokens": 3, "output_tokens": 4, "metadata": {"m": 1}})
    assert (m.text, m.cost, m.tokens, m.metadata) == ("z", 0.5, 7, {"m": 1})
    assert as_answer({"completion": "c", "tokens": 9}).output_tokens == 9
    assert as_answer(SimpleNamespace(text="t", cost=0.1)).cost == 0.1
    for bad in (42, None, {"nothing": 1}, {"answer": 3}):
        with pytest.raises(BenchError):
            as_answer(bad)


def test_runtime_checkable_protocols_match_user_objects_without_imports() -> None:
    async def solve(problem):  # type: ignore[no-untyped-def]
        return "1"

    class Gen:
        async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
            return []

    class Runner:
        async def run(self, source: str, problem: Problem) -> str:
            return ""

    class Sys:
        name = "mine"

        async def prepare(self, problems: Any, k: int, state_dir: Any) -> None: ...

        async def answer(self, problem: Problem, sample: int) -> str:
            return ""

    assert isinstance(solve, Solver)
    assert isinstance(Gen(), WorkflowGenerator) and isinstance(Runner(), WorkflowRunner)
    assert isinstance(Sys(), System) and as_system(Sys()).name == "mine"
    assert isinstance(as_system(solve), SolverSystem)
    assert isinstance(as_system(Gen(), Runner()), GeneratorSystem)
    with pytest.raises(sf_bench.BenchConfigError, match="needs a runner"):
        as_system(Gen())


def test_solver_system_awaits_async_and_threads_sync(make_problem: Any) -> None:
    p = make_problem("gsm8k", "p", answer="3")
    assert asyncio.run(SolverSystem(lambda q: q.answers[0]).answer(p, 0)) == "3"

    class CallableSolver:
        async def __call__(self, problem: Problem) -> str:
            return "async-callable"

    assert asyncio.run(SolverSystem(CallableSolver()).answer(p, 0)) == "async-callable"


def test_solver_specs_resolve_modules_files_classes_and_factories(tmp_path: Path) -> None:
    mod = tmp_path / "mysolver.py"
    mod.write_text(
        "async def solve(problem):\n    return 'a'\n\n"
        "class Cls:\n    async def __call__(self, problem):\n        return 'b'\n\n"
        "def make():\n    return solve\n"
    )
    for attr in ("solve", "Cls", "make"):
        system = resolve(f"{mod}:{attr}")
        assert isinstance(system, System) and system.name == f"{mod}:{attr}"
    assert resolve("canonical").name == "canonical"
    with pytest.raises(sf_bench.BenchConfigError, match="has no attribute 'nope'"):
        resolve(f"{mod}:nope")


def test_import_sf_bench_stays_light() -> None:
    code = (
        "import sys, sf_bench, sf_bench.protocols, sf_bench.cli\n"
        "heavy = [m for m in ('numpy', 'matplotlib', 'sf_workflows', 'docker', 'sympy', 'math_verify',"
        " 'torch') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_core_never_imports_sf_workflows_only_systems_may() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if "systems" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("sf_workflows", "sf_train")
            ]
    assert offenders == []
