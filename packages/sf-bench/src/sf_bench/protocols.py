"""The seams between the harness and the systems it scores.

Everything here is structural (:class:`typing.Protocol`): a user's object is scored without
importing sf_bench as long as it has the right shape. The harness only ever talks to a
:class:`System` (answers per problem and sample); :func:`as_system` turns the other shapes into
one:

- a :class:`Solver`, i.e. any callable ``problem -> answer`` (a bare ``async def`` works, and so
  does a plain function; the sync ones run in a worker thread);
- a :class:`WorkflowGenerator` together with a :class:`WorkflowRunner`: the generator writes
  ``k`` workflow sources per problem once, the runner executes one source on its problem
  (``--repeats`` re-runs the same source, as ScoreFlow scores every workflow as the mean of
  three runs). See :class:`GeneratorSystem`.

An answer is a ``str``, an :class:`Answer` (text plus cost/tokens/metadata), a mapping with an
``"answer"`` or ``"text"`` key, or any object with a ``text`` attribute; :func:`as_answer`
normalises them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from sf_bench.errors import BenchConfigError, BenchError
from sf_bench.jsonl import append_objects, complete_size, read_objects
from sf_bench.types import Problem, Score

__all__ = [
    "Answer",
    "BatchScorer",
    "GeneratorSystem",
    "Scorer",
    "Solver",
    "SolverSystem",
    "System",
    "WorkflowGenerator",
    "WorkflowRunner",
    "aclose",
    "as_answer",
    "as_system",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """A system's answer to one problem, with what it cost.

    A system may return a plain ``str`` instead; cost and tokens are then recorded as 0.
    """

    text: str
    """The answer: the final answer for GSM8K/MATH/DROP/HotpotQA, code for HumanEval/MBPP
    (a full program, or for HumanEval a completion appended to the prompt)."""
    cost: float = 0.0
    """Money spent producing it, in US dollars."""
    input_tokens: int = 0
    """Prompt tokens spent producing it (all LLM calls together)."""
    output_tokens: int = 0
    """Completion tokens spent producing it."""
    metadata: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Anything JSON-serialisable worth keeping in the record (workflow source, model, ...)."""
    failure: str | None = None
    """Set when this answer is a failed attempt of the system's own (a workflow that was not in
    the reply, was invalid, raised, timed out...: ``workflow:<reason>``, see
    ``sf_workflows.failures``): the run scores 0 with this failure, without being scored. Our
    failures (endpoint, sandbox) are raised instead, never returned as an answer."""
    error: str | None = None
    """Why the attempt failed (kept in the record with :attr:`failure`)."""

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


AnswerLike = Any
"""``str | Answer | Mapping | object with .text``: whatever :func:`as_answer` accepts (Any because
user objects are matched structurally)."""


@runtime_checkable
class Solver(Protocol):
    """Anything that answers one problem: ``async def __call__(self, problem) -> answer``.

    A bare ``async def solve(problem): ...`` function satisfies it, and so does a sync function
    (run in a daemon thread, so one that hangs past ``--timeout`` cannot block the exit). The
    answer is a ``str`` or anything :func:`as_answer` accepts.
    The solver must not assume it is called once per problem: with ``--k``/``--repeats`` it is
    called ``k × repeats`` times per problem, concurrently with other problems.
    """

    def __call__(self, problem: Problem) -> Any:  # Awaitable[AnswerLike] | AnswerLike
        """Answer ``problem``; raising records an error for this sample and the run goes on."""
        ...


@runtime_checkable
class WorkflowGenerator(Protocol):
    """Writes workflow programs: ``k`` Python sources per problem.

    ``generate(problems, k)`` returns one list per problem, in order, each of ``k`` sources (a
    ``str`` each, in ScoreFlow's shape: a ``class Workflow`` with ``async def run_workflow``).
    A generator that cannot produce a valid source for some slot should still return a string
    (for example the last invalid attempt): the runner turns it into a scored failure.
    """

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        """Return ``k`` workflow sources for each problem, in the problems' order."""
        ...


@runtime_checkable
class WorkflowRunner(Protocol):
    """Runs one workflow source on its problem and returns the answer it produced.

    sf-workflows' ``run_workflow(source, problem, executor, sandbox)`` becomes a runner by
    closing over its executor and sandbox. A failing workflow should return an answer whose
    text is empty (with the error in ``metadata``) or raise; either way it is scored as a
    failure and the run continues.
    """

    async def run(self, source: str, problem: Problem) -> Any:  # AnswerLike
        """Execute ``source`` on ``problem``; return the workflow's answer."""
        ...


