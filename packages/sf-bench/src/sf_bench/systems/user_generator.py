"""``--generator module:function`` and ``--generator path/to/file.py:name``: your own generator.

The contract (no sf_bench import needed)::

    def generate(problems, k):            # or: async def generate(problems, k)
        return [[source_1, ..., source_k] for problem in problems]

``problems`` is a list of :class:`~sf_bench.types.Problem` (``id``, ``dataset``, ``task_type``
``code``/``math``/``qa``, ``prompt``, ``extras``); the result has one list per problem, in
order, of ``k`` workflow sources each: ScoreFlow's ``<graph>…</graph>`` reply or bare
``class Workflow`` source (see sf-workflows' README). The name may also be a class (instantiated
with no arguments) or an object with ``generate(problems, k)``, sync or async.

The function is called once per batch of ``batch_size`` problems (default 1, so that a failure
costs one problem), up to ``concurrency`` batches at a time, each within ``timeout`` seconds.
Failures are per problem and never stop the run:

- the call raises or does not return in time: every slot of the batch's problems is a
  recorded error (``solver_error``, score 0, the reason in ``error``);
- it returns a list of the wrong length, or a problem's entry is not a list of ``k`` items:
  that problem's (or batch's) slots are errors, named with the count it returned;
- an item is not a ``str``: that slot is an error;
- a string that is no valid workflow runs like any other and scores 0 as ``invalid`` with the
  validator's reason (``metadata.workflow_error``).

A sync function runs in a daemon thread, so one that never returns is abandoned at the timeout
(not killed); an ``async def`` that blocks the event loop without awaiting cannot be timed out.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sf_bench.errors import BenchConfigError
from sf_bench.protocols import call_maybe_async
from sf_bench.systems.generated import GeneratedWorkflowSystem, failed_source, normalize_source
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

__all__ = ["DEFAULT_TIMEOUT", "UserGenerator", "user_generator_system"]

DEFAULT_TIMEOUT = 600.0
"""Seconds one call of a user generator may take (``--generator-timeout``)."""


class UserGenerator:
    """A user's ``generate(problems, k)`` callable as a fault-isolating generator.

    A :class:`~sf_bench.protocols.WorkflowGenerator` (see the module docstring).

    :meth:`generate` never raises for the user code's faults: it returns ``k`` strings per
    problem, each a workflow source or a failure marker
    (:func:`~sf_bench.systems.generated.failed_source`).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        batch_size: int = 1,
        concurrency: int = 4,
    ) -> None:
        """Wrap ``fn(problems, k)``.

        Raises:
            BenchConfigError: ``fn`` is not callable, or a limit is not positive.
        """
        if not callable(fn):
            raise BenchConfigError(f"--generator {name}: {type(fn).__name__} is not callable")
        if timeout <= 0:
            raise BenchConfigError(f"--generator-timeout must be > 0 seconds, got {timeout:g}")
        if batch_size < 1:
            raise BenchConfigError(f"--generator-batch must be >= 1, got {batch_size}")
        self.fn = fn
        self.name = name
        self.timeout = timeout
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self.progress: Callable[[int, int], None] | None = None
        """Called with (problems done, problems asked) after each call returns (the CLI's line)."""

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        """``k`` sources (or failure markers) per problem, in order; never raises for ``fn``'s faults."""
        gate = asyncio.Semaphore(self.concurrency)
        batches = [list(problems[i : i + self.batch_size]) for i in range(0, len(problems), self.batch_size)]

        done = 0

        async def one(batch: list[Problem]) -> list[list[str]]:
            nonlocal done
            async with gate:
                result = await self._batch(batch, k)
            done += len(batch)
            if self.progress is not None:
                self.progress(done, len(problems))
            return result

        results = await asyncio.gather(*(one(b) for b in batches))
        return [sources for batch in results for sources in batch]

    async def _batch(self, batch: list[Problem], k: int) -> list[list[str]]:
        def all_failed(reason: str) -> list[list[str]]:
            return [[failed_source(reason)] * k for _ in batch]

        try:
            async with asyncio.timeout(self.timeout):
                returned = await call_maybe_async(self.fn, list(batch), k)
        except TimeoutError:
            return all_failed(f"the generator did not return within --generator-timeout {self.timeout:g} s")
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the generator's failure is these samples' result
            return all_failed(f"the generator raised {type(exc).__name__}: {exc}")
        listed = _as_list(returned)
        if listed is None:
            return all_failed(
                f"the generator returned {type(returned).__name__}, expected a list of {len(batch)} "
                f"list(s) of {k} workflow source(s)"
            )
        if len(listed) != len(batch):
            return all_failed(
                f"the generator returned {len(listed)} list(s) for {len(batch)} problem(s); "
                f"expected one list of {k} workflow source(s) per problem"
            )
        return [_slots(problem, item, k) for problem, item in zip(batch, listed, strict=True)]


