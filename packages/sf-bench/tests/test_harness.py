"""The harness on text datasets: solvers of every shape, failures as data, resume, full disk."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sf_bench import Answer, GeneratorSystem, Harness, Problem, evaluate
from sf_bench.datasets import load
from sf_bench.errors import BenchError
from sf_bench.records import RecordStatus, read_records


def _gsm8k(n: int = 12) -> list[Problem]:
    return load("gsm8k", "validate", limit=n)


def test_bare_async_def_solver_scores_and_writes_records(tmp_path: Path) -> None:
    async def solve(problem):  # no annotations, no sf_bench import needed
        return problem.answers[0]

    summaries = asyncio.run(evaluate(solve, ["gsm8k"], split="validate", limit=12, out_dir=tmp_path))
    s = summaries["gsm8k"]
    assert (s.problems, s.expected, s.records, s.score.value) == (12, 12, 12, 1.0)
    records = read_records(tmp_path / "gsm8k.jsonl")
    assert len(records) == 12 and all(r.status is RecordStatus.SCORED and r.score == 1.0 for r in records)
    assert json.loads((tmp_path / "run.json").read_text())["split"] == "validate"


def test_plain_function_and_answer_objects_carry_cost() -> None:
    def solve(problem: Problem) -> dict[str, Any]:
        return {"answer": problem.answers[0], "cost": 0.01, "input_tokens": 10, "output_tokens": 5}

    s = Harness(solve).run({"gsm8k": _gsm8k(4)})["gsm8k"]
    assert s.score.value == 1.0 and s.cost == pytest.approx(0.04) and s.tokens == 60


def test_solver_that_raises_or_returns_junk_is_recorded_and_the_batch_goes_on() -> None:
    problems = _gsm8k(9)

    async def solve(problem: Problem) -> Any:
        i = problems.index(problem)
        if i % 3 == 0:
            raise RuntimeError(f"model crashed on {problem.id}")
        if i % 3 == 1:
            return 42  # not an answer
        return problem.answers[0]

    harness = Harness(solve)
    s = harness.run({"gsm8k": problems})["gsm8k"]
    assert s.records == 9 and s.solver_errors == 6 and s.score.value == pytest.approx(1 / 3)
    assert s.failures == {"solver_error": 6}


def test_solver_that_hangs_gets_a_timeout_record(tmp_path: Path) -> None:
    problems = _gsm8k(6)

    async def solve(problem: Problem) -> str:
        if problem is problems[2]:
            await asyncio.sleep(3600)
        return problem.answers[0]

    s = Harness(solve, timeout=0.3, out_dir=tmp_path).run({"gsm8k": problems})["gsm8k"]
    assert s.solver_timeouts == 1 and s.records == 6 and s.score.value == pytest.approx(5 / 6)
    bad = [r for r in read_records(tmp_path / "gsm8k.jsonl") if r.status is not RecordStatus.SCORED]
    assert [(r.problem_id, r.status, r.error) for r in bad] == [
        (problems[2].id, RecordStatus.SOLVER_TIMEOUT, "no answer within --timeout 0.3 s")
    ]


def test_repeats_score_the_mean_of_runs() -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def solve(problem: Problem) -> str:
        with lock:
            calls[problem.id] = calls.get(problem.id, 0) + 1
            n = calls[problem.id]
        return problem.answers[0] if n % 2 else "-1"

    s = Harness(solve, repeats=2).run({"gsm8k": _gsm8k(5)})["gsm8k"]
    assert s.records == 5 and s.repeats == 2 and s.score.value == 0.5
    assert set(calls.values()) == {2}


class SampleSystem:
    """A System (prepare + answer): only sample 0 is right."""

    name = "sample-system"

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        self.k = k

    async def answer(self, problem: Problem, sample: int) -> Answer:
        return Answer(text=problem.answers[0] if sample == 0 else "-1", cost=0.5)


def test_k_samples_give_unbiased_pass_at_k() -> None:
    s = Harness(SampleSystem(), k=4).run({"gsm8k": _gsm8k(3)})["gsm8k"]
    assert s.records == 12
    assert s.pass_at[1].value == pytest.approx(0.25) and s.pass_at[4].value == 1.0
    assert s.cost == pytest.approx(6.0)


class EchoGenerator:
    """A WorkflowGenerator: the 'workflow' for sample j is a tiny program returning an answer."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        self.calls.append([p.id for p in problems])
        return [
            [f"ANSWER = {p.answers[0]!r}" if j == 0 else "ANSWER = '-1'" for j in range(k)] for p in problems
        ]


class ExecRunner:
    """A WorkflowRunner (here it just reads the constant; real ones run in sf-sandbox)."""

    async def run(self, source: str, problem: Problem) -> Answer:
        scope: dict[str, Any] = {}
        exec(source, scope)  # test double: trusted, constant-only sources
        return Answer(text=scope["ANSWER"], input_tokens=7)


