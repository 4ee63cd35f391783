r"""sf-sandbox: run untrusted code in hardened, warm Docker containers.

from sf_sandbox import Sandbox, Job, Limits

with Sandbox(limits=Limits(timeout=5)) as sb:
    result = sb.run(Job(source="print(6 * 7)"))
    assert result.ok and result.stdout == "42\n"

The names below load on first use (a module ``__getattr__``), so importing ``sf_sandbox`` or one
of its light modules (``errors``, ``_cli_errors``) does not import the docker SDK or the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_sandbox.errors import (
        EngineUnavailableError,
        ImageBuildError,
        ImageNotFoundError,
        MissingDependencyError,
        SandboxConfigError,
        SandboxError,
        ScoreFlowError,
        SupervisorError,
        UserError,
    )
    from sf_sandbox.job import Job
    from sf_sandbox.limits import Limits
    from sf_sandbox.pool import Pool
    from sf_sandbox.preload import Preload
    from sf_sandbox.result import Result, Status
    from sf_sandbox.sandbox import Sandbox
    from sf_sandbox.settings import SandboxSettings

DEFAULT_IMAGE = "sf-sandbox:py3"

_LAZY = {
    "EngineUnavailableError": "sf_sandbox.errors",
    "ImageBuildError": "sf_sandbox.errors",
    "ImageNotFoundError": "sf_sandbox.errors",
    "MissingDependencyError": "sf_sandbox.errors",
    "SandboxConfigError": "sf_sandbox.errors",
    "SandboxError": "sf_sandbox.errors",
    "ScoreFlowError": "sf_sandbox.errors",
    "SupervisorError": "sf_sandbox.errors",
    "UserError": "sf_sandbox.errors",
    "Job": "sf_sandbox.job",
    "Limits": "sf_sandbox.limits",
    "Pool": "sf_sandbox.pool",
    "Preload": "sf_sandbox.preload",
    "Result": "sf_sandbox.result",
    "Status": "sf_sandbox.result",
    "Sandbox": "sf_sandbox.sandbox",
    "SandboxSettings": "sf_sandbox.settings",
}

__all__ = [
    "DEFAULT_IMAGE",
    "EngineUnavailableError",
    "ImageBuildError",
    "ImageNotFoundError",
    "Job",
    "Limits",
    "MissingDependencyError",
    "Pool",
    "Preload",
    "Result",
    "Sandbox",
    "SandboxConfigError",
    "SandboxError",
    "SandboxSettings",
    "ScoreFlowError",
    "Status",
    "SupervisorError",
    "UserError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sf_sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
