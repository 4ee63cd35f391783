"""`sf train demo`: the whole loop on CPU in a few minutes, with no key and no weights.

A controlled task family whose scores are known in advance:

* Each task asks for four code words (a HotpotQA-shaped question, scored with sf-bench's
  official HotpotQA token F1). The gold words differ from task to task.
* A workflow is ScoreFlow-shaped Python (``class Workflow`` with one ``Custom`` operator) and
  runs for real in the sandbox through sf-workflows; its operator call goes to a scripted
  executor on the host.
* The scripted executor reveals one gold word for each of four "skills" the Custom
  instruction asks for (:data:`SKILLS`) and pads with a wrong word, so a workflow's score is
  exactly (skills in its instruction) / 4: 0, 0.25, 0.5, 0.75 or 1. A workflow that does not
  parse, validate or run scores 0.
* The generator is a tiny Llama built from a config with a closed line-level tokenizer built
  from the workflows' text (:func:`sf_train.testing.build_line_tokenizer`), warmed up by
  supervised fine-tuning on five workflows (0 to 4 skills, nested) in equal measure (mean
  score 0.5), so it writes valid workflows but has no preference.

The real loop then runs (generation with transformers, sandboxed execution, sf-bench scoring,
pairs, Score-DPO with LoRA); the mean score of sampled workflows rises over the iterations, on
the training tasks and on held-out tasks that never produce pairs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the loop imports torch and TRL: not needed to unpickle the scripted executor
    from sf_train.config import ScoreDPOConfig
    from sf_train.loop import LoopResult, Reporter

__all__ = [
    "SKILLS",
    "demo_config",
    "demo_problems",
    "demo_prompt",
    "demo_workflow",
    "expected_score",
    "make_executor",
    "run_demo",
    "warm_up",
]

SKILLS = (
    "Think step by step.",
    "Check each fact.",
    "Quote the context.",
    "Give only the final words.",
)
"""Instruction sentences; each one present in the Custom instruction earns one gold word."""

WORDS = (
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "grove",
    "heron",
    "iris",
    "juniper",
    "kelp",
    "lotus",
    "maple",
    "nectar",
    "opal",
    "pine",
)
FILLER = "zero"
TEMPLATE = """<graph>
class Workflow:
    def __init__(self, config, problem) -> None:
        self.problem = problem
        self.llm = create(config)
        self.custom = operator.Custom(self.llm, self.problem)

    async def run_workflow(self):
        solution = await self.custom(instruction="{instruction}")
        return solution
