# Written for sf-bench's tests in the shape of AFlow's published graphs (not copied from AFlow):
# it exercises AnswerGenerate, Custom, ScEnsemble, Review, Revise and Format.
from typing import Literal
import workspace.DROP.workflows.template.operator as operator
import workspace.DROP.workflows.round_3.prompt as prompt_custom
from scripts.async_llm import create_llm_instance
from scripts.evaluator import DatasetType


class Workflow:
    def __init__(self, name: str, llm_config, dataset: DatasetType) -> None:
        self.name = name
        self.dataset = dataset
        self.llm = create_llm_instance(llm_config)
        self.answer_generate = operator.AnswerGenerate(self.llm)
        self.custom = operator.Custom(self.llm)
        self.sc_ensemble = operator.ScEnsemble(self.llm)
        self.review = operator.Review(self.llm)
        self.revise = operator.Revise(self.llm)
        self.format = operator.Format(self.llm)

    async def __call__(self, problem: str):
        first = await self.answer_generate(input=problem)
        second = await self.custom(input=problem, instruction=prompt_custom.ANSWER_PROMPT)
        best = await self.sc_ensemble(solutions=[first["answer"], second["response"]], problem=problem)
        solution = best["response"]
        review = await self.review(problem=problem, solution=solution)
        if not review["review_result"]:
            revised = await self.revise(problem=problem, solution=solution, feedback=review["feedback"])
            solution = revised["solution"]
        final = await self.format(problem=problem, solution=solution)
        return final["solution"], self.llm.get_usage_summary()["total_cost"]
