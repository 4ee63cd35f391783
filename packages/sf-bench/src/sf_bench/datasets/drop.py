r"""DROP (Dua et al., 2019): reading comprehension with discrete reasoning, in simple-evals' format.

Splits: ``validate`` (200) and ``test`` (800) are AFlow's files (a sample of the dev set);
``full`` (9,536) is OpenAI simple-evals' ``drop_v0_dev.jsonl.gz`` (the whole dev set, flattened),
read from the data folder. The original AllenAI ``drop_dataset_dev.json`` is not read: AFlow's
splits come from the simple-evals file, whose records carry no query ids to join on.

Problem fields:

- ``id``: the 0-based line number of the question in ``drop_v0_dev.jsonl.gz``, as a string
  (AFlow's ``id`` field, e.g. ``"3481"``; ``full`` builds the same ids).
- ``prompt``: the record's ``context`` as given: ``"Passage: ...\nQuestion: ...\nAnswer:"``
  (what AFlow feeds its workflows).
- ``answers``: the ``|``-separated alternatives of ``ref_text``, each stripped of surrounding
  whitespace (dates with missing day/month start with spaces in the file).
- ``reference``: ``completion`` stripped (= ``answers[0]``).
- ``extras``: ``passage``, ``question`` (split out of ``context``), ``ref_text`` (raw).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sf_bench.datasets import _io
from sf_bench.errors import DataError
from sf_bench.types import DatasetSpec, Problem, TaskType

NAME = "drop"
SPLITS = ("validate", "test", "full")


def _make(pid: str, rec: dict[str, Any], where: str) -> Problem:
    context = _io.field(rec, "context", str, where)
    completion = _io.field(rec, "completion", str, where)
    ref_text = _io.field(rec, "ref_text", str, where)
    answers = tuple(alt.strip() for alt in ref_text.split("|"))
    if not any(answers):
        raise DataError(f"{where}: ref_text has no non-empty answer")
    passage, question = context, ""
    if context.startswith("Passage: ") and "\nQuestion: " in context:
        passage, _, rest = context[len("Passage: ") :].rpartition("\nQuestion: ")
        question = rest.removesuffix("\nAnswer:")
    return Problem(
        id=pid,
        dataset=NAME,
        task_type=TaskType.QA,
        prompt=context,
        reference=completion.strip(),
        answers=answers,
        extras={"passage": passage, "question": question, "ref_text": ref_text},
    )


def load(split: str, data_dir: str | Path | None) -> list[Problem]:
    """Load one split (``validate``, ``test`` or ``full``); see the module docstring.

    Raises:
        DataError: A file is missing or malformed.
        BenchConfigError: ``full`` without a data folder.
    """
    if split in _io.AFLOW_SPLITS:
        path = _io.aflow_split_file(NAME, split, data_dir)
        return [
            _make(str(_io.field(rec, "id", int, where)), rec, where)
            for where, rec in _io.read_jsonl_records(path)
        ]
    root = _io.official_root(data_dir, NAME, split)
    path = _io.first_existing(
        [
            root / "drop" / "drop_v0_dev.jsonl.gz",
            root / "drop_v0_dev.jsonl.gz",
            root / "drop" / "drop_v0_dev.jsonl",
            root / "drop_v0_dev.jsonl",
        ],
        "drop_v0_dev.jsonl.gz (OpenAI simple-evals DROP dev file)",
    )
    return [_make(str(lineno - 1), rec, f"{path}:{lineno}") for lineno, rec in _io.read_jsonl(path)]


DATASET = DatasetSpec(
    name=NAME,
    title="DROP",
    task_type=TaskType.QA,
    load=load,
    splits=SPLITS,
    official_files=("drop_v0_dev.jsonl.gz",),
    scorer="sf_bench.scorers.drop",
    f1=True,
    answer_form="Write only the answer: a number, a date, or a short span of the passage.",
    judged=True,
    judge_context=True,
    extract_metric="f1+llm-extract",
)
"""The registry entry (:mod:`sf_bench.registry`): F1 (EM beside), judged with the passage."""
