"""What every ``sf bench`` command shares: click's context settings and the error handler."""

from __future__ import annotations

from sf_sandbox._cli_errors import handle_errors

__all__ = ["CONTEXT", "handle_bench_errors"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
"""``-h``/``--help`` and the help's width, for the group and each command."""

handle_bench_errors = handle_errors(
    "interrupted: finished results are saved; rerun the same command to resume"
)
"""Decorator: an sf error prints one ``error: …`` line (exit 2, or 1 for a run failure), Ctrl-C 130."""
