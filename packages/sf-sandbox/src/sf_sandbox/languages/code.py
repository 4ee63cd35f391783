"""A program in some language (:class:`CodeRequest`) and what came of it (:class:`CodeResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.result import Result, Status

__all__ = ["REPORT", "CodeRequest", "CodeResult", "Phase"]

REPORT = ".sf-phases.json"
"""Where the driver leaves its report, relative to the work dir (reserved: jobs cannot use it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRequest:
    """One program in some language, with its input files and the files to fetch back."""

    code: str
    """The program's source."""
    language: str = "python"
    """Any name :func:`get_language` knows."""
    stdin: bytes = b""
    """Bytes fed to the program (the run phase); the compiler reads /dev/null."""
    compile_timeout: float = 10.0
    """Wall-clock seconds for the compile phase (compiled languages only)."""
    run_timeout: float = 10.0
    """Wall-clock seconds for the run phase."""
    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    """Files to create in the work dir before compiling, relative path → content."""
    fetch_files: tuple[str, ...] = ()
    """Relative paths to return after the run (missing ones are absent)."""
    args: tuple[str, ...] = ()
    """Extra command-line arguments for the program."""

    def __post_init__(self) -> None:
        if isinstance(self.stdin, str):
            object.__setattr__(self, "stdin", self.stdin.encode())
        if not (self.compile_timeout > 0 and self.run_timeout > 0):
            raise SandboxConfigError("compile_timeout and run_timeout must be > 0 seconds")
        object.__setattr__(self, "fetch_files", tuple(self.fetch_files))
        object.__setattr__(self, "args", tuple(self.args))
        if REPORT in self.files or REPORT in self.fetch_files:
            raise SandboxConfigError(f"{REPORT!r} is reserved for the sandbox's own use")


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """What one phase (compile or run) did."""

    status: Status
    """``ok``, ``compile_error`` (compile phase only), ``error``, ``timeout``, ``memory``,
    ``output_limit`` or ``sandbox_error``."""
    exit_code: int | None = None
    """Exit status, or the negative signal number when killed; None when it never started."""
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    truncated: bool = False
    """Output passed its cap (the compile phase keeps the start of its output)."""
    duration: float = 0.0
    """Seconds the phase took, measured inside the sandbox."""
    error: str | None = None

    @property
    def stdout(self) -> str:
        """The phase's stdout decoded as UTF-8, invalid bytes replaced."""
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        """The phase's stderr decoded as UTF-8, invalid bytes replaced."""
        return self.stderr_bytes.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeResult:
    """The outcome of a :class:`CodeRequest`.

    ``status`` is the compile phase's when it did not succeed (``compile_error``, ``timeout``,
    ``memory``, …), else the run phase's. ``run`` is None when the program never ran.
    """

    status: Status
    language: str
    compile: Phase | None = None
    """None for interpreted languages."""
    run: Phase | None = None
    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    """Fetched files that existed after the run."""
    error: str | None = None
    """Why the status is not ``ok``, when known."""
    result: Result | None = None
    """The sandbox job's own :class:`~sf_sandbox.Result` (both phases together)."""

    @property
    def ok(self) -> bool:
        """True when the status is ``ok``."""
        return self.status is Status.OK
