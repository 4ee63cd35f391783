"""The dataset registry: the six built-in entries, and a throwaway dataset.

The throwaway dataset is registered by a test and flows through loader → harness → scorer →
report → CLI with no other module touched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench import evaluate, registry
from sf_bench.cli import main
from sf_bench.datasets import load, splits
from sf_bench.errors import BenchConfigError, DataError
from sf_bench.records import read_records
from sf_bench.report import format_table
from sf_bench.scorers import default_metric, metric_names, text_scorer
from sf_bench.types import DatasetSpec, Problem, Score, TaskType


def test_the_six_built_in_entries_in_the_usual_order() -> None:
    assert registry.names() == ("humaneval", "mbpp", "gsm8k", "math", "drop", "hotpotqa")
    assert registry.with_flag("is_code") == ("humaneval", "mbpp")
    assert registry.with_flag("judged") == ("math", "drop", "hotpotqa")
    assert registry.with_flag("f1") == ("drop", "hotpotqa")
    assert [registry.get(n).default_metric for n in registry.names()] == [
        "official",
        "official",
        "numeric",
        "equiv",
        "official",
        "official",
    ]
    assert (
        registry.short_id("mbpp", "Mbpp/116") == "116"
        and registry.short_id("humaneval", "HumanEval/1") is None
    )
    with pytest.raises(BenchConfigError, match="unknown dataset 'nope'; choose from: humaneval, mbpp"):
        registry.get("nope")


def test_an_inconsistent_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a scorer"):
        DatasetSpec(name="x", title="X", task_type=TaskType.QA, load=lambda s, d: [])
    with pytest.raises(ValueError, match="lower case"):
        DatasetSpec(name="X", title="X", task_type=TaskType.CODE, load=lambda s, d: [])
    with pytest.raises(BenchConfigError, match="registered already"):
        registry.register(registry.get("gsm8k"))


# --------------------------------------------------------------------------- a throwaway dataset
def _score_exact(problem: Problem, answer: str) -> Score:
    """0/1: the answer, stripped, is the gold."""
    return Score(value=float(answer.strip() == problem.answers[0]), metrics={"exact": 0.0})


def _score_loose(problem: Problem, answer: str) -> Score:
    """0/1: the gold occurs in the answer."""
    return Score(value=float(problem.answers[0] in answer))


def _toy_loader(data: Path) -> Any:
    def load_toy(split: str, data_dir: str | Path | None) -> list[Problem]:
        if split == "full" and data_dir is None:
            raise BenchConfigError("split 'full' of toy needs --data-dir")
        path = data / f"toy_{split}.jsonl"
        if not path.exists():
            raise DataError(f"{path}: not found")
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [
            Problem(
                id=rec["id"],
                dataset="toy",
                task_type=TaskType.MATH,
                prompt=rec["q"],
                reference=rec["a"],
                answers=(rec["a"],),
            )
            for rec in lines
        ]

    return load_toy


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[DatasetSpec]:
    """A text dataset that exists only for this test: its data file and its registry entry."""
    data = tmp_path / "toy-data"
    data.mkdir()
    rows = [{"id": f"toy-{i}", "q": f"What is {i} + {i}?", "a": str(2 * i)} for i in range(5)]
    (data / "toy_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = registry.register(
        DatasetSpec(
            name="toy",
            title="Toy",
            task_type=TaskType.MATH,
            load=_toy_loader(data),
            splits=("validate", "test", "full"),
            metrics=("loose", "official"),
            metric_notes={"loose": "the gold anywhere in the answer"},
            scorer={"loose": _score_loose, "official": _score_exact},
            extract_metric="toy+llm-extract",
        )
    )
    try:
        yield spec
    finally:
        registry.unregister("toy")
    assert registry.find("toy") is None


def test_a_registered_dataset_flows_through_loader_harness_scorer_and_report(
    toy: DatasetSpec, tmp_path: Path
) -> None:
    assert "toy" in registry.names() and registry.names().index("toy") > registry.names().index("math")
    assert splits("toy") == ("validate", "test", "full") and len(load("toy", "test", limit=3)) == 3
    assert metric_names("toy") == ("loose", "official") and default_metric("toy") == "loose"
    problem = load("toy", "test")[1]
    assert text_scorer("toy")(problem, "it is 2").value == 1.0
    assert text_scorer("toy", "official")(problem, "it is 2").value == 0.0

    async def solve(problem: Problem) -> str:
        return f"answer: {problem.answers[0]}"  # right by the default metric, not the official one

    out = tmp_path / "run"
    s = asyncio.run(evaluate(solve, ["toy"], out_dir=out))["toy"]
    assert (s.problems, s.metric, s.score.value, s.pass_at[1].value) == (5, "loose", 1.0, 1.0)
    assert s.other_metrics == {}  # the loose scores carry no "official" verdict beside them
    assert json.loads((out / "run.json").read_text())["metrics"] == {"toy": ["loose", "official"]}
    assert len(read_records(out / "toy.jsonl")) == 5
    table = format_table([s])
    assert "toy" in table and "loose" in table and "the gold anywhere in the answer" in table


def test_a_registered_dataset_reaches_the_cli(
    toy: DatasetSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [cells[0] for cells in listed] == ["humaneval", "mbpp", "gsm8k", "math", "toy", "drop", "hotpotqa"]
    assert listed[4][1:] == "validate: not found test: 5 full: needs --data-dir".split()
    out = tmp_path / "cli"
    args = ["run", "toy", "--solver", "canonical", "--metric", "toy=official", "--out", str(out), "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "toy" in printed and " official " in printed and "1.000 [1.000, 1.000]" in printed
    assert json.loads((out / "run.json").read_text())["scoring"] == {"toy": "official"}
    assert main(["run", "toy", "--judge", "--out", str(tmp_path / "j")]) == 2
    assert "--judge applies to math, drop, hotpotqa" in capsys.readouterr().err


def test_the_extraction_and_the_training_profiles_read_the_registry(toy: DatasetSpec) -> None:
    from sf_bench.systems.extract import extracted_datasets

    assert extracted_datasets() == ("gsm8k", "math", "toy", "drop", "hotpotqa")
    profiles = pytest.importorskip("sf_train.profiles")
    assert profiles.extracted_datasets() == extracted_datasets()
    assert profiles.profile_default("scoreflow", "answer_extraction", "toy") is True
    assert "toy" in profiles.profile_help("num_pairs")
