"""AFlow's operator interface on top of sf-workflows' operators (embedded, runs in the sandbox).

:mod:`sf_bench.systems.aflow` puts this file's source at the top of every converted AFlow
graph; it is never imported by sf-bench itself. Inside the sandbox the workflow runtime
provides ``operator`` (sf-workflows' operators) and ``create`` (the executor), as for every
workflow, so only those two names and the standard library are used here (the
``TYPE_CHECKING`` imports below only tell a type checker what the two names are). It runs
where the workflow runtime runs, so it may use what that needs (Python >= 3.11).

Each class keeps the signature and the returned dict of the AFlow operator of the same name
(FoundationAgents/AFlow ``scripts/operators.py``, MIT licence) and delegates the LLM work to the
sf-workflows operator, bound to the input the AFlow call passes. The LLM calls therefore go to
our executor with sf-workflows' operator prompts (ScoreFlow's), not AFlow's.
"""
# ruff: noqa: F821 - operator and create are globals of the workflow runtime

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:  # globals of the workflow runtime (see above); never imported at run time
    from sf_workflows import operators as operator
    from sf_workflows.operators import create
    from sf_workflows.protocols import LLM, Completion, Message

DatasetType = Literal["HumanEval", "MBPP", "GSM8K", "MATH", "HotpotQA", "DROP"]

_AFLOW_SEPARATOR = "\n So we have the final results: "


class CostManager:
    """AFlow's cost manager as graphs use it; sf-bench counts the real cost on the host, so 0 here."""

    def __init__(self) -> None:
        self.total_cost = 0.0
        self.total_prompt_tokens = 0
        self.total_completion_tokens = 0


class AFlowLLM:
    """The executor as AFlow graphs see it, and an LLM for sf-workflows' operators.

    Graphs use ``await llm(prompt)``, ``get_usage_summary()`` and ``cost_manager``; the
    operators use ``complete``.
    """

    def __init__(self, llm: "LLM") -> None:
        self._llm = llm
        self.cost_manager = CostManager()

    async def complete(self, messages: "Sequence[Message]", **params: Any) -> "Completion":
        """The run's executor's ``complete``, unchanged."""
        return await self._llm.complete(messages, **params)

    async def __call__(self, prompt: str) -> Any:  # Any: see Returns
        """One user-message call, as AFlow's ``await self.llm(prompt)``.

        Returns:
            The reply's ``text`` (a str for every LLM of the protocol; the reply itself for an
            LLM whose reply has no ``text``).
        """
        reply = await self._llm.complete([{"role": "user", "content": prompt}])
        return getattr(reply, "text", reply)

    def get_usage_summary(self) -> dict[str, float]:
        """AFlow's usage summary, all 0: the cost is counted on the host."""
        return {"total_cost": 0.0, "total_input_tokens": 0, "total_output_tokens": 0, "total_tokens": 0}


def create_llm_instance(config: object = None) -> AFlowLLM:
    """AFlow's ``create_llm_instance(llm_config)``: the run's executor, whatever the config."""
    if isinstance(config, AFlowLLM):
        return config
    return AFlowLLM(create(config))


def _code_problem(problem: str, entry_point: str) -> dict[str, str]:
    return {"prompt": problem, "entry_point": entry_point}


class _AFlowOperator:
    def __init__(self, llm: AFlowLLM, name: str | None = None) -> None:
        self.llm = llm
        self.name = name or type(self).__name__


class _Custom(_AFlowOperator):
    async def __call__(self, input: str, instruction: str) -> dict[str, str]:
        return {"response": await operator.Custom(self.llm, problem=input)(instruction=instruction)}


class _AnswerGenerate(_AFlowOperator):
    async def __call__(self, input: str) -> dict[str, str]:
        text = await operator.AnswerGenerate(self.llm, problem=input)()
        thought, _, answer = text.partition(_AFLOW_SEPARATOR)
        return {"thought": thought, "answer": answer}


class _CustomCodeGenerate(_AFlowOperator):
    async def __call__(self, problem: str, entry_point: str, instruction: str) -> dict[str, str]:
        op = operator.CustomCodeGenerate(self.llm, problem=_code_problem(problem, entry_point))
        return {"response": await op(instruction=instruction)}


