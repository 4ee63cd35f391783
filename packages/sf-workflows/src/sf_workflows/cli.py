"""``sf workflows …``: validate, run, show templates, print the generator prompt."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sf_sandbox._cli_errors import run_group
from sf_sandbox.cli_options import sandbox_options
from sf_workflows.errors import WorkflowConfigError

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

TASK_TYPES = ("code", "math", "qa")


@click.group(name="workflows")
def workflows() -> None:
    """Write, check and run ScoreFlow-style workflows.

    \b
    Check a file:     sf workflows validate my_graph.py --task-type math
    Run it:           sf workflows run my_graph.py --dataset gsm8k --problem gsm8k-test-3
    Reference graphs: sf workflows templates; sf workflows templates cot_sc --task-type code
    Generator prompt: sf workflows prompt --dataset math --problem ID
    """  # noqa: D301 - click needs the \b escape (no-rewrap marker)


def _read(path: Path) -> str:
    from sf_workflows.generator.parse import parse_workflow

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_workflow(text)


def _operators(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@workflows.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--task-type",
    type=click.Choice(TASK_TYPES),
    default=None,
    help="Check the operators allowed for this task type (default: any known operator).",
)
@click.option(
    "--operators", default=None, help="Comma-separated operator names allowed (overrides --task-type's set)."
)
@click.option("--problem-text", default=None, help="Flag strings that copy this problem text.")
@click.pass_context
def validate(
    ctx: click.Context, file: Path, task_type: str | None, operators: str | None, problem_text: str | None
) -> None:
    """Check FILE (a workflow, a <graph> block or a generator reply) statically.

    Prints one line per issue as FILE:LINE: message. Exit 0 when valid, 1 when not.
    """
    from sf_workflows.generator.validate import validate_workflow

    source = _read(file)
    report = validate_workflow(source, task_type, operators=_operators(operators), problem_text=problem_text)
    if report.ok:
        used = ", ".join(report.operators_used) or "none"
        click.echo(f"{file}: valid workflow (operators: {used})")
        return
    for issue in report.issues:
        click.echo(f"{file}:{issue.line or 1}: {issue.message}")
    ctx.exit(1)


@workflows.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dataset", required=True, help="sf-bench dataset (humaneval, mbpp, gsm8k, math, drop, hotpotqa)."
)
@click.option("--problem", "problem_id", required=True, help="Problem id within the dataset.")
@click.option("--split", default="test", show_default=True)
@click.option("--data-dir", default=None, help="Folder with the dataset files (default: bundled splits).")
@click.option("--executor-model", default="gpt-4o-mini", show_default=True, envvar="SF_EXECUTOR_MODEL")
@click.option(
    "--base-url",
    default=None,
    envvar="SF_EXECUTOR_BASE_URL",
    help="OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama...); "
    "key from SF_EXECUTOR_API_KEY/OPENAI_API_KEY.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds the workflow may run.")
@click.option("--max-llm-calls", type=int, default=50, show_default=True)
@click.option("--no-validate", is_flag=True, help="Run even if static validation fails.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='JSON price file {"model": {"input": usd_per_mtok, "output": usd_per_mtok}}.',
)
@sandbox_options(exclude=("pool_size", "jobs_per_container"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def run(
    ctx: click.Context,
    file: Path,
    dataset: str,
    problem_id: str,
    split: str,
    data_dir: str | None,
    executor_model: str,
    base_url: str | None,
    timeout: float,
    max_llm_calls: int,
    no_validate: bool,
    no_cache: bool,
    prices: Path | None,
    as_json: bool,
    sandbox: SandboxSettings,
) -> None:
    """Run the workflow in FILE on one problem, inside the sandbox, and show the outcome.

    The problem comes from sf-bench's loaders (sf-bench must be installed); text answers are
    scored with sf-bench's official scorer.
    """
    from sf_workflows import _bench
    from sf_workflows.executor import Executor, ExecutorConfig, PriceTable
    from sf_workflows.run import open_sandbox, run_workflow

    source = _read(file)
    problem = _bench.load_problem(dataset, problem_id, split, data_dir)
    table = PriceTable.default()
    if prices is not None:
        table = table.extended(PriceTable.read_file(prices))
    executor = Executor(
        ExecutorConfig(model=executor_model, base_url=base_url, use_cache=not no_cache), prices=table
    )

    async def go() -> Any:
        async with open_sandbox(sandbox) as pool:
            try:
                return await run_workflow(
                    source,
                    problem,
                    executor,
                    pool,
                    timeout=timeout,
                    validate=not no_validate,
                    max_llm_calls=max_llm_calls,
                )
            finally:
                await executor.aclose()

    outcome = asyncio.run(go())
    score = (
        _bench.score_answer(dataset, problem, outcome.answer)
        if outcome.ok and outcome.answer is not None
        else None
    )
    if as_json:
        data = outcome.to_json()
        data["problem"] = problem.id
        data["score"] = None if score is None else score.value
        click.echo(json.dumps(data))
    else:
        u = outcome.usage
        click.echo(f"status: {outcome.status}")
        if outcome.error:
            click.echo(f"error: {outcome.error}")
        if outcome.answer is not None:
            click.echo(f"answer: {outcome.answer}")
        if score is not None:
            click.echo(f"score: {score.value:g}" + (f" ({score.detail})" if score.detail else ""))
        click.echo(
            f"llm calls: {u.calls} ({u.cached_calls} cached), "
            f"tokens: {u.prompt_tokens}+{u.completion_tokens}, "
            f"cost: ${u.cost:.6f}, time: {outcome.duration:.2f}s"
        )
    if not outcome.ok:
        ctx.exit(1)


@workflows.command()
@click.argument("name", required=False)
@click.option("--task-type", type=click.Choice(TASK_TYPES), default="math", show_default=True)
def templates(name: str | None, task_type: str) -> None:
    """List the shipped workflows, or print NAME's source for --task-type."""
    from sf_workflows.templates import TEMPLATE_NAMES, get_template

    if name is None:
        for template in TEMPLATE_NAMES:
            first = get_template(template, task_type).split('"""')
            doc = first[1].strip().splitlines()[0] if len(first) > 2 else "the generator prompt's template"
            click.echo(f"{template:<13} {doc}")
        return
    click.echo(get_template(name, task_type), nl=False)


@workflows.command()
@click.option("--dataset", required=True)
@click.option("--problem", "problem_id", required=True)
@click.option("--split", default="test", show_default=True)
@click.option("--data-dir", default=None)
@click.option(
    "--operators", default=None, help="Comma-separated operators to offer (default: ScoreFlow's set)."
)
def prompt(dataset: str, problem_id: str, split: str, data_dir: str | None, operators: str | None) -> None:
    """Print the generator prompt for one problem."""
    from sf_workflows import _bench
    from sf_workflows.generator.prompt import build_generator_prompt

    problem = _bench.load_problem(dataset, problem_id, split, data_dir)
    click.echo(build_generator_prompt(problem, _operators(operators)), nl=False)


def main(argv: list[str] | None = None) -> int:
    """Run ``sf workflows`` as a program; return the exit code (0 ok, 1 failure, 2 usage/config)."""
    return run_group(workflows, argv, "sf workflows")
