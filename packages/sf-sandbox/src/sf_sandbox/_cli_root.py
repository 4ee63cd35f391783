"""The ``sf`` command: a click group whose subcommands come from the ``sf.commands`` entry points.

Each installed sf package registers one group (``sandbox``, ``bench``, ``workflows``, ``train``);
it is imported only when invoked, so ``sf --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

import click

from sf_sandbox._cli_errors import run_group

ENTRY_POINT_GROUP = "sf.commands"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


class LazyGroup(click.Group):
    """Lists entry-point subcommands without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_entry_points()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        ep = _entry_points().get(cmd_name)
        if ep is None:
            return None
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plugin must not break `sf`
            click.echo(f"warning: cannot load `sf {cmd_name}` from {ep.value}: {exc}", err=True)
            return None
        return loaded if isinstance(loaded, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        eps = _entry_points()
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            ep = eps.get(name)
            dist = ep.dist.name if ep is not None and ep.dist else ""
            rows.append((name, f"commands of {dist}" if dist else ""))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "SF"}
)
@click.version_option(package_name="sf-sandbox", prog_name="sf")
def cli() -> None:
    """ScoreFlow tools: sandbox, bench, workflows, train.

    \b
    Examples:
      sf sandbox build-image          build the default sandbox image (offline, cached)
      sf sandbox run prog.py --json   run a program in the sandbox
      sf bench run humaneval          score a solver on a benchmark (with sf-bench installed)
    Each subcommand has its own --help.
    """  # noqa: D301 - "\b" is the backspace click reads as "do not rewrap"; r""" would break it


def main(argv: list[str] | None = None) -> int:
    """Run ``sf``; return the exit code (0 ok, 1 failure, 2 usage/config error, 130 interrupted)."""
    return run_group(cli, argv, "sf")


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
