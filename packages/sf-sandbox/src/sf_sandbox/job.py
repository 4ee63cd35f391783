"""What to run: a :class:`Job`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.limits import Limits

WORK_DIR = "/work"
"""The job's working directory inside the sandbox (a fresh tmpfs, wiped after every job)."""


def _check_rel_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SandboxConfigError(
            f"file path {path!r} must be relative to the work dir, without '..', '.' or empty parts"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One program to run in the sandbox.

    Exactly one of ``source`` and ``argv`` is given. ``source`` is Python code run as
    ``__main__`` by a pre-started interpreter (fast: no interpreter start-up per job).
    ``argv`` runs any command found in the image (``["python3", "x.py"]``, ``["sh", "-c", …]``).

    Files in ``files`` are written under the work dir before the job starts; paths in
    ``collect`` are read back after it ends (missing ones are simply absent in the result).
    """

    source: str | None = None
    """Python source to run as ``__main__`` (written to ``/work/main.py`` as well)."""
    argv: tuple[str, ...] | None = None
    """Command to execute instead of ``source``."""
    stdin: bytes = b""
    """Bytes fed to the job's standard input (then end of file)."""
    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    """Files to create in the work dir, relative path → content."""
    collect: tuple[str, ...] = ()
    """Relative paths of files to return in ``Result.files``."""
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    """Extra environment variables (the job never sees the host's environment)."""
    args: tuple[str, ...] = ()
    """``sys.argv[1:]`` for a ``source`` job."""
    limits: Limits | None = None
    """Per-job limits (timeout, output and file sizes, host calls); ``None`` uses the sandbox's.
    Memory, CPUs and pids belong to the pool's containers and are always the sandbox's."""
    id: str | None = None
    """Caller's label for the job, echoed in the result."""

    def __post_init__(self) -> None:
        if (self.source is None) == (self.argv is None):
            raise SandboxConfigError("a Job needs exactly one of source= or argv=")
        if self.argv is not None:
            if isinstance(self.argv, str) or not self.argv:
                raise SandboxConfigError(
                    "argv must be a non-empty sequence of strings, e.g. ('python3', 'x.py')"
                )
            object.__setattr__(self, "argv", tuple(self.argv))
        if isinstance(self.stdin, str):
            object.__setattr__(self, "stdin", self.stdin.encode())
        files = {}
        for path, content in dict(self.files).items():
            _check_rel_path(path)
            files[path] = content.encode() if isinstance(content, str) else bytes(content)
        object.__setattr__(self, "files", files)
        for path in self.collect:
            _check_rel_path(path)
        object.__setattr__(self, "collect", tuple(self.collect))
        object.__setattr__(self, "args", tuple(self.args))
        for key, value in dict(self.env).items():
            # the annotations bind type-checked callers only: check what the others pass
            if not isinstance(key, str) or not isinstance(value, str) or "=" in key or not key:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise SandboxConfigError(
                    f"env entries must be str → str without '=' in the name, got {key!r}"
                )
        object.__setattr__(self, "env", dict(self.env))

    @property
    def input_bytes(self) -> int:
        """Total size of the source, stdin and input files."""
        return len(self.source or "") + len(self.stdin) + sum(len(c) for c in self.files.values())
