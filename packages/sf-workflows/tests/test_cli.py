"""``sf workflows`` through its click group (``main(argv)``), incl. a real run in the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sf_workflows import get_template
from sf_workflows.cli import main
from sf_workflows.testing import ScriptedServer, answer_script


def write(tmp_path: Path, text: str, name: str = "graph.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"<graph>\n{get_template('scoreflow', 'math')}</graph>")
    assert main(["validate", str(path), "--task-type", "math"]) == 0
    assert "valid workflow (operators: Custom, Programmer, ScEnsemble, Review)" in capsys.readouterr().out


def test_validate_reports_each_issue_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "import os\n" + get_template("cot", "math").replace("instruction=", "input="))
    assert main(["validate", str(path), "--task-type", "math"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{path}:1: import of 'os' is not allowed")
    assert any("unexpected keyword argument 'input'" in line for line in lines)


def test_validate_operator_set_and_leak_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, get_template("cot_sc", "math"))
    assert main(["validate", str(path), "--operators", "Custom"]) == 1
    assert "operator.ScEnsemble is not available" in capsys.readouterr().out
    leak = get_template("cot", "math").replace(
        "Let's think step by step", "Tom has three red apples and two pears"
    )
    path = write(tmp_path, leak)
    assert (
        main(["validate", str(path), "--problem-text", "Tom has three red apples and two pears. How many?"])
        == 1
    )
    assert "copies the problem text" in capsys.readouterr().out


def test_validate_unparseable_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, "no workflow here"))]) == 1
    assert "no workflow found" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.py")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_templates_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates"]) == 0
    listing = capsys.readouterr().out
    assert "cot_sc" in listing and "scoreflow" in listing and "self_refine" in listing
    assert main(["templates", "cot-sc", "--task-type", "code"]) == 0
    assert "operator.CustomCodeGenerate" in capsys.readouterr().out
    assert main(["templates", "nope"]) == 2
    assert "unknown workflow template 'nope'" in capsys.readouterr().err


def test_run_needs_an_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENAI_API_KEY", "SF_EXECUTOR_API_KEY", "OPENAI_BASE_URL", "SF_EXECUTOR_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    path = write(tmp_path, get_template("cot", "math"))
    assert (
        main(
            [
                "run",
                str(path),
                "--dataset",
                "gsm8k",
                "--problem",
                "gsm8k-test-0",
                "--split",
                "full",
                "--data-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.count("\n") == 1


def test_run_without_sf_bench_says_how_to_install(tmp_path: Path) -> None:
    path = write(tmp_path, get_template("cot", "math"))
    code = (
        "import sys; sys.modules['sf_bench'] = None\n"  # as if sf-bench were not installed
        "from sf_workflows.cli import main\n"
        f"sys.exit(main(['run', {str(path)!r}, '--dataset', 'gsm8k', '--problem', 'x']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "sf-bench, which is not installed" in proc.stderr and "pip install" in proc.stderr


@pytest.mark.docker
def test_run_a_workflow_on_a_dataset_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], docker_ready: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sf_bench.datasets import load

    problem = load("gsm8k", "validate", limit=1)[0]
    gold = problem.answers[0]
    monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / "cache"))
    path = write(tmp_path, get_template("scoreflow", "math"))
    with ScriptedServer(answer_script(f"The final answer is {gold}")) as srv:
        argv = [
            "run",
            str(path),
            "--dataset",
            "gsm8k",
            "--problem",
            problem.id,
            "--split",
            "validate",
            "--base-url",
            srv.base_url,
            "--json",
        ]
        assert main(argv) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["status"] == "ok" and data["score"] == 1.0 and data["usage"]["calls"] == 5
        assert main(argv[:-1]) == 0  # rerun: served from the cache
        text = capsys.readouterr().out
    assert "score: 1" in text and "llm calls: 5 (5 cached)" in text and "cost: $0.000000" in text
    assert srv.chat_requests == 5


def test_run_unknown_problem_lists_valid_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, get_template("cot", "math"))
    assert (
        main(
            [
                "run",
                str(path),
                "--dataset",
                "gsm8k",
                "--problem",
                "nope",
                "--split",
                "validate",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ]
        )
        == 2
    )
    assert "no problem 'nope' in gsm8k validate (ids look like:" in capsys.readouterr().err


def test_prompt_command_prints_the_generator_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    from sf_bench.datasets import load

    problem = load("hotpotqa", "validate", limit=1)[0]
    assert main(["prompt", "--dataset", "hotpotqa", "--problem", problem.id, "--split", "validate"]) == 0
    out = capsys.readouterr().out
    assert "operator.AnswerGenerate" in out and out.endswith(
        "Here is the graph without any problem information:\n"
    )
