"""Exceptions raised by sf-sandbox, and the three roots every sf package's errors share.

Every error a user can cause or fix is a :class:`SandboxError` whose message says what to do.
A job that misbehaves never raises: it gets a :class:`~sf_sandbox.Result` with a status.

sf-sandbox is the root of the dependency chain, so it also owns the roots of the whole family.
Each package's base error (``SandboxError``, ``WorkflowError``, ``BenchError``, ``TrainError``)
derives from :class:`ScoreFlowError`; its user-mistake errors (``…ConfigError``, ``DataError``)
also derive from :class:`UserError`; an absent optional extra is the one
:class:`MissingDependencyError`. The CLIs decide what to print from these classes alone
(``sf_sandbox._cli_errors``): a :class:`UserError` is one ``error:`` line and exit 2, any other
:class:`ScoreFlowError` one line and exit 1, anything else keeps its traceback.
"""

from __future__ import annotations


class ScoreFlowError(Exception):
    """Base class of every error an sf package raises on purpose (printed as one line, exit 1)."""


class UserError(ScoreFlowError):
    """A mistake the user can fix (bad option, file or config): one ``error:`` line, exit 2."""


class MissingDependencyError(UserError):
    """An optional dependency (an extra such as ``sf-train[vllm]``) is not installed.

    The message gives the install line.
    """


class SandboxError(ScoreFlowError):
    """Base class of every sf-sandbox error."""


class SandboxConfigError(SandboxError, UserError):
    """The caller asked for something invalid (bad limits, bad job, unknown backend)."""


class EngineUnavailableError(SandboxError):
    """No Docker engine answers at the configured address."""


class ImageNotFoundError(SandboxError):
    """The sandbox image is not present in the local engine."""


class ImageBuildError(SandboxError):
    """Building the default image failed."""


class SupervisorError(SandboxError):
    """The in-container supervisor broke its protocol or stopped answering."""
