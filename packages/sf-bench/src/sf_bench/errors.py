"""Exceptions raised by sf-bench. Messages say what the user can do about them."""

from __future__ import annotations

from sf_sandbox.errors import MissingDependencyError, ScoreFlowError, UserError

__all__ = ["BenchConfigError", "BenchError", "DataError", "MissingDependencyError"]


class BenchError(ScoreFlowError):
    """Base class of every sf-bench error."""


class BenchConfigError(BenchError, UserError):
    """A user mistake: unknown dataset or split, bad option, unreadable solver spec."""


class DataError(BenchError, UserError):
    """A data file is missing or malformed (the message names the file and line)."""