def test_workflow_generator_plugs_in_and_its_sources_survive_resume(tmp_path: Path) -> None:
    gen = EchoGenerator()
    problems = _gsm8k(4)
    s = Harness(GeneratorSystem(gen, ExecRunner()), k=2, repeats=3, out_dir=tmp_path).run(
        {"gsm8k": problems}
    )["gsm8k"]
    assert gen.calls == [[p.id for p in problems]]
    assert (
        s.records == 8
        and s.pass_at[1].value == pytest.approx(0.5)
        and s.pass_at[2].value == 1.0
        and s.tokens == 8 * 3 * 7
    )
    rec = read_records(tmp_path / "gsm8k.jsonl")[0]
    assert len(rec.runs) == 3 and rec.runs[0].metadata["workflow"].startswith("ANSWER = ")
    # a kill while saving left a torn line: it is dropped, and that problem alone is regenerated
    with (tmp_path / "gsm8k" / "workflows.jsonl").open("ab") as f:
        f.write(b'{"problem_id": "gsm8k-test-')
    # resume with two more problems: only the new ones are generated; the saved ones are reused
    more = _gsm8k(6)
    gen2 = EchoGenerator()
    s2 = Harness(GeneratorSystem(gen2, ExecRunner()), k=2, repeats=3, out_dir=tmp_path).run({"gsm8k": more})[
        "gsm8k"
    ]
    assert gen2.calls == [[p.id for p in more[4:]]] and s2.records == 12
    saved = (tmp_path / "gsm8k" / "workflows.jsonl").read_text().splitlines()
    assert len(saved) == 6 and all(json.loads(line)["sources"] for line in saved)


def test_harness_rejects_bad_options() -> None:
    from sf_bench.errors import BenchConfigError

    for kwargs in ({"k": 0}, {"repeats": 0}, {"concurrency": 0}, {"timeout": 0}):
        with pytest.raises(BenchConfigError):
            Harness(lambda p: "1", **kwargs)
    with pytest.raises(BenchConfigError, match="not a solver"):
        Harness(42)


SOLVER = textwrap.dedent(
    """
    import os, signal

    LOG = os.environ["SOLVER_LOG"]
    KILL_AT = int(os.environ.get("KILL_AT", "0"))

    def solve(problem):
        with open(LOG, "a") as f:
            f.write(problem.id + "\\n")
        with open(LOG) as f:
            n = sum(1 for _ in f)
        if KILL_AT and n >= KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)  # a kill in the middle of the run
        return problem.answers[0]
    """
)


def test_resume_after_a_kill_does_not_redo_finished_problems(
    tmp_path: Path, run_cli: Any, run_args: Any
) -> None:
    solver = tmp_path / "solver.py"
    solver.write_text(SOLVER)
    out = tmp_path / "out"
    args = run_args("gsm8k", f"{solver}:solve", out, "--limit", "60", "--concurrency", "1")
    first = run_cli(*args, env={"SOLVER_LOG": str(tmp_path / "log1"), "KILL_AT": "25"})
    assert first.returncode == -signal.SIGKILL
    done = read_records(out / "gsm8k.jsonl")
    assert 10 <= len(done) < 25
    second = run_cli(*args, env={"SOLVER_LOG": str(tmp_path / "log2")})
    assert second.returncode == 0, second.stderr
    redone = set((tmp_path / "log2").read_text().split())
    assert not redone & {r.problem_id for r in done}
    final = read_records(out / "gsm8k.jsonl")
    assert len(final) == 60 and len({r.key for r in final}) == 60
    assert "gsm8k" in second.stdout and "60/60" in second.stdout


def test_full_disk_mid_run_keeps_every_written_record(tmp_path: Path, run_cli: Any, run_args: Any) -> None:
    out = tmp_path / "out"
    args = run_args("gsm8k", "canonical", out)

    def small_disk() -> None:  # the results file may not grow past 24 kB: writes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (24_000, 24_000))

    first = run_cli(*args, preexec_fn=small_disk, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert first.returncode == 1
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write results to ")
    assert "results already written are safe there" in lines[0] and "rerun the same command" in lines[0]
    kept = read_records(out / "gsm8k.jsonl")
    assert kept and (out / "gsm8k.jsonl").read_bytes().endswith(b"\n")
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    final = {r.key: r for r in read_records(out / "gsm8k.jsonl")}
    assert len(final) == 264
    assert all(final[r.key].finished_at == r.finished_at for r in kept)  # not redone


def test_results_location_that_cannot_be_written_fails_before_solving(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    called = []

    async def solve(problem: Problem) -> str:
        called.append(problem.id)
        return "1"

    with pytest.raises(BenchError, match="cannot write"):
        Harness(solve, out_dir=blocker / "out").run({"gsm8k": _gsm8k(2)})
    assert called == []


@pytest.mark.docker
def test_code_dataset_through_the_harness_keeps_failure_kinds(code_scorer: Any, tmp_path: Path) -> None:
    problems = load("humaneval", "validate", limit=8)

    async def solve(problem: Problem) -> str:
        i = problems.index(problem)
        if i == 0:
            raise ValueError("no completion")
        if i == 1:
            await asyncio.sleep(3600)
        if i == 2:
            return "    return (\n"
        if i == 3:
            return "    raise KeyError('x')\n"
        return problem.reference

    harness = Harness(solve, timeout=0.5, concurrency=2, code_scorer=code_scorer, out_dir=tmp_path)
    s = harness.run({"humaneval": problems})["humaneval"]
    assert s.records == 8 and s.score.value == pytest.approx(4 / 8)
    assert s.failures == {"solver_error": 1, "solver_timeout": 1, "syntax": 1, "exception:KeyError": 1}
    assert code_scorer.sandbox is not None  # a caller's scorer is left running


def test_missing_docker_engine_is_one_line_exit_1_and_text_results_are_kept(
    tmp_path: Path, run_cli: Any
) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "run",
        "gsm8k",
        "humaneval",
        "--split",
        "validate",
        "--limit",
        "3",
        "--out",
        str(out),
        "-q",
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"},
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert len(read_records(out / "gsm8k.jsonl")) == 3
