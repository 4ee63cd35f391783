"""The ``sf bench list`` and ``sf bench aflow-convert`` commands.

``sf bench list`` prints datasets, splits and sizes; ``sf bench aflow-convert`` prints an AFlow
graph as the workflow ``--generator aflow:PATH`` runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from sf_bench._cli_common import CONTEXT, handle_bench_errors

__all__ = ["aflow_convert_cmd", "list_cmd"]


@click.command("aflow-convert", context_settings=CONTEXT)
@click.argument("path", type=click.Path(path_type=Path), metavar="PATH")
@click.option(
    "--dataset",
    required=True,
    help="Dataset the graph will run on: humaneval, mbpp (code), gsm8k, math, drop, hotpotqa.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the workflow to this file [default: print it].",
)
@handle_bench_errors
def aflow_convert_cmd(path: Path, dataset: str, out: Path | None) -> None:
    """Print the workflow that --generator aflow:PATH runs for an AFlow graph.

    PATH is an AFlow graph.py (its prompt.py beside it), its round_<N> folder, or a workspace
    folder with <DATASET>/workflows/round_<N>/ (the highest round is taken). The result is one
    self-contained workflow in ScoreFlow's shape: AFlow's operator interface on sf-workflows'
    operators, the prompts, the graph, and a class Workflow calling it. Unsupported operators or
    imports are one error line naming them (see sf-bench's README, "AFlow's workflows").

    \b
    Example:
      sf bench aflow-convert AFlow/workspace/MATH/workflows/round_1 --dataset math
    """  # noqa: D301 - click needs the \b escape (no-rewrap marker)
    from sf_bench import registry
    from sf_bench.errors import BenchError
    from sf_bench.systems.aflow import convert, find_graph

    registry.get(dataset)  # an unknown name: one line listing the datasets
    source = convert(find_graph(path, dataset), dataset)
    if out is None:
        click.echo(source, nl=False)
        return
    try:
        out.write_text(source, encoding="utf-8")
    except OSError as e:
        raise BenchError(f"cannot write {out}: {e.strerror or e}") from e
    click.echo(f"wrote {out}", err=True)


@click.command("list", context_settings=CONTEXT)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with official files, to count the full splits too.",
)
@handle_bench_errors
def list_cmd(data_dir: Path | None) -> None:
    """List datasets, their splits and sizes (official splits need --data-dir or SF_BENCH_DATA_DIR).

    \b
    Example:
      sf bench list --data-dir ../shared/data
    """  # noqa: D301 - click needs the \b escape (no-rewrap marker)
    from sf_bench import registry
    from sf_bench.datasets import load, splits
    from sf_bench.errors import BenchConfigError, DataError

    rows: list[tuple[str, str]] = []
    for name in registry.names():
        cells: list[str] = []
        for split in splits(name):
            try:
                size = str(
                    len(load(name, split, data_dir=data_dir if split not in ("validate", "test") else None))
                )
            except BenchConfigError:
                size = "needs --data-dir"
            except DataError:
                size = "not found"
            cells.append(f"{split}: {size}")
        rows.append((name, "  ".join(cells)))
    width = max(len(n) for n, _ in rows)
    click.echo("\n".join(f"{n:<{width}}  {c}" for n, c in rows))
