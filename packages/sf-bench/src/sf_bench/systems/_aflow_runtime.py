"""AFlow's operator interface on top of sf-workflows' operators (embedded, runs in the sandbox).

:mod:`sf_bench.systems.aflow` puts this file's source at the top of every converted AFlow
graph; it is never imported by sf-bench itself. Inside the sandbox the workflow runtime
provides ``operator`` (sf-workflows' operators) and ``create`` (the executor), as for every
workflow, so only those two names and the standard library are used here.

Each class keeps the signature and the returned dict of the AFlow operator of the same name
(FoundationAgents/AFlow ``scripts/operators.py``, MIT licence) and delegates the LLM work to the
sf-workflows operator, bound to the input the AFlow call passes. The LLM calls therefore go to
our executor with sf-workflows' operator prompts (ScoreFlow's), not AFlow's.
"""
# ruff: noqa: F821, UP038 - operator and create are globals of the workflow runtime; any python3 >= 3.8

from typing import Literal

DatasetType = Literal["HumanEval", "MBPP", "GSM8K", "MATH", "HotpotQA", "DROP"]

_AFLOW_SEPARATOR = "\n So we have the final results: "


class CostManager:
    """AFlow's cost manager as graphs use it; sf-bench counts the real cost on the host, so 0 here."""

    def __init__(self):
        self.total_cost = 0.0
        self.total_prompt_tokens = 0
        self.total_completion_tokens = 0


class AFlowLLM:
    """The executor as AFlow graphs see it: ``await llm(prompt)``, ``get_usage_summary()``,
    ``cost_manager``; also an LLM for sf-workflows' operators (``complete``)."""

    def __init__(self, llm):
        self._llm = llm
        self.cost_manager = CostManager()

    async def complete(self, messages, **params):
        return await self._llm.complete(messages, **params)

    async def __call__(self, prompt):
        reply = await self._llm.complete([{"role": "user", "content": prompt}])
        return getattr(reply, "text", reply)

    def get_usage_summary(self):
        return {"total_cost": 0.0, "total_input_tokens": 0, "total_output_tokens": 0, "total_tokens": 0}


def create_llm_instance(config=None):
    """AFlow's ``create_llm_instance(llm_config)``: the run's executor, whatever the config."""
    if isinstance(config, AFlowLLM):
        return config
    return AFlowLLM(create(config))


def _code_problem(problem, entry_point):
    return {"prompt": problem, "entry_point": entry_point}


class _AFlowOperator:
    def __init__(self, llm, name=None):
        self.llm = llm
        self.name = name or type(self).__name__


class _Custom(_AFlowOperator):
    async def __call__(self, input, instruction):
        return {"response": await operator.Custom(self.llm, problem=input)(instruction=instruction)}


class _AnswerGenerate(_AFlowOperator):
    async def __call__(self, input):
        text = await operator.AnswerGenerate(self.llm, problem=input)()
        thought, _, answer = text.partition(_AFLOW_SEPARATOR)
        return {"thought": thought, "answer": answer}


class _CustomCodeGenerate(_AFlowOperator):
    async def __call__(self, problem, entry_point, instruction):
        op = operator.CustomCodeGenerate(self.llm, problem=_code_problem(problem, entry_point))
        return {"response": await op(instruction=instruction)}


class _ScEnsemble(_AFlowOperator):
    async def __call__(self, solutions, problem=None):
        op = operator.ScEnsemble(self.llm, problem=problem)
        return {"response": await op(solutions=[str(s) for s in solutions])}


class _Programmer(_AFlowOperator):
    async def __call__(self, problem, analysis="None"):
        text = await operator.Programmer(self.llm, problem=problem)(analysis=analysis)
        code = text.split("```python\n", 1)[1].split("\n```", 1)[0] if "```python\n" in text else ""
        for mark in ("the output of solve() is: ", "Last error: "):
            if mark in text:
                return {"code": code, "output": text.split(mark, 1)[1]}
        return {"code": code, "output": text}


class _Test(_AFlowOperator):
    async def __call__(self, problem, solution, entry_point, test_loop=3):
        op = operator.Test(self.llm, problem=_code_problem(problem, entry_point), test_loop=test_loop)
        fixed = await op(solution=solution)
        return {"result": fixed == solution, "solution": fixed}


class _Format(_AFlowOperator):
    async def __call__(self, problem, solution, mode=None):
        return {"solution": await operator.Format(self.llm, problem=problem)(solution=solution)}


class _Review(_AFlowOperator):
    async def __call__(self, problem, solution, mode=None):
        revised = await operator.Review(self.llm, problem=problem)(pre_solution=solution)
        same = revised.strip() == str(solution).strip()
        return {"review_result": same, "feedback": "" if same else "A revised solution:\n" + revised}


class _Revise(_AFlowOperator):
    async def __call__(self, problem, solution, feedback, mode=None):
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


async def aflow_call(graph, problem):
    """Call the graph as AFlow benchmarks do: ``graph(prompt, entry_point)`` (code), else ``graph(text)``."""
    if isinstance(problem, dict):
        return await graph(problem["prompt"], problem["entry_point"])
    return await graph(problem)


def aflow_answer(result):
    """The answer of AFlow's ``(answer, cost)`` return (a bare answer, or a dict's response, also works)."""
    if isinstance(result, (tuple, list)) and result:
        result = result[0]
    if isinstance(result, dict):
        for key in ("response", "solution", "answer"):
            if isinstance(result.get(key), str):
                return result[key]
    if not isinstance(result, str):
        raise TypeError(f"the AFlow graph returned {type(result).__name__}, expected (answer str, cost)")
    return result