def _as_list(value: Any) -> list[Any] | None:
    """``value`` as a list when it is a sequence or another iterable (a generator expression...).

    None for a ``str``, ``bytes``, mapping or scalar: no list of workflows.
    """
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        return None
    try:
        return list(cast("Iterable[Any]", value))  # checked: an iterable of the user's values
    except Exception:  # noqa: BLE001 - a broken iterable is a wrong return, like any other
        return None


def _slots(problem: Problem, item: Any, k: int) -> list[str]:
    """One problem's ``k`` slots from what the generator returned for it."""
    listed = _as_list(item)
    if listed is None:
        reason = f"the generator returned {type(item).__name__} for {problem.id}, expected a list of {k} str"
        return [failed_source(reason)] * k
    item = listed
    if len(item) != k:
        reason = f"the generator returned {len(item)} workflow(s) for {problem.id}, expected {k} (--k)"
        return [failed_source(reason)] * k
    return [
        normalize_source(source)
        if isinstance(source, str)
        else failed_source(
            f"workflow {j} for {problem.id} is {type(source).__name__}, not a str of workflow source"
        )
        for j, source in enumerate(item)
    ]


def _callable_of(obj: Any, spec: str) -> Callable[..., Any]:
    """The ``(problems, k)`` callable behind what ``spec`` names (function, class, object)."""
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise BenchConfigError(
                f"--generator {spec}: {obj.__name__}() failed: {type(exc).__name__}: {exc}"
            ) from exc
    method = getattr(obj, "generate", None)
    if callable(method):
        return method
    if callable(obj):
        return obj
    raise BenchConfigError(
        f"--generator {spec}: {type(obj).__name__} is neither a function generate(problems, k) "
        "nor an object with such a method"
    )


def user_generator_system(
    spec: str,
    endpoints: Any = None,
    *,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    batch_size: int = 1,
) -> GeneratedWorkflowSystem:
    """The system behind ``--generator module:function`` / ``path/to/file.py:name``.

    The workflows run in a sandbox pool of ``pool_size`` on the executor of ``endpoints``
    (``--executor-model``/``--base-url``), scored by sf-bench's scorers.

    Raises:
        BenchConfigError: the module or file cannot be imported, lacks the name, or the name is
            not a generator; no executor endpoint.
    """
    from sf_bench.systems import load_attr
    from sf_bench.systems.baselines import Endpoints
    from sf_bench.systems.template import SandboxRunner

    target, _, attr = spec.rpartition(":")
    try:
        obj = load_attr(target, attr, spec, "--generator")
    except BenchConfigError:
        raise
    except Exception as exc:  # the user's module failed while importing: one line, exit 2
        raise BenchConfigError(
            f"--generator {spec}: importing {target} failed: {type(exc).__name__}: {exc}"
        ) from exc
    generator = UserGenerator(
        _callable_of(obj, spec), name=spec, timeout=timeout, batch_size=batch_size, concurrency=pool_size
    )
    executor = (endpoints or Endpoints()).executor()
    return GeneratedWorkflowSystem(
        generator, SandboxRunner(executor, pool_size=pool_size, sandbox=sandbox), name=spec
    )
