r"""MATH (Hendrycks et al., 2021): competition mathematics with LaTeX answers in ``\boxed{}``.

Splits:

- ``validate`` (119) and ``test`` (486): AFlow's files, all Level-5 test problems of Counting &
  Probability, Number Theory, Prealgebra and Precalculus;
- ``full`` (5,000): the official test split, read from the data folder either as the packed
  ``math/test.jsonl`` (one line per official file, with ``unique_id``) or as the original tree
  ``MATH/test/<subject>/<n>.json``;
- ``math500`` (500): PRM800K's ``math_splits/test.jsonl`` (MATH-500).

Problem fields:

- ``id``: the official ``unique_id`` (``test/<subject>/<n>.json``, the PRM800K/MATH-500
  convention). AFlow's records carry no id: it is found through the bundled index
  ``sf_bench/data/math_unique_ids.tsv`` (sha256 of the problem text -> unique_id, covering all
  5,000 test problems); a problem not in the index gets ``math-<first 12 hex of sha256(problem)>``.
- ``prompt``: the problem; ``reference``: the official solution.
- ``answers``: ``(content of the solution's last \boxed{...},)``; for MATH-500 this equals its
  ``answer`` field for all 500 records.
- ``extras``: ``level`` (``"Level 5"``; an int for MATH-500, as given), ``type`` (subject),
  ``unique_id`` (or None).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, cast

from sf_bench.datasets import _io
from sf_bench.errors import DataError
from sf_bench.scorers._text import last_boxed_answer
from sf_bench.types import OFFICIAL, DatasetSpec, Problem, TaskType

NAME = "math"
SPLITS = ("validate", "test", "full", "math500")
SUBJECT_FOLDERS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def problem_key(problem: str) -> str:
    """First 16 hex digits of the sha256 of the problem text (key of the unique_id index)."""
    return hashlib.sha256(problem.encode("utf-8")).hexdigest()[:16]


@functools.cache
def unique_id_index() -> dict[str, str]:
    """The bundled index: problem key -> official ``unique_id`` for the 5,000 test problems."""
    path = _io.package_data_dir() / "math_unique_ids.tsv"
    index: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            key, uid = line.rstrip("\n").split("\t")
            index[key] = uid
    return index


def _make(rec: dict[str, Any], where: str, *, unique_id: str | None, subject_key: str = "type") -> Problem:
    problem = _io.field(rec, "problem", str, where)
    solution = _io.field(rec, "solution", str, where)
    answer = last_boxed_answer(solution)
    if answer is None:
        raise DataError(f"{where}: solution has no \\boxed{{...}} answer")
    if unique_id is None:
        unique_id = unique_id_index().get(problem_key(problem))
    pid = (
        unique_id
        if unique_id is not None
        else "math-" + hashlib.sha256(problem.encode("utf-8")).hexdigest()[:12]
    )
    return Problem(
        id=pid,
        dataset=NAME,
        task_type=TaskType.MATH,
        prompt=problem,
        reference=solution,
        answers=(answer,),
        extras={
            "level": _io.field(rec, "level", (str, int), where),
            "type": _io.field(rec, subject_key, str, where),
            "unique_id": unique_id,
        },
    )


def _read_tree(test_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    for subject in SUBJECT_FOLDERS:
        folder = test_dir / subject
        if not folder.is_dir():
            raise DataError(f"{folder}: missing subject folder of the MATH test tree")
        files = sorted(
            folder.glob("*.json"), key=lambda p: (int(p.stem) if p.stem.isdigit() else 10**9, p.name)
        )
        for path in files:
            rec: object = _io.read_json(path)
            if not isinstance(rec, dict):
                raise DataError(f"{path}: expected a JSON object")
            record = cast("dict[str, Any]", rec)  # JSON object keys are str
            problems.append(_make(record, str(path), unique_id=f"test/{subject}/{path.name}"))
    return problems


def load(split: str, data_dir: str | Path | None) -> list[Problem]:
    r"""Load one split (``validate``, ``test``, ``full`` or ``math500``); see the module docstring.

    Raises:
        DataError: A file is missing or malformed (e.g. a solution without ``\boxed{}``).
        BenchConfigError: An official split without a data folder.
    """
    if split in _io.AFLOW_SPLITS:
        path = _io.aflow_split_file(NAME, split, data_dir)
        return [_make(rec, where, unique_id=None) for where, rec in _io.read_jsonl_records(path)]
    root = _io.official_root(data_dir, NAME, split)
    if split == "math500":
        path = _io.first_existing(
            [
                root / "math" / "math500_test.jsonl",
                root / "math500_test.jsonl",
                root / "math_splits" / "test.jsonl",
                root / "prm800k" / "math_splits" / "test.jsonl",
            ],
            "MATH-500 file (PRM800K math_splits/test.jsonl)",
        )
        return [
            _make(rec, where, unique_id=_io.field(rec, "unique_id", str, where), subject_key="subject")
            for where, rec in _io.read_jsonl_records(path)
        ]
    for tree in (root / "MATH" / "test", root / "math" / "MATH" / "test", root / "test"):
        if tree.is_dir() and (tree / "algebra").is_dir():
            return _read_tree(tree)
    path = _io.first_existing(
        [root / "math" / "test.jsonl", root / "test.jsonl"],
        "MATH test set (math/test.jsonl, or the official tree MATH/test/<subject>/<n>.json)",
    )
    problems: list[Problem] = []
    for where, rec in _io.read_jsonl_records(path):
        uid: object = rec.get("unique_id")
        if uid is not None and not isinstance(uid, str):
            raise DataError(f"{where}: field 'unique_id' must be str, got {type(uid).__name__}")
        problems.append(_make(rec, where, unique_id=uid))
    return problems


DATASET = DatasetSpec(
    name=NAME,
    title="MATH",
    task_type=TaskType.MATH,
    load=load,
    splits=SPLITS,
    official_files=("math/test.jsonl", "MATH/test/<subject>/<n>.json", "math_splits/test.jsonl"),
    metrics=("equiv", OFFICIAL),
    metric_notes={
        "equiv": "is_equiv or math-verify, more lenient than the official rule",
        OFFICIAL: "hendrycks is_equiv on the last \\boxed{}",
    },
    scorer="sf_bench.scorers.math",
    answer_form="Write it in LaTeX inside \\boxed{{}}.",
    judged=True,
    extract_metric="math+llm-extract",
)
"""The registry entry (:mod:`sf_bench.registry`): ``equiv`` by default, ``official`` beside it."""
