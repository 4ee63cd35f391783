r"""MBPP (Austin et al., 2021): Mostly Basic Python Problems.

Splits:

- ``validate`` (86) and ``test`` (341): AFlow's files, drawn from the 427 sanitized problems;
- ``full`` (427): the official sanitized set ``sanitized-mbpp.json`` (Google's hand-verified
  subset, the pool AFlow/ScoreFlow split), read from the data folder;
- ``full-974``: the original ``mbpp.jsonl`` (task ids 1-974), read from the data folder.

Problem fields:

- ``id``: ``Mbpp/<task_id>`` (EvalPlus' convention), e.g. ``Mbpp/116``.
- ``prompt``: AFlow's prompt for AFlow splits (statement + the reference's leading lines up to
  the ``def`` of the entry point). For ``full``/``full-974`` it is built the same way as AFlow's
  common case: the official statement, a blank line, and the reference's ``def <entry_point>(...)``
  line (the function name is not in most statements; the tests need it).
- ``reference`` and ``answers[0]``: the official ``code`` field as given (``full-974`` keeps its
  ``\r\n`` line endings).
- ``extras``: ``entry_point`` (the function the first test assert calls); ``test``;
  ``test_imports``; ``test_list``; ``task_id`` (int); ``public_tests`` (one assert on
  ``candidate`` from AFlow's ``mbpp_public_test.jsonl``, joined on task id; ``[]`` where AFlow
  has none, i.e. ``full-974`` tasks outside the sanitized set); ``source_file`` (sanitized
  only); ``challenge_test_list`` and ``test_setup_code`` (``full-974`` only).

Hidden tests (:func:`sf_bench.scorers.code.build_program`)::

    program = "\n".join(test_imports) + "\n" + answer + "\n\n" + test + "\n\n" + call + "\n"

- AFlow splits: ``test`` is AFlow's ``def check():`` wrapping the asserts; the code scorer
  renames that wrapper to a private name and calls it, so an answer with its own ``check``
  helper is not shadowed.
- ``full``/``full-974``: ``test`` is the official asserts at module level, one per line (for
  ``full-974`` preceded by ``test_setup_code``, which uses classes the solution defines); there
  is no ``check`` and no call, as in Google's own harness.

AFlow quirks kept as they are in AFlow's files (README "Datasets"):

- task 56: the reference's ``check`` is renamed ``check_answer`` (tests and prompt follow), so it
  does not clash with the ``check()`` wrapper;
- task 630: the reference's helper signature was changed to ``def adjac(test_tup)``, which breaks
  the reference (``NameError`` on ``ele``); it fails its own tests in the AFlow splits only;
- AFlow does not run ``test_imports`` (it pre-imports ``math``, ``re`` and ``hashlib``); we do.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from sf_bench.datasets import _io
from sf_bench.errors import DataError
from sf_bench.types import DatasetSpec, Problem, TaskType

NAME = "mbpp"
SPLITS = ("validate", "test", "full", "full-974")
BROKEN_AFLOW_REFERENCES = {
    630: "AFlow changed the helper to `def adjac(test_tup)`; its body still uses `ele`"
}
"""Task ids whose reference fails its own tests in AFlow's files, with the reason."""

_DEF_RE = re.compile(r"^def\s+([A-Za-z_]\w*)", re.MULTILINE)


def entry_point_of(code: str, test_list: list[str]) -> str | None:
    """Return the function of ``code`` that the first test assert calls (first by position).

    This reproduces AFlow's ``entry_point`` for all 427 sanitized problems and finds one for all
    974 original problems.
    """
    if not test_list:
        return None
    first = test_list[0]
    best: tuple[int, str] | None = None
    for name in dict.fromkeys(_DEF_RE.findall(code)):
        m = re.search(r"\b" + re.escape(name) + r"\s*\(", first)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    return best[1] if best else None


def _def_line(code: str, entry_point: str) -> str | None:
    for line in code.replace("\r\n", "\n").split("\n"):
        if re.match(r"def\s+" + re.escape(entry_point) + r"\s*\(", line):
            return line
    return None


@functools.lru_cache(maxsize=8)
def _public_map(folder: str) -> dict[int, list[str]]:
    """task_id -> public asserts, from AFlow's file in ``folder``.

    AFlow's ``mbpp_public_test.jsonl`` has no task ids: its lines follow ``mbpp_test.jsonl`` then
    ``mbpp_validate.jsonl``; the join is by position and checked on ``entry_point``.
    """
    root = Path(folder)
    public_path = root / "mbpp_public_test.jsonl"
    order: list[tuple[int, str]] = []
    for split in ("test", "validate"):
        path = root / f"mbpp_{split}.jsonl"
        for where, rec in _io.read_jsonl_records(path):
            order.append((_io.field(rec, "task_id", int, where), _io.field(rec, "entry_point", str, where)))
    public = list(_io.read_jsonl_records(public_path))
    if len(public) != len(order):
        raise DataError(
            f"{public_path}: {len(public)} lines, but mbpp_test.jsonl + mbpp_validate.jsonl beside it "
            f"hold {len(order)} problems (AFlow's public tests are joined by position)"
        )
    result: dict[int, list[str]] = {}
    for (where, rec), (task_id, entry_point) in zip(public, order, strict=True):
        if _io.field(rec, "entry_point", str, where) != entry_point:
            raise DataError(
                f"{where}: entry_point {rec['entry_point']!r} does not match task {task_id} ({entry_point!r})"
            )
        result[task_id] = _io.str_list(rec, "test", where)
    return result


