"""``--generator file:PATH``: pre-generated workflows, run and scored as if generated now.

``PATH`` is either

- a JSON Lines file, one object per workflow: ``{"id": "gsm8k-test-17", "workflow": "..."}``
  (``task_id`` or ``problem_id`` work as the id key, ``source`` or ``graph`` as the workflow
  key). Several lines with the same id are that problem's samples, in file order, or in the
  order of an explicit integer ``"sample"`` key. Optional keys: ``dataset`` (when one file
  serves datasets whose ids could collide, e.g. DROP and MBPP numbers), ``cost`` (USD) and
  ``tokens`` that writing the workflow cost: they are charged to the generator (``gen $``,
  ``gen tok``). MBPP's ``Mbpp/<n>`` may be given as ``<n>``;
- or a folder: every ``*.jsonl`` in it is read as above (``<dataset>.jsonl``, e.g.
  ``mbpp.jsonl``, gives its lines that dataset unless they name one), and every other file is one
  problem's workflow, named after the problem id with each character outside
  ``[A-Za-z0-9_.-]`` replaced by ``_``, plus ``.py``, ``.txt`` or ``.workflow``
  (``HumanEval_0.py`` for ``HumanEval/0``, ``test_prealgebra_1291.json.py`` for MATH's
  ``test/prealgebra/1291.json``); a sub-folder of that name holds several samples (sorted by
  file name).

A workflow is ScoreFlow's ``<graph>…</graph>`` reply or bare ``class Workflow`` source.

Strictness (the file solver's): a line that is not JSON, not an object, lacks an id or a
workflow string, is not UTF-8 (a BOM is fine), or repeats an id's ``sample`` is a
:class:`~sf_bench.errors.DataError` naming file and line, before anything runs; a selected
problem with fewer than ``--k`` workflows is a :class:`~sf_bench.errors.BenchConfigError` that
counts them and names a few; ids that match no selected problem, and problems with more
workflows than ``--k``, are a counted warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_bench import registry
from sf_bench.errors import BenchConfigError, DataError
from sf_bench.jsonl import read_located
from sf_bench.systems._lines import dataset_field, id_and_text_key
from sf_bench.systems.generated import GeneratedWorkflowSystem, normalize_source
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

__all__ = ["WorkflowFile", "file_generator_system", "safe_name"]

_ID_KEYS = ("id", "task_id", "problem_id")
_SOURCE_KEYS = ("workflow", "source", "graph")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_EXTENSIONS = (".py", ".txt", ".workflow")
"""Extensions dropped from a workflow file's name to get the problem id (``HumanEval_0.py``)."""


def safe_name(problem_id: str) -> str:
    """The file name stem of ``problem_id`` in a folder of workflows (``HumanEval/0`` → ``HumanEval_0``)."""
    return _UNSAFE.sub("_", problem_id)


