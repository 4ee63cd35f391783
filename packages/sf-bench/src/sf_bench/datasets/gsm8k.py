r"""GSM8K (Cobbe et al., 2021): grade-school math word problems with a numeric final answer.

Splits: ``validate`` (264) and ``test`` (1,055) are AFlow's files (together the 1,319 official
test problems); ``full`` (1,319) is the official ``test.jsonl`` of ``openai/grade-school-math``.

Problem fields:

- ``id``: ``gsm8k-test-N``, N = 0-based line of the problem in the official ``test.jsonl`` (the
  id AFlow's files carry; ``full`` builds the same ids, so both agree).
- ``prompt``: the question.
- ``reference``: the official worked solution ending in ``#### <answer>`` (for AFlow records,
  ``cot + "\n#### " + answer``, byte-identical to the official text).
- ``answers``: ``(final_answer,)`` as written after ``#### `` (may hold thousands separators,
  e.g. ``"2,125"``, or a sign, ``"-3"``).
- ``extras``: ``cot`` (the reasoning before ``#### ``).
"""

from __future__ import annotations

from pathlib import Path

from sf_bench.datasets import _io
from sf_bench.errors import DataError
from sf_bench.types import OFFICIAL, DatasetSpec, Problem, TaskType

NAME = "gsm8k"
SPLITS = ("validate", "test", "full")
_SEP = "\n#### "


def _make(pid: str, question: str, cot: str, answer: str) -> Problem:
    return Problem(
        id=pid,
        dataset=NAME,
        task_type=TaskType.MATH,
        prompt=question,
        reference=cot + _SEP + answer,
        answers=(answer,),
        extras={"cot": cot},
    )


def load(split: str, data_dir: str | Path | None) -> list[Problem]:
    """Load one split (``validate``, ``test`` or ``full``); see the module docstring.

    Raises:
        DataError: A file is missing or malformed (a ``full`` record without ``#### ``).
        BenchConfigError: ``full`` without a data folder.
    """
    problems: list[Problem] = []
    if split in _io.AFLOW_SPLITS:
        path = _io.aflow_split_file(NAME, split, data_dir)
        for where, rec in _io.read_jsonl_records(path):
            problems.append(
                _make(
                    _io.field(rec, "id", str, where),
                    _io.field(rec, "question", str, where),
                    _io.field(rec, "cot", str, where),
                    _io.field(rec, "answer", str, where),
                )
            )
        return problems
    root = _io.official_root(data_dir, NAME, split)
    path = _io.first_existing(
        [root / "gsm8k" / "test.jsonl", root / "test.jsonl"], "GSM8K test.jsonl (official)"
    )
    index = 0
    for where, rec in _io.read_jsonl_records(path):
        text = _io.field(rec, "answer", str, where)
        if _SEP not in text:
            raise DataError(f"{where}: answer has no final '#### ' line (is this GSM8K's test.jsonl?)")
        cot, _, final = text.rpartition(_SEP)
        problems.append(_make(f"gsm8k-test-{index}", _io.field(rec, "question", str, where), cot, final))
        index += 1
    return problems


DATASET = DatasetSpec(
    name=NAME,
    title="GSM8K",
    task_type=TaskType.MATH,
    load=load,
    splits=SPLITS,
    official_files=("test.jsonl",),
    metrics=("numeric", OFFICIAL),
    metric_notes={
        "numeric": "value of the final number, not the official rule",
        OFFICIAL: "grade-school-math's '#### ' string match",
    },
    scorer="sf_bench.scorers.gsm8k",
    extract_metric="gsm8k+llm-extract",
)
"""The registry entry (:mod:`sf_bench.registry`): ``numeric`` by default, ``official`` beside it."""
