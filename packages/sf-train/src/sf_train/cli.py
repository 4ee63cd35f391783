"""``sf train …`` (also ``python -m sf_train``): run, demo, report.

Exit codes: 0 ok; 1 run failure; 2 usage or configuration error (bad field, missing weights,
unreadable data, a run directory holding another run); 130 interrupted (finished stages are on
disk: rerun the same command to resume). Every sf error prints one ``error: …`` line.

Nothing heavy is imported until a command runs, so ``sf --help`` never imports torch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sf_sandbox._cli_errors import handle_errors, run_group
from sf_sandbox.cli_options import sandbox_options

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

__all__ = ["main", "train"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_handle_errors = handle_errors("interrupted: finished stages are saved; rerun the same command to resume")


@click.group(context_settings={**_CONTEXT, "auto_envvar_prefix": "SF_TRAIN"})
def train() -> None:
    """ScoreFlow's Score-DPO loop: generate workflows, score them in the sandbox, train a LoRA adapter.

    \b
    Examples:
      sf train demo                                   the whole loop on CPU in minutes, no key, no weights
      sf train run --config run.yaml                  the main job (see packages/sf-train/README.md)
      sf train run --config run.yaml --k 4 --iterations 2 --objective dpo
      sf train report runs/gsm8k                      solve rate and loss per iteration (PNG)

    Every field of ScoreDPOConfig (and of TRL's DPOConfig/TrainingArguments) is a YAML key and a
    --flag; flags override the file. A killed run resumes where it stopped when rerun.
    """  # noqa: D301 -- click's no-rewrap marker is the backspace character, so this must not be raw


def _parse_config(args: Sequence[str]) -> Any:
    from sf_train.errors import TrainConfigError

    try:
        from transformers.hf_argparser import DataClassType
        from trl.scripts.utils import TrlParser

        from sf_train.config import ScoreDPOConfig

        parser = TrlParser(DataClassType(ScoreDPOConfig))
        if any(a in ("-h", "--help") for a in args):
            click.echo(parser.format_help())
            raise click.exceptions.Exit(0)
        _check_yaml_keys(args)
        (config,) = parser.parse_args_and_config(args=list(args))
    except TrainConfigError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise TrainConfigError(f"bad configuration: {exc}") from exc
    return config


def _check_yaml_keys(args: Sequence[str]) -> None:
    """Reject unknown keys in --config FILE (TRL's parser would silently ignore them)."""
    from dataclasses import fields

    import yaml

    from sf_train.config import ScoreDPOConfig
    from sf_train.errors import TrainConfigError

    for flag, value in zip(args, args[1:], strict=False):
        if flag != "--config":
            continue
        try:
            data = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TrainConfigError(f"cannot read config file {value}: {exc}") from exc
        if not isinstance(data, dict):
            raise TrainConfigError(f"config file {value} must be a mapping of field: value")
        known = {f.name for f in fields(ScoreDPOConfig)} | {"env"}
        unknown = sorted(set(data) - known)
        if unknown:
            import difflib

            hints = [
                f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, known, 1)) else u
                for u in unknown
            ]
            raise TrainConfigError(f"unknown field(s) in {value}: {', '.join(hints)}")


@train.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or progress lines.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@_handle_errors
def run_cmd(quiet: bool, args: tuple[str, ...]) -> None:
    """Run (or resume) the loop: --config FILE.yaml plus any --field value (--help lists them all).

    -q/--quiet: no progress bars or progress lines on stderr (the summary is still printed).
    """
    from sf_train.loop import run_loop

    config = _parse_config(args)
    result = run_loop(config, quiet=quiet)
    _print_summary(result)


