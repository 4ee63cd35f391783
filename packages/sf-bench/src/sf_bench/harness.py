"""The harness: run a system on datasets, score every answer, keep every result.

For each dataset, the harness

1. loads the finished records of ``out_dir/<dataset>.jsonl`` (resume) and works out the
   (problem, sample) pairs still missing;
2. awaits ``system.prepare(problems_still_missing, k, state_dir)`` once;
3. asks the system for each missing pair's answer ``repeats`` times, at most ``concurrency``
   calls at a time (an :class:`asyncio.Semaphore`), each within ``timeout`` seconds;
4. scores every answer as it arrives: code answers as sandbox jobs on one shared pool of
   ``concurrency`` warm containers (:class:`~sf_bench.scorers.code.CodeScorer`), text
   answers with the dataset's scorer (or the caller's override for that dataset: ``scorers=``,
   e.g. ScoreFlow's LLM judge; the summary and ``run.json`` name the metric used);
5. appends each (problem, sample)'s :class:`~sf_bench.records.Record` (fsynced) as soon as
   all its repeats are scored, and finally summarises the dataset
   (:class:`~sf_bench.report.DatasetSummary`).

At the end of :meth:`Harness.arun` the harness closes the system (its ``aclose()``/``close()``,
if it has one: the sandbox pool and LLM clients a workflow system owns), unless
``close_system=False``.

Failures are data, not crashes, and of two kinds (``sf_workflows.failures`` defines them):

- *the system's own*: a system that raises gets ``solver_error``, one that does not answer
  within ``timeout`` gets ``solver_timeout``, and an answer that says it is a failed attempt
  (:attr:`~sf_bench.protocols.Answer.failure`, e.g. ``workflow:invalid``) is recorded with that
  failure without being scored; all score 0;
- *ours*: an exception whose ``infrastructure`` attribute names a cause (``endpoint``,
  ``sandbox``; sf-workflows' ``ExecutorError`` and ``InfrastructureError`` carry it), or one of
  the ``openai`` client's connection, timeout, 429 and 5xx errors, gives ``infra_error``
  (``failure`` ``infra:<cause>``); a code scorer whose sandbox failed gives ``scorer_error``.
  Neither is a score: summaries leave them out of scores and intervals and count them apart,
  and resume redoes them (a sample whose sandbox failed ``sandbox_redo_cap`` times is not
  redone again).

The batch goes on past both. Only a results file that cannot be written stops the run
(:class:`~sf_bench.errors.BenchError`); every record written before stays on disk.

Timeouts can only interrupt a system at an ``await``: an ``async def`` that blocks the event
loop (``time.sleep``, a busy loop) stalls the run; a sync solver runs in a daemon thread that
is abandoned (not killed) at its timeout. Run untrusted or CPU-heavy work in the sandbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from sf_bench._writer import GroupWriter
from sf_bench.errors import BenchConfigError, BenchError
from sf_bench.infra import infra_cause
from sf_bench.protocols import System, aclose, as_answer, as_system
from sf_bench.records import (
    SANDBOX_REDO_CAP,
    Record,
    RecordStatus,
    RecordStore,
    Run,
    check_run_options,
    now,
)
from sf_bench.types import Problem, Score, TaskType

if TYPE_CHECKING:
    from sf_bench.report import DatasetSummary
    from sf_bench.scorers.code import CodeScorer
    from sf_sandbox.settings import SandboxSettings

__all__ = ["OFFICIAL", "Harness", "Progress", "evaluate", "infra_cause", "metric_name"]

OFFICIAL = "official"
"""Metric label of the datasets' own scorers (the default)."""


def metric_name(scorer: Any) -> str:
    """The label a scorer override reports in summaries: its ``metric`` attribute, else ``custom``."""
    name = getattr(scorer, "metric", None)
    return str(name) if name else "custom"


class Progress(Protocol):
    """Receives progress events (the CLI draws a bar on stderr from them)."""

    def start(self, dataset: str, total: int, done: int) -> None:
        """A dataset starts: ``total`` (problem, sample) pairs, ``done`` of them already on disk."""
        ...

    def advance(self, dataset: str, record: Record) -> None:
        """One record was written."""
        ...

    def finish(self, dataset: str) -> None:
        """The dataset is complete."""
        ...


