"""sf-bench as a problem source for ``sf workflows run --dataset D --problem ID``.

sf-workflows sits below sf-bench and must not import it. Instead it looks up the entry-point group
``sf.problem_sources``, where this package registers :data:`SOURCE` (see sf-bench's
``pyproject.toml``). The arrow therefore points the right way: sf-bench knows sf-workflows' small
contract (two callables), sf-workflows knows nothing of sf-bench.
"""

from __future__ import annotations

from typing import Any

from sf_bench.errors import BenchError


class ProblemNotFound(BenchError):
    """No such dataset, split or problem id (a user mistake)."""


def load_problem(dataset: str, problem_id: str, split: str = "test", data_dir: str | None = None) -> Any:
    """The ``Problem`` with id ``problem_id`` in ``dataset``'s ``split``.

    Raises:
        BenchError: unknown dataset or split, or no such problem (a few valid ids are listed).
    """
    from sf_bench import datasets

    problems = datasets.load(dataset, split, data_dir=data_dir)
    for problem in problems:
        if problem.id == problem_id:
            return problem
    examples = ", ".join(p.id for p in problems[:3])
    raise ProblemNotFound(f"no problem {problem_id!r} in {dataset} {split} (ids look like: {examples})")


def score_answer(dataset: str, problem: Any, answer: str) -> Any | None:
    """The official score of ``answer`` for a text dataset.

    ``None`` for code datasets: their hidden tests are run by ``sf bench``.
    """
    from sf_bench import registry, scorers

    spec = registry.find(dataset)
    if spec is None or spec.is_code:
        return None
    return scorers.text_scorer(dataset)(problem, answer)


SOURCE = {"load_problem": load_problem, "score_answer": score_answer, "error": BenchError}
"""What ``sf.problem_sources`` hands to sf-workflows: two callables and the error type they raise."""