@runtime_checkable
class System(Protocol):
    """What the harness runs: answers per (problem, sample).

    ``prepare`` is awaited once per dataset with the problems that still need answers (after
    resume) before any ``answer`` call; ``state_dir`` is a directory the system may use to
    persist expensive intermediate state (generated workflows) so that a resumed run reuses it.
    ``answer(problem, sample)`` is then awaited ``repeats`` times per sample, concurrently
    across problems and samples; ``sample`` is in ``range(k)``.

    Optional: a system that holds resources (a sandbox pool, HTTP clients, a cache) defines
    ``async def aclose()`` (or a sync ``close()``); the harness calls it once at the end of its
    run (see :func:`aclose`), inside the run's event loop. It is not part of the protocol's
    required shape, so systems without resources need not define it.
    """

    name: str
    """Short label written to the run's metadata (``canonical``, ``file:answers.jsonl``...)."""

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        """Do per-run work before answering (may be a no-op)."""
        ...

    async def answer(self, problem: Problem, sample: int) -> Any:  # AnswerLike
        """Return the answer for ``problem``'s ``sample``-th sample."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Scores one answer: ``(problem, answer_text) -> Score``, sync or async.

    The four text scorers (``sf_bench.scorers.text_scorer(dataset)``) are plain sync functions;
    :class:`~sf_bench.scorers.code.CodeScorer` is async.
    """

    def __call__(self, problem: Problem, answer: str) -> Score | Awaitable[Score]:
        """Score ``answer`` for ``problem``; must not raise for a bad answer."""
        ...


@runtime_checkable
class BatchScorer(Protocol):
    """A scorer that is faster on batches (code: one sandbox ``arun_many`` per batch)."""

    async def ascore_many(self, items: Sequence[tuple[Problem, str]]) -> list[Score]:
        """Score every ``(problem, answer)``; results in input order."""
        ...


def as_answer(value: Any) -> Answer:
    """Normalise whatever a system returned into an :class:`Answer`.

    Accepts ``str``, :class:`Answer`, a mapping with ``answer``/``text``/``completion`` plus
    optional ``cost``/``input_tokens``/``output_tokens``/``tokens``/``metadata``, or an object
    with a ``text`` attribute (and optionally the same cost attributes).

    Raises:
        BenchError: ``value`` is none of these (the harness records it as the sample's error).
    """
    if isinstance(value, Answer):
        return value
    if isinstance(value, str):
        return Answer(text=value)
    get: Callable[[str, Any], Any]
    if isinstance(value, Mapping):
        fields = cast("Mapping[str, Any]", value)  # a user's mapping, only looked up by str keys
        for key in ("answer", "text", "completion"):
            if key in fields:
                text = fields[key]
                break
        else:
            raise BenchError(
                f"answer mapping has none of the keys 'answer', 'text', 'completion': {value!r:.200}"
            )
        get = fields.get
    elif hasattr(value, "text"):
        text = value.text
        get = lambda key, default: getattr(value, key, default)  # noqa: E731
    else:
        raise BenchError(f"a system must return a str or an object with .text, got {type(value).__name__}")
    if not isinstance(text, str):
        raise BenchError(f"answer text must be a str, got {type(text).__name__}")
    tokens = int(get("tokens", 0) or 0)
    input_tokens = int(get("input_tokens", 0) or 0)
    output_tokens = int(get("output_tokens", 0) or 0)
    if tokens and not (input_tokens or output_tokens):
        output_tokens = tokens
    metadata: Mapping[str, Any] = get("metadata", None) or {}
    failure, error = get("failure", None), get("error", None)
    return Answer(
        text=text,
        cost=float(get("cost", 0.0) or 0.0),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        metadata=dict(metadata),
        failure=str(failure) if failure else None,
        error=str(error) if error else None,
    )


async def aclose(obj: Any) -> None:
    """Release what ``obj`` holds: await ``obj.aclose()``, else call ``obj.close()``.

    A sync ``close`` runs in a worker thread (stopping a sandbox pool blocks for a while), an
    object with neither is left alone. Errors propagate.
    """
    closer = getattr(obj, "aclose", None)
    if callable(closer):
        result = closer()
        if inspect.isawaitable(result):
            await result
        return
    closer = getattr(obj, "close", None)
    if callable(closer):
        result = await asyncio.get_running_loop().run_in_executor(None, closer)
        if inspect.isawaitable(result):
            await result


