"""Resource limits for one job."""

from __future__ import annotations

from dataclasses import dataclass

from sf_sandbox.errors import SandboxConfigError

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Limits applied to every job; the defaults are safe for LLM-written code.

    The memory, CPU and pids limits are enforced by the container's cgroup and so apply to
    the whole pool container (one job runs in a container at a time). The timeout and output
    caps are enforced inside the container by the supervisor, so they hold even when the
    host process is slow or gone.
    """

    timeout: float = 10.0
    """Wall-clock seconds before the job's whole process tree is killed (status ``timeout``)."""
    memory_mb: int = 512
    """Memory (RAM, no swap) for the container in MiB; exceeding it ends the job as ``memory``."""
    cpus: float = 1.0
    """CPU share of the container (``1.0`` = one core)."""
    pids: int = 128
    """Most processes and threads the job may have alive at once."""
    output_bytes: int = 1 * MiB
    """Cap for stdout and for stderr, each. Past it the job is killed (status ``output_limit``)."""
    file_size_mb: int = 64
    """Largest file the job may write (RLIMIT_FSIZE) and size of the work directory tmpfs."""
    files_out_bytes: int = 8 * MiB
    """Cap on the total size of the files collected after the job."""
    host_calls: int = 10_000
    """Most host calls one job may make; further calls fail inside the job."""
    host_calls_in_flight: int = 8
    """Most host calls of one job with the host at once, sync and async alike. Further calls wait
    inside the job (the supervisor reads them as replies are read), so one job cannot hold every
    host thread; jobs take turns for the shared threads."""
    host_call_bytes: int = 32 * MiB
    """Budget for the request bytes of one job's calls in flight; a call past it fails inside the
    job with ``HostCallError`` saying so (the host never holds more of a job's arguments)."""

    def __post_init__(self) -> None:
        checks = {
            "timeout": self.timeout > 0,
            "memory_mb": self.memory_mb >= 16,
            "cpus": self.cpus > 0,
            "pids": self.pids >= 4,
            "output_bytes": self.output_bytes >= 1,
            "file_size_mb": self.file_size_mb >= 1,
            "files_out_bytes": self.files_out_bytes >= 0,
            "host_calls": self.host_calls >= 0,
            "host_calls_in_flight": self.host_calls_in_flight >= 1,
            "host_call_bytes": self.host_call_bytes >= 1024,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise SandboxConfigError(
                f"invalid limits: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)} "
                "(timeout > 0, memory_mb >= 16, cpus > 0, pids >= 4, sizes >= 1, host_calls_in_flight >= 1, "
                "host_call_bytes >= 1024)"
            )
