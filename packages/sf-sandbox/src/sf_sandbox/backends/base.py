"""The backend interface: something that starts supervisors and gives a byte channel to each."""

from __future__ import annotations

import abc
from collections.abc import Callable

from sf_sandbox.limits import Limits


class Connection(abc.ABC):
    """A running supervisor: a byte channel to it and a way to kill it.

    The backend's reader thread calls ``on_data(bytes)`` with protocol bytes and ``on_close()``
    once at end of stream. ``kill`` and ``close`` must be safe to call at any time, from any
    thread, more than once, and must not block on the reader (it keeps draining meanwhile).
    """

    label: str = ""
    """A short name for messages (container id, pid)."""

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """Write protocol bytes to the supervisor.

        Raises:
            OSError: the channel is closed.
        """

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the supervisor and everything under it, now."""

    @abc.abstractmethod
    def close(self) -> None:
        """Kill and release every resource (the container is removed)."""

    def diagnostics(self) -> str:
        """What the supervisor printed on stderr, for error messages."""
        return ""


class Backend(abc.ABC):
    """Starts supervisors."""

    name: str = "base"
    in_container: bool = True
    """False for the unsafe local backend (no uid switch, no cgroup)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Fail fast with an actionable error if the backend cannot work.

        Raises:
            EngineUnavailableError: no engine answers.
            ImageNotFoundError: the image is absent.
        """

    @abc.abstractmethod
    def start(
        self, limits: Limits, on_data: Callable[[bytes], None], on_close: Callable[[], None]
    ) -> tuple[Connection, dict[str, object]]:
        """Start one supervisor; return its connection and the supervisor's init config.

        Raises:
            SandboxError: it could not be started.
        """

    def close(self) -> None:  # noqa: B027  (an optional hook, not an abstract method)
        """Release backend-wide resources.

        The default does nothing, for backends that hold none (``LocalUnsafeBackend``); override it
        when there is something to release (``DockerBackend`` closes its engine client).
        """