class Harness:
    """Runs one system on datasets and scores it; see the module docstring.

    Args:
        system: a :class:`~sf_bench.protocols.System`, a solver (sync or async callable
            ``problem -> answer``) or a workflow generator (then ``runner`` is required).
        k: samples per problem (pass@k uses them).
        repeats: runs per sample; the sample's score is their mean.
        concurrency: most system calls in flight, and the sandbox pool size.
        timeout: seconds the system may take per answer (``None``: no limit).
        test_timeout: seconds the hidden tests of one code answer may run.
        out_dir: where records go (``None``: kept in memory only, no resume).
        code_scorer: a :class:`~sf_bench.scorers.code.CodeScorer` to use (e.g. with your own
            sandbox); by default one is started on first need and stopped at the end.
        progress: receives progress events.
        options: extra entries for ``run.json`` (split, data dir...).
        runner: the workflow runner when ``system`` is a workflow generator.
        scorers: per-dataset scorer overrides, ``{dataset: scorer}``; a scorer is
            ``(problem, answer_text) -> Score`` (sync or async) and names its metric in a
            ``metric`` attribute (``llm-judge``...; default ``custom``). Datasets not named keep
            their official scorer. A :class:`~sf_bench.types.Score`'s ``cost``/``tokens`` (a
            judge's spend) are recorded per run apart from the system's cost.
        close_system: close the system (``aclose()``/``close()``, if it has one) at the end
            of :meth:`arun`; pass False to run the same system again.
        sandbox_redo_cap: attempts of one (problem, sample) failing in the sandbox after which
            resume stops redoing it (its last failure stays recorded, not scored).
        sandbox: how the default code scorer opens its sandbox (backend, image, runtime;
            its size is ``concurrency`` and its timeout ``test_timeout``).

    Raises:
        BenchConfigError: bad option values.
    """

    def __init__(
        self,
        system: Any,
        *,
        k: int = 1,
        repeats: int = 1,
        concurrency: int = 4,
        timeout: float | None = None,
        test_timeout: float | None = None,
        out_dir: str | Path | None = None,
        code_scorer: CodeScorer | None = None,
        progress: Progress | None = None,
        options: Mapping[str, Any] | None = None,
        runner: Any = None,
        scorers: Mapping[str, Any] | None = None,
        close_system: bool = True,
        sandbox_redo_cap: int = SANDBOX_REDO_CAP,
        sandbox: SandboxSettings | None = None,
    ) -> None:
        """See the class docstring."""
        if k < 1:
            raise BenchConfigError(f"--k must be >= 1, got {k}")
        if repeats < 1:
            raise BenchConfigError(f"--repeats must be >= 1, got {repeats}")
        if concurrency < 1:
            raise BenchConfigError(f"--concurrency must be >= 1, got {concurrency}")
        if timeout is not None and timeout <= 0:
            raise BenchConfigError(f"--timeout must be > 0 seconds, got {timeout}")
        if test_timeout is not None and test_timeout <= 0:
            raise BenchConfigError(f"--test-timeout must be > 0 seconds, got {test_timeout}")
        if sandbox_redo_cap < 1:
            raise BenchConfigError(f"sandbox_redo_cap must be >= 1, got {sandbox_redo_cap}")
        self.sandbox_redo_cap = sandbox_redo_cap
        self.system: System = as_system(system, runner)
        self.k = k
        self.repeats = repeats
        self.concurrency = concurrency
        self.timeout = timeout
        self.test_timeout = test_timeout
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.options = dict(options or {})
        self.sandbox = sandbox
        self._code_scorer = code_scorer
        self._owns_code_scorer = code_scorer is None
        self._sem: asyncio.Semaphore | None = None
        self.scorers = dict(scorers or {})
        for name, scorer in self.scorers.items():
            if not callable(scorer):
                raise BenchConfigError(f"the scorer for {name} must be callable, got {type(scorer).__name__}")
        self.close_system = close_system

    def metric(self, dataset: str) -> str:
        """The metric label of ``dataset``.

        It is the override's :func:`metric_name`, else the dataset's default metric
        (``sf_bench.scorers.default_metric``: ``numeric`` for GSM8K, ``equiv`` for MATH, ``official``
        elsewhere).
        """
        from sf_bench.scorers import default_metric

        scorer = self.scorers.get(dataset)
        return default_metric(dataset) if scorer is None else metric_name(scorer)

    # ------------------------------------------------------------------ public API
    async def arun(self, datasets: Mapping[str, Sequence[Problem]]) -> dict[str, DatasetSummary]:
        """Run and score every dataset (one after the other); return a summary per dataset.

        Raises:
            BenchError: a results file cannot be written, or the system's ``prepare`` failed.
            SandboxError: code datasets need the sandbox and it cannot start.
        """
        from sf_bench.report import summarize
        from sf_bench.scorers import metric_names

        if self.out_dir is not None:
            check_run_options(
                self.out_dir / "run.json",
                {
                    "system": self.system.name,
                    "k": self.k,
                    "repeats": self.repeats,
                    "datasets": sorted(datasets),
                    "scoring": {name: self.metric(name) for name in sorted(datasets)},
                    "metrics": {name: list(metric_names(name)) for name in sorted(datasets)},
                    **self.options,
                },
            )
        self._sem = asyncio.Semaphore(self.concurrency)
        summaries: dict[str, DatasetSummary] = {}
        try:
            for name, problems in datasets.items():
                records = await self._run_dataset(name, list(problems))
                summaries[name] = summarize(
                    name,
                    records,
                    k=self.k,
                    repeats=self.repeats,
                    problem_ids=[p.id for p in problems],
                    metric=self.metric(name),
                )
        finally:
            try:
                if self._owns_code_scorer and self._code_scorer is not None:
                    scorer, self._code_scorer = self._code_scorer, None
                    await asyncio.get_running_loop().run_in_executor(None, scorer.close)
            finally:
                if self.close_system:
                    await aclose(self.system)
        return summaries

    def run(self, datasets: Mapping[str, Sequence[Problem]]) -> dict[str, DatasetSummary]:
        """Sync :meth:`arun` (starts its own event loop)."""
        return asyncio.run(self.arun(datasets))

    # ------------------------------------------------------------------ internals
    async def _code(self) -> CodeScorer:
        if self._code_scorer is None:
            from sf_bench.scorers.code import DEFAULT_TIMEOUT, CodeScorer

            self._code_scorer = CodeScorer(
                timeout=self.test_timeout or DEFAULT_TIMEOUT,
                concurrency=self.concurrency,
                settings=self.sandbox,
            )
        scorer = self._code_scorer
        await asyncio.get_running_loop().run_in_executor(None, scorer.start)
        return scorer

    async def _scorer_for(self, name: str, problems: Sequence[Problem]) -> Callable[..., Any]:
        """Return ``score(problem, text) -> Score`` (a coroutine function) for the dataset.

        Code answers stream through the shared sandbox pool one job each (``Sandbox.arun``),
        at most twice the pool size in flight so a container never waits for work. Streaming
        rather than ``arun_many`` batches keeps a slow problem (MBPP 123 runs ~5 s) from
        holding back the records of the fast ones finished beside it.
        """
        override = self.scorers.get(name)
        if override is not None:
            return _awaiting(override)
        if problems and problems[0].task_type is TaskType.CODE:
            scorer = await self._code()
            lane = asyncio.Semaphore(2 * self.concurrency)

            async def score_code(problem: Problem, text: str) -> Score:
                async with lane:
                    return await scorer(problem, text)

            return score_code
        from sf_bench.scorers import text_scorer

        return _awaiting(text_scorer(name))

    async def _run_dataset(self, name: str, problems: list[Problem]) -> list[Record]:
        store = RecordStore(self.out_dir / f"{name}.jsonl") if self.out_dir is not None else None
        done = store.load() if store is not None else {}
        ids = {p.id for p in problems}
        finished = {key: rec for key, rec in done.items() if key[0] in ids and key[1] < self.k}
        pending = [(p, s) for p in problems for s in range(self.k) if (p.id, s) not in finished]
        if self.progress is not None:
            self.progress.start(name, len(problems) * self.k, len(finished))
        new: list[Record] = []
        if pending:
            todo = list({p.id: p for p, _ in pending}.values())
            state_dir = self.out_dir / name if self.out_dir is not None else None
            try:
                await self.system.prepare(todo, self.k, state_dir)
            except BenchError:
                raise
            except Exception as e:
                ours = infra_cause(e) is not None  # e.g. a workflow generator's endpoint
                hint = (
                    "; it is our failure, not the system's: rerun the same command once it is back"
                    if ours
                    else ""
                )
                raise BenchError(
                    f"system {self.system.name} failed to prepare {name}: {type(e).__name__}: {e}{hint}"
                ) from e
            score = await self._scorer_for(name, todo)
            new = await self._answer_all(name, pending, score, store)
        if self.progress is not None:
            self.progress.finish(name)
        return list(finished.values()) + new

    async def _answer_all(
        self,
        name: str,
        pending: list[tuple[Problem, int]],
        score: Callable[..., Any],
        store: RecordStore | None,
    ) -> list[Record]:
        new: list[Record] = []
        writer = GroupWriter(store) if store is not None else None

        async def one(problem: Problem, sample: int) -> None:
            runs = await asyncio.gather(*(self._one_run(problem, sample, score) for _ in range(self.repeats)))
            record = Record(
                dataset=name, problem_id=problem.id, sample=sample, runs=tuple(runs), finished_at=now()
            )
            if record.sandbox_failure and store is not None:
                attempt = store.sandbox_attempts.get(record.key, 0) + 1
                record = dataclasses.replace(record, attempt=attempt, final=attempt >= self.sandbox_redo_cap)
            if writer is not None:
                await writer.put(record)
            new.append(record)
            if self.progress is not None:
                self.progress.advance(name, record)

        try:
            async with asyncio.TaskGroup() as group:
                for problem, sample in pending:
                    group.create_task(one(problem, sample))
        except BaseExceptionGroup as eg:
            bench = _first(eg, BenchError)
            if bench is not None:
                raise bench from None
            raise
        finally:
            if writer is not None:
                await writer.close()
        return new

    async def _one_run(self, problem: Problem, sample: int, score: Callable[..., Any]) -> Run:
        assert self._sem is not None
        async with self._sem:
            start = time.perf_counter()
            deadline = asyncio.timeout(self.timeout)
            try:
                async with deadline:
                    raw = await self.system.answer(problem, sample)
                answer = as_answer(raw)
            except Exception as e:  # noqa: BLE001 - the system's failure is this run's result
                cause = infra_cause(e)
                if cause is not None:  # ours (endpoint, sandbox): not a score, redone on resume
                    return Run(
                        status=RecordStatus.INFRA_ERROR,
                        failure=f"infra:{cause}",
                        error=f"{type(e).__name__}: {e}"[:2000],
                        latency=time.perf_counter() - start,
                    )
                if isinstance(e, TimeoutError) and deadline.expired():
                    return Run(
                        status=RecordStatus.SOLVER_TIMEOUT,
                        failure="solver_timeout",
                        error=f"no answer within --timeout {self.timeout:g} s",
                        latency=time.perf_counter() - start,
                    )
                return Run(
                    status=RecordStatus.SOLVER_ERROR,
                    failure="solver_error",
                    error=f"{type(e).__name__}: {e}"[:2000],
                    latency=time.perf_counter() - start,
                )
            latency = time.perf_counter() - start
        common: dict[str, Any] = {
            "answer": answer.text,
            "cost": answer.cost,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "latency": latency,
            "metadata": answer.metadata,
        }
        if answer.failure is not None:  # a failed attempt of the system's own: 0, nothing to score
            return Run(status=RecordStatus.SCORED, failure=answer.failure, error=answer.error, **common)
        try:
            result: Score = await score(problem, answer.text)
        except Exception as e:  # noqa: BLE001 - scoring infrastructure failed: redo on resume
            cause = infra_cause(e)  # e.g. an LLM judge's endpoint
            return Run(
                status=RecordStatus.SCORER_ERROR,
                failure=f"infra:{cause}" if cause else None,
                error=f"scorer failed: {type(e).__name__}: {e}"[:2000],
                **common,
            )
        if result.failure == "sandbox_error":
            return Run(
                status=RecordStatus.SCORER_ERROR,
                failure=result.failure,
                detail=result.detail,
                error=f"sandbox failed: {result.detail}",
                **common,
            )
        return Run(
            status=RecordStatus.SCORED,
            score=float(result.value),
            metrics=dict(result.metrics),
            failure=result.failure,
            detail=result.detail,
            scoring_cost=float(getattr(result, "cost", 0.0) or 0.0),
            scoring_tokens=int(getattr(result, "tokens", 0) or 0),
            **common,
        )