def _print_summary(result: Any) -> None:
    click.echo(f"{'iter':>4}  {'mean score':>10}  {'failed':>6}  {'pairs':>6}  {'steps':>5}  {'loss':>8}")
    for m in result.iterations:
        loss = m.get("train", {}).get("train_loss")
        click.echo(
            f"{m['iteration']:>4}  {m['mean_score']:>10.3f}  {m['failed_samples']:>6}  "
            f"{m.get('sampled_pairs', 0):>6}  {m.get('train', {}).get('steps', 0):>5}  "
            f"{'-' if loss is None else f'{loss:.4f}':>8}"
        )
    for h in result.heldout:
        click.echo(f"held-out {h['name']}: mean score {h['mean_score']:.3f}")
    if result.eval is not None:
        click.echo(
            f"evaluation tasks, final adapter: mean score {result.eval['mean_score']:.3f} "
            f"over {result.eval['samples']} workflows"
        )
    cost = result.cost
    if cost:
        click.echo(
            "optimisation cost: executor ${:.4f} ({:.0f} input + {:.0f} output tokens), generator {:.1f} "
            "device-s, trainer {:.1f} device-s".format(
                cost.get("executor_usd", 0.0),
                cost.get("executor_input_tokens", 0.0),
                cost.get("executor_output_tokens", 0.0),
                cost.get("generator_device_seconds", 0.0),
                cost.get("trainer_device_seconds", 0.0),
            )
        )
    click.echo(f"run directory: {result.output_dir}")


@train.command("demo")
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path),
    default=Path("sf-train-demo"),
    show_default=True,
    help="Where the warmed-up tiny model, every stage's files and report.png go (rerun resumes).",
)
@click.option(
    "--objective",
    type=click.Choice(["score-dpo", "dpo", "sft-on-best", "ppo"]),
    default="score-dpo",
    show_default=True,
)
@click.option("--iterations", type=int, default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="cuda: generation and training on the GPU with the fast paths (fast-hf decoder, "
    "FastScoreDPOTrainer), same float32 model and settings.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or progress lines.")
@_handle_errors
@sandbox_options(exclude=("pool_size",))
def demo_cmd(
    output_dir: Path,
    objective: str,
    iterations: int,
    seed: int,
    device: str,
    quiet: bool,
    sandbox: SandboxSettings,
) -> None:
    """The whole loop on CPU in a few minutes: tiny Llama, real sandbox, scripted executor.

    Prints the mean score of sampled workflows per iteration (training tasks and held-out
    tasks) and writes OUTPUT_DIR/run/report.png. Needs the sandbox image (sf sandbox build-image).
    """
    from sf_train.demo import run_demo
    from sf_train.errors import TrainConfigError

    if iterations < 1:
        raise TrainConfigError("--iterations must be at least 1")

    def report(line: str) -> None:
        if not quiet:
            click.echo(f"  {line}", err=True)

    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise TrainConfigError("--device cuda: no CUDA GPU is visible to torch here")
    changes = sandbox.changes()
    overrides: dict[str, Any] = {"sandbox": changes} if changes else {}
    result = run_demo(
        output_dir,
        objective=objective,
        iterations=iterations,
        seed=seed,
        reporter=report,
        quiet=quiet,
        use_cpu=device == "cpu",
        sandbox_backend=sandbox.backend,
        **overrides,
    )
    _print_summary(result)
    click.echo(f"plot: {Path(result.output_dir) / 'report.png'}")


@train.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="PNG path (default RUN_DIR/report.png)."
)
@_handle_errors
def report_cmd(run_dir: Path, out: Path | None) -> None:
    """Plot solve rate (mean score) and training loss per iteration of RUN_DIR; print the table."""
    from sf_train.plots import load_run, plot_run

    run = load_run(run_dir)
    click.echo(
        f"{'iter':>4}  {'mean score':>10}  {'pairs':>6}  {'loss':>8}  {'executor $':>10}  {'train dev-s':>11}"
    )
    for m in run["iterations"]:
        loss = m.get("train", {}).get("train_loss")
        cost = m.get("cost", {})
        click.echo(
            f"{m['iteration']:>4}  {m['mean_score']:>10.3f}  {m.get('sampled_pairs', 0):>6}  "
            f"{'-' if loss is None else f'{loss:.4f}':>8}  {cost.get('executor_usd', 0.0):>10.4f}  "
            f"{cost.get('trainer_device_seconds', 0.0):>11.1f}"
        )
    for i, score in run["heldout"]:
        click.echo(
            f"held-out before iteration {i}: {score:.3f}"
            if i < len(run["iterations"])
            else f"held-out after the last iteration: {score:.3f}"
        )
    if run["eval"] is not None:
        click.echo(f"evaluation tasks, final adapter: {run['eval']['mean_score']:.3f}")
    png = plot_run(run_dir, out)
    click.echo(f"plot: {png}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sf train`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    return run_group(train, argv, "sf train")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