async def call_maybe_async(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; await coroutine functions, run sync ones in a daemon thread.

    A daemon thread (not the loop's default executor) so that a sync solver that hangs past
    its timeout cannot keep the process from exiting.
    """
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):  # noqa: B004
        return await fn(*args)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def work() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            value, ok = e, False
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this answer any more

    threading.Thread(target=work, name="sf-bench-solver", daemon=True).start()
    result = await future
    if inspect.isawaitable(result):
        return await result
    return result


class SolverSystem:
    """A :class:`Solver` as a :class:`System`: every sample is a fresh call to the solver."""

    def __init__(self, solver: Callable[[Problem], Any], *, name: str | None = None) -> None:
        """Wrap ``solver`` (sync or async callable taking a :class:`Problem`)."""
        if not callable(solver):
            raise BenchConfigError(f"a solver must be callable, got {type(solver).__name__}")
        self.solver = solver
        self.name = name or getattr(solver, "__qualname__", None) or type(solver).__name__

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        """Nothing to prepare."""

    async def answer(self, problem: Problem, sample: int) -> Any:
        """Call the solver on ``problem`` (``sample`` is not passed on)."""
        return await call_maybe_async(self.solver, problem)

    async def aclose(self) -> None:
        """Close the solver if it has ``aclose()``/``close()`` (see :func:`aclose`)."""
        await aclose(self.solver)


class GeneratorSystem:
    """A :class:`WorkflowGenerator` plus a :class:`WorkflowRunner` as a :class:`System`.

    ``prepare`` asks the generator for ``k`` sources per problem (only for problems that have no
    saved sources yet) and appends them to ``state_dir/workflows.jsonl`` so that a resumed run
    re-runs the same workflows instead of generating new ones. ``answer(problem, sample)`` runs
    source number ``sample``; the source is kept in the answer's metadata (``workflow``).
    """

    def __init__(
        self, generator: WorkflowGenerator, runner: WorkflowRunner, *, name: str | None = None
    ) -> None:
        """Pair ``generator`` with ``runner``."""
        self.generator = generator
        self.runner = runner
        self.name = name or type(generator).__name__
        self._sources: dict[str, list[str]] = {}

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        """Generate (or reload) ``k`` workflow sources per problem.

        Raises:
            BenchError: the generator returned the wrong number of lists or sources, or the
                state file cannot be written.
        """
        path = state_dir / "workflows.jsonl" if state_dir is not None else None
        if path is not None and path.exists():
            # a torn last line from a kill is not read: that problem is regenerated
            for _, entry in read_objects(path, torn_tail=True, skip_bad=True):
                try:
                    self._sources[str(entry["problem_id"])] = [str(x) for x in entry["sources"]]
                except (KeyError, TypeError):
                    continue
            good = complete_size(path)
            if path.stat().st_size > good:
                with path.open("r+b") as f:
                    f.truncate(good)
        todo = [p for p in problems if len(self._sources.get(p.id, ())) < k]
        if not todo:
            return
        generated = await self.generator.generate(todo, k)
        if len(generated) != len(todo) or any(len(s) < k for s in generated):
            raise BenchError(
                f"workflow generator {self.name} returned {len(generated)} lists for {len(todo)} problems "
                f"(each needs {k} sources)"
            )
        rows: list[dict[str, Any]] = []
        for problem, sources in zip(todo, generated, strict=True):
            self._sources[problem.id] = [str(s) for s in sources[:k]]
            rows.append({"problem_id": problem.id, "sources": self._sources[problem.id]})
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                append_objects(path, rows, ensure_ascii=True)
            except OSError as e:
                raise BenchError(f"cannot save generated workflows to {path}: {e.strerror or e}") from e

    async def answer(self, problem: Problem, sample: int) -> Any:
        """Run workflow number ``sample`` of ``problem``; its source goes into the metadata."""
        source = self._sources[problem.id][sample]
        answer = as_answer(await self.runner.run(source, problem))
        return dataclasses.replace(answer, metadata={**answer.metadata, "workflow": source})

    async def aclose(self) -> None:
        """Close the generator, then the runner, where they have ``aclose()``/``close()``."""
        try:
            await aclose(self.generator)
        finally:
            await aclose(self.runner)


def as_system(obj: Any, runner: WorkflowRunner | None = None) -> System:
    """Turn a system, a solver (sync or async callable) or a generator + runner into a :class:`System`.

    Raises:
        BenchConfigError: ``obj`` has none of these shapes, or a generator comes without a runner.
    """
    if isinstance(obj, System) and not isinstance(obj, type):
        return obj
    if isinstance(obj, WorkflowGenerator) and not isinstance(obj, type):
        if runner is None:
            raise BenchConfigError("a workflow generator needs a runner to execute its workflows")
        return GeneratorSystem(obj, runner)
    if callable(obj):
        return SolverSystem(obj)
    raise BenchConfigError(
        f"{type(obj).__name__} is not a solver (callable problem -> answer), a workflow generator "
        "(async generate(problems, k)) or a system (prepare + answer)"
    )
