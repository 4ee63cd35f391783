"""The service's settings: :class:`ServeConfig`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.limits import Limits, MiB


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Everything ``sf sandbox serve`` takes; the defaults are safe on a shared machine.

    The pool runs ``pool_size`` jobs at once; up to ``max_queue`` more wait for a container.
    A request that would pass ``pool_size + max_queue`` jobs in flight is refused with 429 at
    once (never queued without bound).
    """

    host: str = "127.0.0.1"
    """Address to bind. Loopback by default; any other address needs ``token`` (or ``insecure``)."""
    port: int = 8080
    """TCP port (0 picks a free one; the chosen port is printed)."""
    pool_size: int = 2
    """Warm containers, i.e. jobs that run at once."""
    max_queue: int = 64
    """Jobs that may wait for a free container; past it requests get 429."""
    image: str | None = None
    """Sandbox image (default ``sf-sandbox:py3``; ``sf-sandbox:all`` has every language)."""
    runtime: str | None = None
    """Docker runtime for the containers (``runsc`` for gVisor); None = the engine's default."""
    limits: Limits = field(default_factory=Limits)
    """Limits of every job; a request may lower the timeout and output caps, never raise memory/cpus/pids."""
    max_timeout: float = 60.0
    """Largest ``run_timeout``/``compile_timeout``/``timeout`` a request may ask for, in seconds."""
    max_body_bytes: int = 16 * MiB
    """Largest request body; larger ones get 413 before they are read in full."""
    max_batch: int = 256
    """Most jobs in one batch request."""
    token: str | None = None
    """Bearer token every job and metrics request must carry; None = no auth (loopback only)."""
    insecure: bool = False
    """Allow a non-loopback ``host`` without a token (the caller's explicit choice)."""
    drain_timeout: float = 30.0
    """Seconds a graceful shutdown waits for in-flight jobs before it kills them."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port} is not in 0..65535")
        if self.pool_size < 1:
            problems.append("pool_size must be >= 1")
        if self.max_queue < 0:
            problems.append("max_queue must be >= 0")
        if self.max_timeout <= 0:
            problems.append("max_timeout must be > 0")
        if self.max_body_bytes < 1024:
            problems.append("max_body_bytes must be >= 1024")
        if self.max_batch < 1:
            problems.append("max_batch must be >= 1")
        if self.drain_timeout < 0:
            problems.append("drain_timeout must be >= 0")
        if self.token is not None and not self.token.strip():
            problems.append("the token is empty")
        if problems:
            raise SandboxConfigError("invalid server settings: " + "; ".join(problems))
        if not is_loopback(self.host) and self.token is None and not self.insecure:
            raise SandboxConfigError(
                f"--host {self.host} exposes the sandbox beyond this machine: set a token "
                "(--token or SF_SANDBOX_SERVE_TOKEN), or pass --insecure-no-token if the network is trusted"
            )

    @property
    def capacity(self) -> int:
        """Most jobs in flight (running + waiting)."""
        return self.pool_size + self.max_queue


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