class _ScEnsemble(_AFlowOperator):
    async def __call__(self, solutions: Sequence[object], problem: str | None = None) -> dict[str, str]:
        op = operator.ScEnsemble(self.llm, problem=problem)
        return {"response": await op(solutions=[str(s) for s in solutions])}


class _Programmer(_AFlowOperator):
    async def __call__(self, problem: str, analysis: object = "None") -> dict[str, str]:
        text = await operator.Programmer(self.llm, problem=problem)(analysis=analysis)
        code = text.split("```python\n", 1)[1].split("\n```", 1)[0] if "```python\n" in text else ""
        for mark in ("the output of solve() is: ", "Last error: "):
            if mark in text:
                return {"code": code, "output": text.split(mark, 1)[1]}
        return {"code": code, "output": text}


class _Test(_AFlowOperator):
    async def __call__(
        self, problem: str, solution: str, entry_point: str, test_loop: int = 3
    ) -> dict[str, bool | str]:
        op = operator.Test(self.llm, problem=_code_problem(problem, entry_point), test_loop=test_loop)
        fixed = await op(solution=solution)
        return {"result": fixed == solution, "solution": fixed}


class _Format(_AFlowOperator):
    async def __call__(self, problem: str, solution: str, mode: str | None = None) -> dict[str, str]:
        return {"solution": await operator.Format(self.llm, problem=problem)(solution=solution)}


class _Review(_AFlowOperator):
    async def __call__(self, problem: str, solution: str, mode: str | None = None) -> dict[str, bool | str]:
        revised = await operator.Review(self.llm, problem=problem)(pre_solution=solution)
        same = revised.strip() == str(solution).strip()
        return {"review_result": same, "feedback": "" if same else "A revised solution:\n" + revised}


class _Revise(_AFlowOperator):
    async def __call__(
        self, problem: str, solution: str, feedback: str, mode: str | None = None
    ) -> dict[str, str]:
        op = operator.Revise(self.llm, problem=problem)
        return {"solution": await op(solution=solution, feedback=feedback)}


class aflow_operator:  # noqa: N801 - stands in for AFlow's operator module
    """The operators an AFlow graph constructs as ``operator.X(self.llm)``."""

    Custom = _Custom
    AnswerGenerate = _AnswerGenerate
    CustomCodeGenerate = _CustomCodeGenerate
    ScEnsemble = _ScEnsemble
    Programmer = _Programmer
    Test = _Test
    Format = _Format
    Review = _Review
    Revise = _Revise


async def aflow_call(graph: Callable[..., Awaitable[object]], problem: str | Mapping[str, Any]) -> object:
    """Call the graph as AFlow benchmarks do and return what it returns.

    ``graph(prompt, entry_point)`` for a code problem (a dict), else ``graph(text)``.
    """
    if isinstance(problem, dict):
        return await graph(problem["prompt"], problem["entry_point"])
    return await graph(problem)


def aflow_answer(result: object) -> str:
    """The answer of AFlow's ``(answer, cost)`` return (a bare answer, or a dict's response, also works).

    Raises:
        TypeError: no str answer in it.
    """
    first = _first_item(result)
    answer = _answer_in(first)
    if answer is None:
        raise TypeError(f"the AFlow graph returned {type(first).__name__}, expected (answer str, cost)")
    return answer


def _first_item(result: object) -> object:
    """``result[0]`` of a non-empty tuple or list, else ``result``."""
    if not isinstance(result, tuple | list):
        return result
    items = cast("Sequence[object]", result)  # checked: a tuple or list; its items are unknown
    return items[0] if items else items


def _answer_in(result: object) -> str | None:
    """``result`` when a str, else a dict's ``response``/``solution``/``answer`` str, else None."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        fields = cast("dict[object, object]", result)  # checked: a dict; its keys are unknown
        for key in ("response", "solution", "answer"):
            value = fields.get(key)
            if isinstance(value, str):
                return value
    return None