def _public_for(split_file: Path | None) -> dict[int, list[str]]:
    if split_file is not None and (split_file.parent / "mbpp_public_test.jsonl").exists():
        return _public_map(str(split_file.parent))
    return _public_map(str(_io.bundled_aflow_dir()))


def _aflow_problem(rec: dict[str, Any], where: str, public: dict[int, list[str]]) -> Problem:
    task_id = _io.field(rec, "task_id", int, where)
    prompt = _io.field(rec, "prompt", str, where)
    code = _io.field(rec, "code", str, where)
    entry_point = _io.field(rec, "entry_point", str, where)
    test = _io.field(rec, "test", str, where)
    test_imports = _io.str_list(rec, "test_imports", where)
    test_list = _io.str_list(rec, "test_list", where)
    return Problem(
        id=f"Mbpp/{task_id}",
        dataset=NAME,
        task_type=TaskType.CODE,
        prompt=prompt,
        reference=code,
        answers=(code,),
        extras={
            "entry_point": entry_point,
            "test": test,
            "test_imports": test_imports,
            "test_list": test_list,
            "task_id": task_id,
            "public_tests": list(public.get(task_id, [])),
            "source_file": rec.get("source_file", ""),
        },
    )


def _official_problem(
    rec: dict[str, Any], where: str, public: dict[int, list[str]], *, original: bool
) -> Problem:
    task_id = _io.field(rec, "task_id", int, where)
    statement = _io.field(rec, "text" if original else "prompt", str, where)
    code = _io.field(rec, "code", str, where)
    test_list = _io.str_list(rec, "test_list", where)
    entry_point = entry_point_of(code, test_list)
    if entry_point is None:
        raise DataError(f"{where}: cannot tell which function of `code` the first test calls")
    def_line = _def_line(code, entry_point)
    if def_line is None:
        raise DataError(f"{where}: no `def {entry_point}(` line at the start of a line in `code`")
    extras: dict[str, Any] = {
        "entry_point": entry_point,
        "test_list": test_list,
        "task_id": task_id,
        "public_tests": list(public.get(task_id, [])),
    }
    asserts = "\n".join(test_list)
    if original:
        setup = _io.field(rec, "test_setup_code", str, where)
        extras["test_imports"] = []
        extras["test_setup_code"] = setup
        extras["challenge_test_list"] = _io.str_list(rec, "challenge_test_list", where)
        extras["test"] = (
            (setup.replace("\r\n", "\n").rstrip("\n") + "\n" + asserts) if setup.strip() else asserts
        )
    else:
        extras["test_imports"] = _io.str_list(rec, "test_imports", where)
        extras["test"] = asserts
        extras["source_file"] = rec.get("source_file", "")
    return Problem(
        id=f"Mbpp/{task_id}",
        dataset=NAME,
        task_type=TaskType.CODE,
        prompt=statement + "\n\n" + def_line,
        reference=code,
        answers=(code,),
        extras=extras,
    )


def load(split: str, data_dir: str | Path | None) -> list[Problem]:
    """Load one split (``validate``, ``test``, ``full`` or ``full-974``); see the module docstring.

    Raises:
        DataError: A file is missing or malformed.
        BenchConfigError: An official split without a data folder.
    """
    if split in _io.AFLOW_SPLITS:
        path = _io.aflow_split_file(NAME, split, data_dir)
        public = _public_for(path if data_dir is not None else None)
        return [_aflow_problem(rec, where, public) for where, rec in _io.read_jsonl_records(path)]
    root = _io.official_root(data_dir, NAME, split)
    public = _public_map(str(_io.bundled_aflow_dir()))
    if split == "full":
        path = _io.first_existing(
            [root / "mbpp" / "sanitized-mbpp.json", root / "sanitized-mbpp.json"],
            "sanitized-mbpp.json (official sanitized MBPP)",
        )
        return [
            _official_problem(rec, where, public, original=False)
            for where, rec in _io.read_json_array(path, "problems")
        ]
    path = _io.first_existing(
        [root / "mbpp" / "mbpp.jsonl", root / "mbpp.jsonl"], "mbpp.jsonl (original MBPP)"
    )
    return [
        _official_problem(rec, where, public, original=True) for where, rec in _io.read_jsonl_records(path)
    ]


DATASET = DatasetSpec(
    name=NAME,
    title="MBPP",
    task_type=TaskType.CODE,
    load=load,
    splits=SPLITS,
    official_files=("sanitized-mbpp.json", "mbpp.jsonl"),
    id_prefix="Mbpp/",
)
"""The registry entry (:mod:`sf_bench.registry`): the asserts rule; ids also without ``Mbpp/``."""
