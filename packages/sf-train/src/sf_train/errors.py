"""Exceptions raised by sf-train.

Every error a user can cause or fix is a :class:`TrainError` whose message says what to do.
The CLI prints such errors as one line: exit code 2 for :class:`TrainConfigError` (and its
subclasses, and the shared :class:`MissingDependencyError`), 1 for the others.
"""

from __future__ import annotations

from sf_sandbox.errors import MissingDependencyError, ScoreFlowError, UserError

__all__ = ["MissingDependencyError", "MissingWeightsError", "StageError", "TrainConfigError", "TrainError"]


class TrainError(ScoreFlowError):
    """Base class of every sf-train error."""


class TrainConfigError(TrainError, UserError):
    """A user mistake: unknown field or objective, bad value, unreadable config file."""


class MissingWeightsError(TrainConfigError):
    """Model weights or tokenizer files were not found locally (nothing is downloaded)."""


class StageError(TrainError):
    """A loop stage failed in a way that cannot be recorded as a scored failure."""
