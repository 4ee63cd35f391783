"""What came back: :class:`Status` and :class:`Result`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How a job ended. Exactly one applies; they are checked in this order of precedence."""

    OK = "ok"
    """The program exited with code 0."""
    ERROR = "error"
    """The program exited with a non-zero code or was killed by a signal it caused itself."""
    TIMEOUT = "timeout"
    """The wall-clock limit passed; the whole process tree was killed."""
    MEMORY = "memory"
    """The cgroup's OOM killer ended the job (read from the kernel's counter, never from the job's
    output: a Python ``MemoryError`` the job raises is ``error``)."""
    OUTPUT_LIMIT = "output_limit"
    """stdout or stderr passed its cap; the whole process tree was killed at once."""
    SANDBOX_ERROR = "sandbox_error"
    """The sandbox itself failed (engine gone, container died, job could not be set up). Only our
    failures: nothing a job's code does yields it, so a harness may safely redo these."""
    COMPILE_ERROR = "compile_error"
    """The compiler rejected the program (compiled languages, :mod:`sf_sandbox.languages`); it never ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """The outcome of one :class:`~sf_sandbox.Job`.

    ``stdout``/``stderr`` are decoded as UTF-8 with invalid bytes replaced by U+FFFD; when that
    happened ``stdout_lossy``/``stderr_lossy`` is set and the exact bytes are in ``stdout_bytes``
    / ``stderr_bytes`` (always present). ``exit_code`` is the program's exit status; when the
    program was killed by a signal it is the negative signal number (``-9`` after a timeout,
    output-limit or memory kill), and ``None`` only when the job never started.
    """

    status: Status
    exit_code: int | None = None
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    """Seconds from the job's start to its end, measured inside the sandbox."""
    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    """Collected files that existed after the job, relative path → content."""
    error: str | None = None
    """Human-readable reason for a non-``ok`` status, when one is known."""
    id: str | None = None
    """The job's ``id``."""
    host_data: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Facts the host side attached after the job ended, JSON values by key; never written by the
    job itself. Empty from a local :class:`~sf_sandbox.Sandbox`; a :class:`~sf_sandbox.ray_pool.RayPool`
    node's :class:`~sf_sandbox.ray_pool.NodeHost` fills it (for example, what the job's host calls
    cost on that node)."""

    @property
    def ok(self) -> bool:
        """True when the status is ``ok``."""
        return self.status is Status.OK

    @property
    def stdout(self) -> str:
        """The job's stdout decoded as UTF-8, invalid bytes replaced."""
        return self.stdout_bytes.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        """The job's stderr decoded as UTF-8, invalid bytes replaced."""
        return self.stderr_bytes.decode("utf-8", errors="replace")

    @property
    def stdout_lossy(self) -> bool:
        """True when stdout was not valid UTF-8."""
        return not _is_utf8(self.stdout_bytes)

    @property
    def stderr_lossy(self) -> bool:
        """True when stderr was not valid UTF-8."""
        return not _is_utf8(self.stderr_bytes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: text fields decoded (see class doc), files base64-encoded."""
        import base64

        data = asdict(self)
        data.pop("stdout_bytes")
        data.pop("stderr_bytes")
        data["status"] = str(self.status)
        data["stdout"] = self.stdout
        data["stderr"] = self.stderr
        data["stdout_lossy"] = self.stdout_lossy
        data["stderr_lossy"] = self.stderr_lossy
        if self.stdout_lossy:
            data["stdout_base64"] = base64.b64encode(self.stdout_bytes).decode()
        if self.stderr_lossy:
            data["stderr_base64"] = base64.b64encode(self.stderr_bytes).decode()
        data["files"] = {k: base64.b64encode(v).decode() for k, v in self.files.items()}
        if not self.host_data:
            data.pop("host_data")
        return data


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