</graph>"""


def demo_workflow(skills: Sequence[int]) -> str:
    """The generator output for a workflow whose instruction asks for the given skills."""
    instruction = " ".join(SKILLS[i] for i in sorted(skills)) or "Answer."
    return TEMPLATE.format(instruction=instruction)


def expected_score(skills: Sequence[int]) -> float:
    """The known score of :func:`demo_workflow` ``(skills)``."""
    return len(set(skills)) / len(SKILLS)


def gold_words(task: int) -> list[str]:
    """The four gold words of task ``task`` (deterministic)."""
    return random.Random(task).sample(WORDS, 4)


def demo_problems(indices: Sequence[int]) -> list[Any]:
    """sf-bench HotpotQA-shaped problems for the given task numbers."""
    from sf_bench.types import Problem, TaskType

    problems = []
    for t in indices:
        question = f"Which four code words belong to task {t}?"
        answer = " ".join(gold_words(t))
        problems.append(
            Problem(
                id=f"demo-{t}",
                dataset="hotpotqa",
                task_type=TaskType.QA,
                prompt=question,
                reference=answer,
                answers=(answer,),
                extras={"question": question},
            )
        )
    return problems


def demo_prompt(problem: Any) -> str:
    """The (short) generator prompt of the demo: the question, then the graph starts."""
    return f"Question: {problem.prompt}\nWrite a workflow graph that answers it.\n"


def respond(request: Any) -> str:
    r"""The scripted executor: one gold word per skill in the instruction, then filler words.

    Works with both operator styles (ours: ``instruction\n\nproblem``; scoreflow:
    ``instruction + problem`` after a system message): skills and the task number are read
    from the whole user message. A message that already holds code words is an answer
    extraction request (``answer_extraction``): the reply is those words, in order, as an
    exact extractor would give them.
    """
    messages = request.get("messages", [])
    text = str(messages[-1].get("content", "")) if messages else ""
    tokens = text.replace("?", " ").replace(".", " ").replace('"', " ").split()
    found = [t for t in tokens if t in WORDS or t == FILLER]
    if found:
        return " ".join(found[-len(SKILLS) :])
    task = None
    for token in tokens:
        if token.isdigit():
            task = int(token)
    if task is None:
        return FILLER
    hits = sum(1 for skill in SKILLS if skill in text)
    words = gold_words(task)
    return " ".join(words[:hits] + [FILLER] * (len(words) - hits))


def make_executor() -> Any:
    """The scripted executor as an ``sf_workflows`` LLM (no network, no key)."""
    from sf_workflows.testing import ScriptedLLM

    return ScriptedLLM(respond, model="demo-scripted")


def _variants() -> list[tuple[int, ...]]:
    """The five workflows of the warm-up: 0, 1, 2, 3 or all 4 skills (nested), in equal measure."""
    return [tuple(range(n)) for n in range(len(SKILLS) + 1)]


def warm_up(
    directory: str | Path,
    train_problems: Sequence[Any],
    *,
    seed: int = 0,
    steps: int = 400,
    reporter: Reporter | None = None,
) -> Path:
    """Build the tiny generator and teach it the workflow format (all variants equally); save it.

    Skipped when ``directory`` already holds the warmed-up model.
    """
    directory = Path(directory)
    if (directory / "config.json").exists() and (directory / "tokenizer.json").exists():
        return directory
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl.trainer.sft_config import SFTConfig  # trl's lazy __init__ does not re-export for type checkers
    from trl.trainer.sft_trainer import SFTTrainer

    from sf_train.testing import build_line_tokenizer, build_tiny_llama

    variants = _variants()
    corpus = [demo_prompt(p) + demo_workflow(v) for p in train_problems for v in variants] * 3
    tokenizer = build_line_tokenizer(corpus + [demo_prompt(p) for p in demo_problems(range(200))])
    model = build_tiny_llama(
        tokenizer, hidden_size=96, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=192, seed=seed
    )
    rng = random.Random(seed)
    rows = [
        {"prompt": demo_prompt(p), "completion": demo_workflow(v)} for p in train_problems for v in variants
    ]
    rng.shuffle(rows)
    if reporter:
        reporter(
            f"warm-up: supervised fine-tuning of a tiny Llama ({sum(x.numel() for x in model.parameters())} "
            f"parameters) on {len(rows)} workflows, {steps} steps"
        )
    args = SFTConfig(
        output_dir=str(directory / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=True,
        seed=seed,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.train()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def demo_config(
    output_dir: str | Path,
    *,
    objective: str = "score-dpo",
    seed: int = 0,
    iterations: int = 3,
    **overrides: Any,
) -> ScoreDPOConfig:
    """The demo's :class:`~sf_train.config.ScoreDPOConfig` (CPU-sized; see the README table)."""
    from sf_train.config import ScoreDPOConfig

    # Keyword arguments of a ~150-parameter constructor, of as many types: it validates them.
    base: dict[str, Any] = dict(
        output_dir=str(Path(output_dir) / "run"),
        model_name_or_path=str(Path(output_dir) / "warmup-model"),
        dataset="hotpotqa",
        objective=objective,
        iterations=iterations,
        k=8,
        runs_per_workflow=3,
        num_pairs=96,
        eval_k=16,
        eval_each_iteration=True,
        temperature=0.5,
        top_p=0.95,
        max_new_tokens=48,
        generation_batch_size=64,
        learning_rate=5e-4,
        beta=2.0,
        per_device_train_batch_size=4,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        dtype="float32",
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        logging_steps=1,
        disable_tqdm=True,
        report_to="none",
        sandbox_pool_size=2,
        workflow_timeout=20.0,
        seed=seed,
        executor_model="demo-scripted",
    )
    base.update(overrides)
    return ScoreDPOConfig(**base)


def run_demo(
    output_dir: str | Path,
    *,
    objective: str = "score-dpo",
    seed: int = 0,
    iterations: int = 3,
    train_tasks: int = 12,
    heldout_tasks: int = 8,
    warmup_steps: int = 400,
    reporter: Reporter | None = None,
    plot: bool = True,
    warmup_model: str | Path | None = None,
    quiet: bool = False,
    **overrides: Any,
) -> LoopResult:
    """Warm up the tiny generator (once per ``output_dir``), then run the real loop on the demo tasks.

    ``warmup_model`` reuses an already warmed-up generator directory (the ablation benchmark
    starts every objective and seed from the same one) instead of ``output_dir/warmup-model``.
    ``quiet``: no progress bars (``sf train demo -q``).

    Returns:
        The loop's result; ``heldout`` holds the held-out mean score before each iteration and
        after the last one. ``output_dir/run/report.png`` is the plot (``plot=True``).
    """
    from sf_train.loop import run_loop

    output_dir = Path(output_dir)
    train = demo_problems(range(train_tasks))
    heldout = demo_problems(range(1000, 1000 + heldout_tasks))
    if warmup_model is None:
        warmup_model = warm_up(
            output_dir / "warmup-model", train, seed=0, steps=warmup_steps, reporter=reporter
        )
    overrides.setdefault("model_name_or_path", str(warmup_model))
    config = demo_config(output_dir, objective=objective, seed=seed, iterations=iterations, **overrides)
    result = run_loop(
        config,
        train_problems=train,
        eval_problems=heldout,
        executor=make_executor(),
        prompt_fn=demo_prompt,
        dataset_name="hotpotqa",
        reporter=reporter,
        quiet=quiet,
    )
    if plot:
        from sf_train.plots import plot_run

        run_dir = config.output_dir
        assert run_dir is not None, "demo_config always sets output_dir"
        plot_run(run_dir, Path(run_dir) / "report.png")
    return result
