"""Exit codes for the ``python -m sf_train.<module>`` entry points (what ``accelerate launch`` runs)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from sf_sandbox._cli_errors import exit_code_for

__all__ = ["run_entry_point"]


def run_entry_point(command: click.Command, argv: Sequence[str] | None, prog: str) -> int:
    """Run ``command``; return 0 (ok), 1 (an sf error), 2 (usage or config error), 130 (abort).

    Errors of ours print one ``<prog>: error: …`` line on stderr, never a traceback.
    """
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except Exception as exc:
        code = exit_code_for(exc)  # the house rule, sf_sandbox._cli_errors
        if code is None:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return code
    return 0
