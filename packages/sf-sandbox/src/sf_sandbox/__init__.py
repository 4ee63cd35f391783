"""sf-sandbox: run untrusted code in hardened, warm Docker containers.

from sf_sandbox import Sandbox, Job, Limits

with Sandbox(limits=Limits(timeout=5)) as sb:
    result = sb.run(Job(source="print(6 * 7)"))
    assert result.ok and result.stdout == "42\\n"
"""

from sf_sandbox.errors import (
    EngineUnavailableError,
    ImageBuildError,
    ImageNotFoundError,
    SandboxConfigError,
    SandboxError,
    SupervisorError,
)
from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.preload import Preload
from sf_sandbox.result import Result, Status
from sf_sandbox.sandbox import Sandbox

DEFAULT_IMAGE = "sf-sandbox:py3"

__all__ = [
    "DEFAULT_IMAGE",
    "EngineUnavailableError",
    "ImageBuildError",
    "ImageNotFoundError",
    "Job",
    "Limits",
    "Preload",
    "Result",
    "Sandbox",
    "SandboxConfigError",
    "SandboxError",
    "Status",
    "SupervisorError",
]
