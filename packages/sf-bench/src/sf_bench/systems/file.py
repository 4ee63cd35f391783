"""The ``file`` system: answers read from JSON Lines, so any model's outputs can be scored.

No Python needs writing.

One JSON object per line (read by :func:`sf_bench.jsonl.read_objects`: UTF-8 with or without a
BOM, ``.jsonl`` or ``.jsonl.gz``; a bad byte or line is one error naming file and line):

- code (HumanEval, MBPP), unchanged sample files of the official tools:

  - human-eval's samples, ``{"task_id": "HumanEval/0", "completion": "    return ..."}``: for
    HumanEval the completion is appended to the prompt (as human-eval does); for MBPP it is
    the full program;
  - evalplus's samples, ``{"task_id": "HumanEval/0", "solution": "def f(...): ..."}``: the
    solution is a full program, as evalplus reads it (``solution`` wins over ``completion``
    when a line has both, as in evalplus). HumanEval's prompt still goes first (so its imports
    and helpers stay defined, and the solution's definition replaces the stub), which is the one
    way this is more lenient than evalplus: a solution that forgets the prompt's imports passes.

  MBPP ids are ``Mbpp/<n>`` (evalplus's form); a bare number (``"task_id": 116``) is accepted too.
- everything else: ``{"id": "gsm8k-test-17", "answer": "42"}``.

Either id key (``task_id``/``id``/``problem_id``) and any answer key
(``solution``/``completion``/``answer``) is accepted for any dataset. Optional keys: ``dataset``
(needed only when one file serves several datasets whose ids could collide, e.g. DROP and
HotpotQA), and ``cost``/``input_tokens``/``output_tokens``/``tokens``/``metadata`` (copied into
the records); other keys are ignored.

Several lines with the same id are that problem's samples, in file order: sample ``j`` is the
``j``-th line. ``--k`` defaults to the smallest number of samples any selected problem has; a
selected problem with fewer than ``k`` samples is an error before anything runs. When the
number of samples differs between problems (a duplicated line, a missing sample), the lines
past ``k`` are not scored and :meth:`FileSystem.audit` says so, naming problems and lines.
Lines whose id is no problem of the split are never scored either; :meth:`FileSystem.audit`
counts them and names the first few. ``sf bench run`` prints both as warnings, or refuses the
file with ``--strict``.

``file:PATH`` may also name a directory holding one ``<dataset>.jsonl`` per dataset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from sf_bench import registry
from sf_bench.errors import BenchConfigError, DataError
from sf_bench.jsonl import read_located
from sf_bench.protocols import Answer
from sf_bench.systems._lines import dataset_field, id_and_text_key
from sf_bench.types import Problem

__all__ = ["FileSystem"]

_ID_KEYS = ("task_id", "id", "problem_id")
_ANSWER_KEYS = ("solution", "completion", "answer")
_FEW = 5
"""How many ids or lines a warning names."""


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
        self._where: dict[tuple[str | None, str], list[str]] = {}
        if self.path.is_dir():
            files = sorted([*self.path.glob("*.jsonl"), *self.path.glob("*.jsonl.gz")])
        else:
            files = [self.path]
        if not files:
            raise BenchConfigError(f"{self.path} holds no <dataset>.jsonl answer files")
        for file in files:
            stem = file.name.removesuffix(".gz").removesuffix(".jsonl")
            self._read(file, stem if self.path.is_dir() else None)

    def _read(self, file: Path, dataset: str | None) -> None:
        if not file.is_file():
            raise BenchConfigError(f"answers file {file} is not a regular file")
        for where, rec in read_located(file):
            pid, key = id_and_text_key(
                rec,
                where,
                id_keys=_ID_KEYS,
                text_keys=_ANSWER_KEYS,
                no_id="needs an id ('task_id' or 'id', a string)",
                no_text="needs an answer string ('completion', 'solution' or 'answer')",
            )
            ds = dataset_field(rec, where, dataset, "'dataset' must be a string such as \"gsm8k\"")
            self._answers.setdefault((ds, pid), []).append(_answer(rec, rec[key], where))
            self._where.setdefault((ds, pid), []).append(where)

    def _keys(self, problem: Problem) -> list[tuple[str | None, str]]:
        ids = [problem.id]
        short = registry.short_id(problem.dataset, problem.id)  # MBPP: "116" for "Mbpp/116"
        if short is not None:
            ids.append(short)
        return [(ds, pid) for pid in ids for ds in (problem.dataset, None)]

    def _lookup(self, problem: Problem) -> list[Answer]:
        for key in self._keys(problem):
            found = self._answers.get(key)
            if found:
                return found
        return []

    def _lines_of(self, problem: Problem) -> list[str]:
        for key in self._keys(problem):
            if self._answers.get(key):
                return self._where[key]
        return []

    def audit(
        self, splits: Mapping[str, Sequence[str]], selected: Mapping[str, Sequence[Problem]], k: int
    ) -> list[str]:
        """What of the file a run with ``k`` samples would not score, as warning lines.

        Args:
            splits: every problem id of each dataset's split (not only the ``--limit`` selection).
            selected: the problems the run scores, per dataset.
            k: samples per problem the run scores.

        Returns:
            At most one line about answers whose id is no problem of the split (their count and
            the first few ids), and one per dataset whose problems have different numbers of
            samples (the lines past ``k`` are not scored: which problems and lines). Empty when
            every line of the file is scored.
        """
        out: list[str] = []
        known = {name: set(ids) for name, ids in splits.items()}

        def is_known(ds: str | None, pid: str) -> bool:
            names = [ds] if ds is not None else list(known)
            for name in names:
                ids = known.get(name)
                if ids is None:
                    return ds is not None  # another dataset's answers: not this run's business
                if pid in ids or registry.full_id(name, pid) in ids:
                    return True
            return False

        unknown = [(ds, pid) for (ds, pid) in self._answers if not is_known(ds, pid)]
        if unknown:
            lines = sum(len(self._answers[key]) for key in unknown)
            few = ", ".join(repr(pid) for _, pid in unknown[:_FEW]) + (", ..." if len(unknown) > _FEW else "")
            out.append(
                f"{self.path}: {lines} answer line(s) for {len(unknown)} id(s) that are no problem of the "
                f"split of {', '.join(sorted(known))} ({few}); they are not scored: check the ids, "
                "the dataset and --split"
            )
        for name, problems in selected.items():
            counts = {p.id: len(self._lookup(p)) for p in problems}
            extra = {pid: n - k for pid, n in counts.items() if n > k}
            if not extra or len(set(counts.values())) == 1:
                continue  # every problem has the same number of samples: --k chose to score fewer
            over = [p for p in problems if p.id in extra][:3]
            few = "; ".join(
                f"{p.id} has {counts[p.id]} (unscored: {', '.join(self._lines_of(p)[k:][:3])})" for p in over
            )
            out.append(
                f"{self.path}: {name} problems have {min(counts.values())} to {max(counts.values())} "
                f"answers each (duplicate ids?); scoring k={k} per problem leaves {sum(extra.values())} "
                f"line(s) of {len(extra)} problem(s) unscored ({few}"
                f"{'; ...' if len(extra) > 3 else ''}); deduplicate the file or pass --k"
            )
        return out

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
    except (TypeError, ValueError, OverflowError) as e:
        raise DataError(f"{where}: cost/tokens must be finite numbers ({e})") from None
    if not math.isfinite(cost) or min(cost, tokens, input_tokens, output_tokens) < 0:
        raise DataError(f"{where}: cost/tokens must be finite numbers >= 0")
    metadata: object = rec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DataError(f"{where}: 'metadata' must be an object")
    return Answer(
        text=text,
        cost=cost,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        metadata=cast("dict[str, Any]", metadata),  # checked: a JSON object (str keys)
    )
