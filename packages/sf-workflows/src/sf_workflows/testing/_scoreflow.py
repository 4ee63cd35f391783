"""A made-up Gen-Verse/ScoreFlow checkout, for tests of :mod:`sf_workflows.generator.scoreflow`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FAKE_SCOREFLOW_TEMPLATE", "write_fake_scoreflow_checkout"]

FAKE_SCOREFLOW_TEMPLATE = """class Workflow:
    def __init__(self, config, problem) -> None:
        self.problem = problem
        self.llm = create(config)
        self.custom = operator.Custom(self.llm, self.problem)

    async def run_workflow(self):
        solution = await self.custom(instruction="Solve it step by step.")
        return solution"""
"""The graph template the fake checkout's ``START_PORMPT`` and ``TEMP_AVOID`` hold."""


def write_fake_scoreflow_checkout(root: str | Path, directory: str = "MATH") -> Path:
    """Write a directory laid out like a Gen-Verse/ScoreFlow checkout, with made-up strings.

    For tests of :mod:`sf_workflows.generator.scoreflow` that must not depend on ScoreFlow's
    own (unlicensed) text: the files hold ScoreFlow's names (``START_PORMPT``, ``TEMP_AVOID``,
    ``SC_ENSEMBLE_PROMPT``...) with placeholder values, so loading them with ``verify=True``
    fails the digest check and ``verify=False`` loads them. Returns ``root``.
    """
    base = Path(root) / "ScoreFlow" / "scripts" / directory
    base.mkdir(parents=True, exist_ok=True)
    conditions = {
        "PYTHON_START": "import asyncio\nimport ScoreFlow.scripts.X.operator as operator\n\n",
        "PYTHON_END": "\n\n    async def __call__(self):\n        return await self.run_workflow()",
        "START_PORMPT": "<<start: make a graph from this template>>\n<graph>\n"
        + FAKE_SCOREFLOW_TEMPLATE
        + "\n</graph>\nProblem: ",
        "END_PROMPT": "\n<<end: graph follows>>",
        "TEMP_AVOID": FAKE_SCOREFLOW_TEMPLATE,
        "NO_EXCEPTION_LIST": [".split(' ')", "int("],
        "TIME_LIMIT": 120,
        "TIME_LIMIT_TEST": 60,
        "sim_threshold": 0.75,
    }
    prompts = {
        "SC_ENSEMBLE_PROMPT": "[ens] {problem} || {solutions} [/ens]",
        "REVIEW_PROMPT": "[rev] {problem} || {solution} [/rev]",
        "PYTHON_CODE_VERIFIER_PROMPT": "[prog] {problem} || {analysis} || {feedback} [/prog]",
        "ANSWER_GENERATION_PROMPT": "[ans] {input} [/ans]",
        "REFLECTION_ON_PUBLIC_TEST_PROMPT": "[refl] {problem} || {solution} || {exec_pass} || "
        "{test_fail} || {entry_point} [/refl]",
        "CustomCodeGenerate_PROMPT": " [code-note]",
    }
    (base / "conditions.py").write_text(
        "".join(f"{k} = {v!r}\n" for k, v in conditions.items()), encoding="utf-8"
    )
    (base / "op_prompt.py").write_text(
        "".join(f"{k} = {v!r}\n" for k, v in prompts.items()), encoding="utf-8"
    )
    (base / "operator.py").write_text(
        "class Programmer:\n    async def exec_code(self, code, timeout=30):\n        pass\n\n"
        "class Test:\n    async def __call__(self, solution, test_loop: int = 10):\n        pass\n",
        encoding="utf-8",
    )
    (base / "extraction.py").write_text(
        "class Workflow:\n    async def __call__(self, question, context):\n"
        '        prompt = "[extract] " + question + " || " + context\n        return prompt\n',
        encoding="utf-8",
    )
    return Path(root)