def _few(items: Sequence[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


class WorkflowFile:
    """Every workflow of a ``file:PATH``, read (and checked) at construction.

    A :class:`~sf_bench.protocols.WorkflowGenerator`: :meth:`generate` returns the first
    ``k`` workflows of each problem. ``generator_cost``/``generator_tokens`` carry the ``cost``
    and ``tokens`` the file states per workflow.

    Raises:
        BenchConfigError: the path does not exist or holds no workflows.
        DataError: a malformed line or file (the message names it).
    """

    def __init__(self, path: str | Path) -> None:
        """Read ``path`` (see the module docstring)."""
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise BenchConfigError(f"workflows file {self.path} does not exist")
        self._items: dict[tuple[str | None, str], list[tuple[int | None, str, float, int, str]]] = {}
        """(dataset, id) -> [(explicit sample, source, cost, tokens, where)]."""
        self._names: dict[str, str] = {}
        """Folder mode: safe name -> where it came from (duplicates are an error)."""
        if self.path.is_dir():
            self._read_folder()
        else:
            self._read_jsonl(self.path)
        if not self._items:
            raise BenchConfigError(
                f"{self.path} holds no workflows (expected JSON lines {{'id', 'workflow'}} or "
                "one <problem id>.py file per problem)"
            )
        self._ordered = {key: self._order(key, items) for key, items in self._items.items()}
        self.generator_cost: dict[tuple[str, int], float] = {}
        self.generator_tokens: dict[tuple[str, int], tuple[int, int]] = {}

    # ------------------------------------------------------------------ reading
    def _add(self, key: tuple[str | None, str], item: tuple[int | None, str, float, int, str]) -> None:
        self._items.setdefault(key, []).append(item)

    def _read_jsonl(self, file: Path, default_dataset: str | None = None) -> None:
        for where, rec in read_located(file):
            pid, key = id_and_text_key(
                rec,
                where,
                id_keys=_ID_KEYS,
                text_keys=_SOURCE_KEYS,
                no_id="needs an id ('id' or 'task_id', a string)",
                no_text="needs the workflow source as a string under 'workflow'",
            )
            sample = rec.get("sample")
            if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 0):
                raise DataError(f"{where}: 'sample' must be an integer >= 0")
            try:
                cost = float(rec.get("cost", 0.0) or 0.0)
                tokens = int(rec.get("tokens", 0) or 0)
            except (TypeError, ValueError) as e:
                raise DataError(f"{where}: cost/tokens must be numbers ({e})") from None
            dataset = dataset_field(rec, where, default_dataset, "'dataset' must be a string")
            self._add((dataset, pid), (sample, rec[key], cost, tokens, where))

    def _read_folder(self) -> None:
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.suffix == ".jsonl":
                self._read_jsonl(entry, entry.stem if registry.find(entry.stem) else None)
            elif entry.is_file():
                name = entry.name[: -len(entry.suffix)] if entry.suffix in _EXTENSIONS else entry.name
                self._claim(name, entry)
                self._add((None, name), (None, _read_text(entry), 0.0, 0, str(entry)))
            elif entry.is_dir():
                self._claim(entry.name, entry)
                files = sorted(f for f in entry.iterdir() if f.is_file() and not f.name.startswith("."))
                if not files:
                    raise DataError(f"{entry}: an empty sample folder (put one workflow file per sample)")
                for f in files:
                    self._add((None, entry.name), (None, _read_text(f), 0.0, 0, str(f)))

    def _claim(self, name: str, entry: Path) -> None:
        if name in self._names:
            raise DataError(
                f"{entry} and {self._names[name]} are both workflows of {name}: keep one (a sub-folder "
                f"{name}/ holds several samples)"
            )
        self._names[name] = str(entry)

    @staticmethod
    def _order(
        key: tuple[str | None, str], items: list[tuple[int | None, str, float, int, str]]
    ) -> list[tuple[str, float, int]]:
        explicit = [it for it in items if it[0] is not None]
        if explicit and len(explicit) != len(items):
            raise DataError(
                f"{items[0][4]}: id {key[1]!r} mixes lines with and without 'sample'; give it on all or none"
            )
        if explicit:
            seen: dict[int, str] = {}
            for sample, _, _, _, where in items:
                assert sample is not None
                if sample in seen:
                    raise DataError(
                        f"{where}: duplicate sample {sample} of id {key[1]!r} (also at {seen[sample]})"
                    )
                seen[sample] = where
            items = sorted(items, key=lambda it: it[0] or 0)
        return [(source, cost, tokens) for _, source, cost, tokens, _ in items]

    # ------------------------------------------------------------------ lookup
    def _keys(self, problem: Problem) -> list[str]:
        keys = [problem.id]
        short = registry.short_id(problem.dataset, problem.id)  # MBPP: "2" for "Mbpp/2"
        if short is not None:
            keys.append(short)
        keys.append(safe_name(problem.id))
        return list(dict.fromkeys(keys))

    def _lookup(self, problem: Problem) -> tuple[tuple[str | None, str] | None, list[tuple[str, float, int]]]:
        for pid in self._keys(problem):
            for ds in (problem.dataset, None):
                found = self._ordered.get((ds, pid))
                if found:
                    return (ds, pid), found
        return None, []

    def _aliases(self, problem: Problem) -> list[tuple[str | None, str]]:
        """Every key of the file that names ``problem`` (more than one is a duplicate)."""
        return [
            (ds, pid)
            for pid in self._keys(problem)
            for ds in (problem.dataset, None)
            if (ds, pid) in self._ordered
        ]

    def samples(self, problems: Sequence[Problem]) -> int:
        """The smallest number of workflows any of ``problems`` has (the default ``--k``)."""
        return min((len(self._lookup(p)[1]) for p in problems), default=0)

    def check(self, problems: Sequence[Problem], k: int) -> None:
        """Every problem has at least ``k`` workflows.

        Raises:
            BenchConfigError: some have fewer (counted, a few named).
            DataError: two ids of the file name the same problem (``Mbpp/2`` and ``2``).
        """
        for p in problems:
            aliases = self._aliases(p)
            if len(aliases) > 1:
                names = " and ".join(repr(pid if ds is None else f"{ds}:{pid}") for ds, pid in aliases)
                raise DataError(
                    f"{self.path}: {names} both name problem {p.id}: give its workflows under one id "
                    "(several lines of one id are its samples)"
                )
        short = [p.id for p in problems if len(self._lookup(p)[1]) < k]
        if short:
            missing = sum(1 for p in problems if not self._lookup(p)[1])
            what = f"; {missing} have none" if missing else ""
            raise BenchConfigError(
                f"{self.path} has fewer than {k} workflow(s) for {len(short)} of {len(problems)} "
                f"{problems[0].dataset} problems ({_few(short)}){what}: add them, lower --k, or select "
                "fewer with --limit"
            )

    def warnings(self, problems: Mapping[str, Sequence[Problem]], k: int) -> list[str]:
        """Lines to warn about: ids matching no selected problem, problems with more than ``k``."""
        used: set[tuple[str | None, str]] = set()
        extra: list[str] = []
        for ps in problems.values():
            for p in ps:
                key, found = self._lookup(p)
                if key is not None:
                    used.add(key)
                    if len(found) > k:
                        extra.append(p.id)
        unknown = [pid for (ds, pid) in self._ordered if (ds, pid) not in used]
        total = sum(len(ps) for ps in problems.values())
        lines: list[str] = []
        if unknown:
            lines.append(
                f"{len(unknown)} id(s) in {self.path} match none of the {total} selected problems and "
                f"are ignored ({_few(unknown)}): another --split, --limit or dataset, or a typo?"
            )
        if extra:
            lines.append(
                f"{len(extra)} problem(s) have more than --k {k} workflow(s) in {self.path}; only the "
                f"first {k} run ({_few(extra)})"
            )
        return lines

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        """The first ``k`` workflows of each problem (normalised to source).

        Raises:
            BenchConfigError: a problem has fewer than ``k``.
        """
        if problems:
            self.check(problems, k)
        out: list[list[str]] = []
        for p in problems:
            found = self._lookup(p)[1][:k]
            for slot, (_, cost, tokens) in enumerate(found):
                if cost or tokens:
                    self.generator_cost[(p.id, slot)] = cost
                    self.generator_tokens[(p.id, slot)] = (0, tokens)
            out.append([normalize_source(source) for source, _, _ in found])
        return out


def _read_text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as e:
        raise BenchConfigError(f"cannot read workflow file {file}: {e.strerror or e}") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{file}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save it as UTF-8"
        ) from None


