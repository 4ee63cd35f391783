"""Exceptions raised by sf-train.

Every error a user can cause or fix is a :class:`TrainError` whose message says what to do.
The CLI prints such errors as one line: exit code 2 for :class:`TrainConfigError` (and its
subclasses), 1 for the others.
"""

from __future__ import annotations


class TrainError(Exception):
    """Base class of every sf-train error."""


class TrainConfigError(TrainError):
    """A user mistake: unknown field or objective, bad value, unreadable config file."""


class MissingDependencyError(TrainConfigError):
    """An optional dependency (an extra such as ``sf-train[vllm]``) is not installed."""


class MissingWeightsError(TrainConfigError):
    """Model weights or tokenizer files were not found locally (nothing is downloaded)."""


class StageError(TrainError):
    """A loop stage failed in a way that cannot be recorded as a scored failure."""