def _awaiting(fn: Callable[[Problem, str], Any]) -> Callable[[Problem, str], Awaitable[Score]]:
    """A coroutine function calling ``fn(problem, text)``, awaiting the result if ``fn`` is async."""

    async def score(problem: Problem, text: str) -> Score:
        result = fn(problem, text)
        if inspect.isawaitable(result):
            result = await result
        return result

    return score


def _first(eg: BaseExceptionGroup[BaseException], kind: type[BaseException]) -> BaseException | None:
    for exc in eg.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found = _first(cast("BaseExceptionGroup[BaseException]", exc), kind)
            if found is not None:
                return found
        elif isinstance(exc, kind):
            return exc
    return None


async def evaluate(
    system: Any,
    datasets: Sequence[str] | Mapping[str, Sequence[Problem]],
    *,
    split: str = "test",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    **kwargs: Any,
) -> dict[str, DatasetSummary]:
    """Load ``datasets`` (names, or already loaded problems) and run :class:`Harness` on them.

    ``kwargs`` go to :class:`Harness` (``k``, ``repeats``, ``concurrency``, ``timeout``,
    ``out_dir``...).

    Raises:
        BenchConfigError: unknown dataset or split, bad option.
        DataError: a data file is missing or malformed.
        BenchError: results cannot be written.
    """
    if isinstance(datasets, Mapping):
        loaded = {name: list(problems) for name, problems in datasets.items()}
    else:
        from sf_bench.datasets import load

        loaded = {name: load(name, split, data_dir=data_dir, limit=limit) for name in datasets}
    options = {"split": split} if not isinstance(datasets, Mapping) else {}
    return await Harness(system, options=options, **kwargs).arun(loaded)
