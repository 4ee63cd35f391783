"""Exceptions raised by sf-sandbox.

Every error a user can cause or fix is a :class:`SandboxError` whose message says what to do.
The CLI prints such errors as one line (exit code 2 for configuration errors, 1 otherwise).
A job that misbehaves never raises: it gets a :class:`~sf_sandbox.Result` with a status.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of every sf-sandbox error."""


class SandboxConfigError(SandboxError):
    """The caller asked for something invalid (bad limits, bad job, unknown backend)."""


class EngineUnavailableError(SandboxError):
    """No Docker engine answers at the configured address."""


class ImageNotFoundError(SandboxError):
    """The sandbox image is not present in the local engine."""


class ImageBuildError(SandboxError):
    """Building the default image failed."""


class SupervisorError(SandboxError):
    """The in-container supervisor broke its protocol or stopped answering."""
