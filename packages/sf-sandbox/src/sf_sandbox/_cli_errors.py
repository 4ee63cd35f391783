"""How every ``sf`` command turns errors into exit codes: one decorator, one runner.

The rule (STYLE.md §5), decided by class alone (``sf_sandbox.errors``):

* :class:`~sf_sandbox.errors.UserError` (every ``…ConfigError``, ``DataError``, and the shared
  ``MissingDependencyError``): one ``error: …`` line, exit 2;
* any other :class:`~sf_sandbox.errors.ScoreFlowError`: one ``error: …`` line, exit 1;
* Ctrl-C: a line saying what was kept, exit 130;
* anything else is a bug and keeps its traceback.

This module imports only click and ``sf_sandbox.errors``, so every package's CLI can use it
without loading the sandbox (``import sf_bench`` and ``sf --help`` stay light).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from sf_sandbox.errors import ScoreFlowError, UserError

__all__ = ["exit_code_for", "handle_errors", "run_group"]

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: BaseException) -> int | None:
    """2 for a user mistake, 1 for any other sf error, ``None`` for a foreign exception (a bug)."""
    if isinstance(exc, UserError):
        return 2
    if isinstance(exc, ScoreFlowError):
        return 1
    return None


def handle_errors(interrupted: str = "interrupted") -> Callable[[F], F]:
    """Decorate a click command so sf errors print one ``error:`` line and exit with their code.

    Args:
        interrupted: What to print on Ctrl-C (say what was saved and how to resume).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                click.echo(f"\n{interrupted}", err=True)
                raise click.exceptions.Exit(130) from None
            except Exception as exc:
                code = exit_code_for(exc)
                if code is None:
                    raise
                click.echo(f"error: {exc}", err=True)
                raise click.exceptions.Exit(code) from None

        return wrapper  # type: ignore[return-value]

    return decorate


def run_group(group: click.Command, argv: Sequence[str] | None, prog_name: str) -> int:
    """Run a click command as a program and return its exit code instead of exiting.

    0 ok (or the command's own int), the documented codes above for errors, click's own code for
    usage errors, 130 on Ctrl-C; ``SystemExit`` from an argparse-based parser (TRL's) keeps its code.
    """
    try:
        rv = group.main(
            args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    except Exception as exc:
        code = exit_code_for(exc)
        if code is None:
            raise
        click.echo(f"error: {exc}", err=True)
        return code
    return rv if isinstance(rv, int) else 0
