"""The ``scoreflow`` profile's task text is exactly ScoreFlow's ``get_graph_input_text``.

For every bundled problem, the task text the ``scoreflow`` profile puts into ScoreFlow's
generator prompt is exactly what ScoreFlow's ``get_graph_input_text`` takes from the same AFlow
row (``ScoreFlow/benchmark/<ds>.py``), so the assembled prompt is ScoreFlow's byte for byte.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from sf_bench.datasets import load
from sf_workflows.generator.scoreflow import generator_input_text


def official_text(dataset: str, row: dict) -> str:
    """ScoreFlow's get_graph_input_text on a raw AFlow row."""
    if dataset == "drop":
        return re.search(r"Question:(.*?)Answer:", row["context"], re.DOTALL).group(1).strip()
    key = {"math": "problem", "gsm8k": "question", "hotpotqa": "question"}.get(dataset, "prompt")
    return row[key]


@pytest.mark.parametrize("dataset", ["humaneval", "mbpp", "gsm8k", "math", "drop", "hotpotqa"])
@pytest.mark.parametrize("split", ["validate", "test"])
def test_generator_text_is_scoreflows_for_every_problem(dataset: str, split: str) -> None:
    raw = (
        resources.files("sf_bench.data")
        .joinpath("aflow")
        .joinpath(f"{dataset}_{split}.jsonl")
        .read_text("utf-8")
    )
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    problems = load(dataset, split)
    assert len(problems) == len(rows)
    mismatched = [
        p.id
        for p, row in zip(problems, rows, strict=True)
        if generator_input_text(p) != official_text(dataset, row)
    ]
    assert mismatched == []
