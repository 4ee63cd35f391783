r"""HumanEval (Chen et al., 2021): 164 Python function-completion problems.

Splits: ``validate`` (33) and ``test`` (131) are AFlow's files; ``full`` (164) is the official
``HumanEval.jsonl.gz`` of ``openai/human-eval``, read from the data folder.

Problem fields:

- ``id``: the official ``task_id`` unchanged (``HumanEval/0`` ... ``HumanEval/163``).
- ``prompt``: the official prompt (imports, signature, docstring).
- ``reference`` and ``answers[0]``: ``prompt + canonical_solution``, a complete program that
  defines ``entry_point`` (helpers such as ``poly``/``encode_cyclic`` included, as they live in
  the prompt).
- ``extras``: ``entry_point``; ``test`` (the official ``check(candidate)`` source, unchanged);
  ``test_imports`` (``[]``); ``canonical_solution`` (the body alone, as in the file);
  ``public_tests`` (asserts on ``candidate`` from AFlow's ``humaneval_public_test.jsonl``, joined
  on ``problem_id``; ``[]`` for ``HumanEval/32, 38, 50, 83, 105``, which have none: AFlow quirk).

Program the code scorer runs (:func:`sf_bench.scorers.code.build_program`, human-eval's rule)::

    program = prompt + answer + "\n" + test + "\n" + f"check({entry_point})" + "\n"

``answer`` may be a human-eval completion (the body) or a complete program such as
``reference``: the prompt's function ends in its docstring, so a full solution simply defines
the function again while the prompt's imports and helpers stay available. Public tests run as
``solution`` + ``candidate = <entry_point>`` + the asserts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sf_bench.datasets import _io
from sf_bench.errors import DataError
from sf_bench.types import DatasetSpec, Problem, TaskType

NAME = "humaneval"
SPLITS = ("validate", "test", "full")
NO_PUBLIC_TESTS = ("HumanEval/32", "HumanEval/38", "HumanEval/50", "HumanEval/83", "HumanEval/105")
"""AFlow's public-test file has no entry for these five problems (kept as an empty list)."""


def _public_tests(path: Path) -> dict[str, list[str]]:
    tests: dict[str, list[str]] = {}
    for where, rec in _io.read_jsonl_records(path):
        pid = _io.field(rec, "problem_id", str, where)
        tests[pid] = _io.str_list(rec, "test", where)
    return tests


def _problem(rec: dict[str, Any], where: str, public: dict[str, list[str]]) -> Problem:
    task_id = _io.field(rec, "task_id", str, where)
    prompt = _io.field(rec, "prompt", str, where)
    entry_point = _io.field(rec, "entry_point", str, where)
    canonical = _io.field(rec, "canonical_solution", str, where)
    test = _io.field(rec, "test", str, where)
    reference = prompt + canonical
    return Problem(
        id=task_id,
        dataset=NAME,
        task_type=TaskType.CODE,
        prompt=prompt,
        reference=reference,
        answers=(reference,),
        extras={
            "entry_point": entry_point,
            "test": test,
            "test_imports": [],
            "canonical_solution": canonical,
            "public_tests": list(public.get(task_id, [])),
        },
    )


def _read(path: Path, public: dict[str, list[str]]) -> list[Problem]:
    return [_problem(rec, where, public) for where, rec in _io.read_jsonl_records(path)]


def _public_for(data_dir: str | Path | None, split_file: Path) -> dict[str, list[str]]:
    """Public tests from the split file's folder if it has them, else the bundled file."""
    local = split_file.parent / "humaneval_public_test.jsonl"
    if data_dir is not None and local.exists():
        return _public_tests(local)
    return _public_tests(_io.aflow_split_file(NAME, "public_test", None))


def load(split: str, data_dir: str | Path | None) -> list[Problem]:
    """Load one split (``validate``, ``test`` or ``full``); see the module docstring.

    Raises:
        DataError: A file is missing or malformed.
        BenchConfigError: ``full`` without a data folder.
    """
    if split in _io.AFLOW_SPLITS:
        path = _io.aflow_split_file(NAME, split, data_dir)
        return _read(path, _public_for(data_dir, path))
    root = _io.official_root(data_dir, NAME, split)
    path = _io.first_existing(
        [
            root / "humaneval" / "HumanEval.jsonl.gz",
            root / "humaneval" / "HumanEval.jsonl",
            root / "HumanEval.jsonl.gz",
            root / "HumanEval.jsonl",
            root / "data" / "HumanEval.jsonl.gz",
        ],
        "HumanEval.jsonl.gz (official openai/human-eval file)",
    )
    problems = _read(path, _public_tests(_io.aflow_split_file(NAME, "public_test", None)))
    if not problems:
        raise DataError(f"{path}: no problems")
    return problems


DATASET = DatasetSpec(
    name=NAME,
    title="HumanEval",
    task_type=TaskType.CODE,
    load=load,
    splits=SPLITS,
    official_files=("HumanEval.jsonl.gz",),
    completion=True,
    guard=True,
)
"""The registry entry (:mod:`sf_bench.registry`): human-eval's program rule and guard."""
