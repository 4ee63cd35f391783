"""``sf bench …`` (also ``python -m sf_bench``): run, report, list.

Exit codes: 0 ok; 1 run failure (sandbox unavailable, results not writable); 2 usage or
configuration error (unknown dataset, bad option, malformed data or answers file); 3 some
samples were left unscored by our failures (the LLM endpoint or the sandbox failed past the
retries: rerun the same command to redo them); 130 interrupted (Ctrl-C; finished results are on
disk, rerun to resume).
Every sf error prints one ``error: …`` line, never a traceback.

One module per command (``_cli_run``, ``_cli_report``, ``_cli_datasets``); this one is the group.
"""

from __future__ import annotations

import click

from sf_bench._cli_common import CONTEXT
from sf_bench._cli_datasets import aflow_convert_cmd, list_cmd
from sf_bench._cli_report import report_cmd
from sf_bench._cli_run import run_cmd
from sf_sandbox._cli_errors import run_group

__all__ = ["bench", "main"]


@click.group(context_settings={**CONTEXT, "auto_envvar_prefix": "SF_BENCH"})
def bench() -> None:
    """Score a solver or workflow generator on HumanEval, MBPP, GSM8K, MATH, DROP and HotpotQA.

    \b
    Examples:
      sf bench list                                       datasets, splits and sizes
      sf bench run humaneval --solver canonical           reference answers, through the sandbox
      sf bench run gsm8k math --split validate --limit 20 --solver mypkg.solve:solve
      sf bench run humaneval --solver file:samples.jsonl --k 10      pass@1 and pass@10
      sf bench run drop hotpotqa --solver ./my_solver.py:solve --repeats 3 --out runs/mine
      sf bench run gsm8k --generator llm --generator-model M --executor-model M --base-url URL --k 8
      sf bench report runs/canonical-test runs/mine       compare runs (table + PNG plot)

    Code answers are tested in sf-sandbox (build its image once: sf sandbox build-image).
    Results are JSON lines in --out; rerunning the same command resumes where it stopped.
    """  # noqa: D301 - click needs the \b escape (no-rewrap marker)


for _command in (run_cmd, report_cmd, aflow_convert_cmd, list_cmd):
    bench.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run ``sf bench`` as a program; return the exit code (see the module docstring)."""
    return run_group(bench, argv, "sf bench")
