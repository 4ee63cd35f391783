# Written for sf-bench's tests in the shape of AFlow's published graphs (not copied from AFlow):
# it exercises CustomCodeGenerate, ScEnsemble and Test.
from typing import Literal
import workspace.MBPP.workflows.template.operator as operator
import workspace.MBPP.workflows.round_3.prompt as prompt_custom
from scripts.async_llm import create_llm_instance
from scripts.evaluator import DatasetType


class Workflow:
    def __init__(self, name: str, llm_config, dataset: DatasetType) -> None:
        self.name = name
        self.dataset = dataset
        self.llm = create_llm_instance(llm_config)
        self.custom_code_generate = operator.CustomCodeGenerate(self.llm)
        self.sc_ensemble = operator.ScEnsemble(self.llm)
        self.test = operator.Test(self.llm)

    async def __call__(self, problem: str, entry_point: str):
        solutions = []
        for _ in range(2):
            solution = await self.custom_code_generate(
                problem=problem, entry_point=entry_point, instruction=prompt_custom.CODE_PROMPT
            )
            solutions.append(solution["response"])
        best = await self.sc_ensemble(solutions=solutions, problem=problem)
        tested = await self.test(problem=problem, solution=best["response"], entry_point=entry_point)
        return tested["solution"], self.llm.get_usage_summary()["total_cost"]