class FileWorkflowSystem(GeneratedWorkflowSystem):
    """The ``file:PATH`` system: checks the file against the selected problems before the run."""

    def check_workflows(self, problems: Mapping[str, Sequence[Problem]], k: int) -> list[str]:
        """Raise for problems short of ``k`` workflows; return the warning lines (see :class:`WorkflowFile`).

        Raises:
            BenchConfigError: a selected problem has fewer than ``k`` workflows.
        """
        file: WorkflowFile = self.generator  # type: ignore[assignment]
        for ps in problems.values():
            if ps:
                file.check(ps, k)
        return file.warnings(problems, k)


def file_generator_system(
    path: str | None, endpoints: Any = None, *, pool_size: int = 2, sandbox: SandboxSettings | None = None
) -> FileWorkflowSystem:
    """The system behind ``--generator file:PATH`` (see the module docstring).

    Raises:
        BenchConfigError: no path, a missing path, or no executor endpoint.
        DataError: a malformed file.
    """
    from sf_bench.systems.baselines import Endpoints
    from sf_bench.systems.template import SandboxRunner

    if not path:
        raise BenchConfigError("--generator file:PATH needs a path, e.g. --generator file:workflows.jsonl")
    generator = WorkflowFile(path)
    executor = (endpoints or Endpoints()).executor()
    return FileWorkflowSystem(
        generator, SandboxRunner(executor, pool_size=pool_size, sandbox=sandbox), name=f"file:{path}"
    )
