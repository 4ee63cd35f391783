"""The per-node half of :class:`~sf_sandbox.ray_pool.RayPool`: the Ray actor that owns one node's pool.

:class:`NodePool` is placed on every node by ``RayPool.start``; :class:`NodeHost` is what a
``RayPool(node_host=factory)`` factory builds on the node. Ray is imported only when needed
(:func:`require_ray`). Public names are re-exported by :mod:`sf_sandbox.ray_pool`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from sf_sandbox.errors import MissingDependencyError, SandboxConfigError, SandboxError
from sf_sandbox.job import Job
from sf_sandbox.result import Result, Status
from sf_sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from sf_sandbox.hostcalls import HostFunction

__all__ = ["INSTALL_HINT", "NodeHost", "NodeHostFactory", "NodePool", "require_ray"]


INSTALL_HINT = 'pip install "sf-sandbox[ray]"'


def require_ray() -> Any:
    """Import and return the ``ray`` module.

    Raises:
        MissingDependencyError: Ray is not installed (the message says ``pip install "sf-sandbox[ray]"``).
    """
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"running sandboxes on a Ray cluster needs Ray: {INSTALL_HINT} (on every node)"
        ) from exc
    return ray


# ------------------------------------------------------------------------------------------ node host
@runtime_checkable
class NodeHost(Protocol):
    """The host side of one node's pool, built on that node by ``RayPool(node_host=factory)``.

    ``factory`` is pickled to every node and called once there, in the node's actor, before its
    pool starts; an exception it raises keeps that node out of the pool (the reason is in
    :attr:`RayReport.skipped`). The three methods run in that actor, in its threads: hooks of
    different jobs may run concurrently. An optional ``close()`` method is called when the
    node's pool stops (its errors are ignored).
    """

    def host_calls(self) -> Mapping[str, HostFunction]:
        """The host functions this node's jobs may call.

        They are merged with ``RayPool(host_calls=...)``; a name given by both is a
        :class:`~sf_sandbox.SandboxConfigError` on that node.
        """
        ...

    def job_started(self, job: Job) -> None:
        """Called before ``job`` is handed to the node's sandbox (and before any of its host calls)."""
        ...

    def job_finished(self, job: Job, result: Result) -> Result:
        """Called once the job has ended; returns the result the driver gets.

        That is usually ``result`` with :attr:`~sf_sandbox.Result.host_data` added. Called for every
        job that was started, whatever its status, also when the node's engine failed under it.
        """
        ...


NodeHostFactory = Callable[[], NodeHost]
"""A picklable zero-argument callable, run on each node, that builds that node's :class:`NodeHost`."""


# ------------------------------------------------------------------------------------------ actor
class NodePool:
    """The per-node half: a Ray actor that owns one warm :class:`~sf_sandbox.Sandbox`.

    It talks to the Docker engine of the node it runs on: ``docker_host`` when given, else the
    node's ``DOCKER_HOST`` (inherited from ``ray start``), else the local default socket. Not
    meant to be created by hand; :class:`RayPool` places one per node.
    """

    def __init__(
        self,
        *,
        settings: SandboxSettings,
        host_calls: Mapping[str, HostFunction] | None,
        docker_host: str | None,
        node_host: NodeHostFactory | None = None,
    ) -> None:
        """See the class docstring (``settings.pool_size`` is this node's pool size)."""
        if docker_host:
            os.environ["DOCKER_HOST"] = docker_host
        self.settings = settings
        self.pool_size = settings.pool_size or 1
        self.host_calls = dict(host_calls or {})
        self.node_host_factory = node_host
        self.host: NodeHost | None = None
        self.sandbox: Any = None
        self.jobs = 0

    def start(self) -> dict[str, Any]:
        """Build the node host, remove containers left by dead owners, warm the pool.

        The node host is built by ``node_host``; the containers removed are those left by dead
        owners on this node's engine.

        Returns:
            Facts about the node: ``node_id``, ``hostname``, ``pid``, ``docker_host``,
            ``pool_size`` and ``removed`` (short ids of the leftover containers removed).

        Raises:
            SandboxError: no engine answers, or the image is missing on this node.
            SandboxConfigError: the node host's calls clash with ``host_calls`` by name, or it
                is not a :class:`NodeHost`.
            Exception: whatever the ``node_host`` factory raised.
        """
        from sf_sandbox.backends.docker import docker_client
        from sf_sandbox.gc import collect_garbage
        from sf_sandbox.sandbox import Sandbox

        calls = dict(self.host_calls)
        if self.node_host_factory is not None:
            host = self.node_host_factory()
            if not isinstance(cast(object, host), NodeHost):  # a factory may return anything
                raise SandboxConfigError(
                    f"node_host must build a NodeHost (host_calls, job_started, job_finished), "
                    f"got {type(host).__name__}"
                )
            extra = dict(host.host_calls())
            clash = sorted(set(extra) & set(calls))
            if clash:
                raise SandboxConfigError(
                    f"host call(s) {', '.join(clash)} given both by host_calls= and by node_host=; "
                    "rename one of them"
                )
            calls.update(extra)
            self.host = host
        self.sandbox = Sandbox(self.settings, pool_size=self.pool_size, host_calls=calls or None)
        client = docker_client()
        try:
            removed = collect_garbage(client, only_dead_owners=True)
        finally:
            client.close()
        self.sandbox.start()
        return {
            "node_id": _current_node_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "docker_host": os.environ.get("DOCKER_HOST") or "default",
            "pool_size": self.pool_size,
            "removed": removed,
        }

    def run_batch(self, jobs: list[Job]) -> list[Result]:
        """Run ``jobs`` on this node's pool (``pool_size`` at once); results in input order.

        Never raises for what a job does; a job the sandbox could not run gets ``sandbox_error``.
        With a :class:`NodeHost`, its hooks run around every job; a hook that raises turns that
        job's result into ``sandbox_error`` with the hook's error.
        """
        self.jobs += len(jobs)
        host = self.host
        if host is None:
            return self.sandbox.run_many(jobs, concurrency=self.pool_size)
        broken: dict[int, str] = {}
        for k, job in enumerate(jobs):
            try:
                host.job_started(job)
            except Exception as exc:  # noqa: BLE001 - reported in the job's result
                broken[k] = f"node host job_started failed: {type(exc).__name__}: {exc}"
        runnable = [job for k, job in enumerate(jobs) if k not in broken]
        ran = iter(self.sandbox.run_many(runnable, concurrency=self.pool_size))
        results: list[Result] = []
        for k, job in enumerate(jobs):
            if k in broken:
                results.append(Result(status=Status.SANDBOX_ERROR, error=broken[k], id=job.id))
                continue
            result = next(ran)
            try:
                result = host.job_finished(job, result)
            except Exception as exc:  # noqa: BLE001 - reported in the job's result
                result = Result(
                    status=Status.SANDBOX_ERROR,
                    error=f"node host job_finished failed: {type(exc).__name__}: {exc}",
                    id=job.id,
                )
            results.append(result)
        return results

    def engine_alive(self) -> bool:
        """Whether this node's Docker engine still answers a ping (5 s at most)."""
        from sf_sandbox.backends.docker import docker_client

        try:
            client = docker_client(timeout=5)
        except SandboxError:
            return False
        client.close()
        return True

    def close(self) -> list[str]:
        """Stop the pool (its containers are removed) and remove leftovers of dead owners.

        Returns:
            Short ids of the leftover containers removed (besides the pool's own).
        """
        from sf_sandbox.backends.docker import LABEL, docker_client
        from sf_sandbox.gc import collect_garbage
        from sf_sandbox.worker import START_TIMEOUT

        if self.sandbox is not None:
            self.sandbox.close()
        closer = getattr(self.host, "close", None)
        if callable(closer):
            try:
                closer()
            except Exception:  # noqa: BLE001 - the pool is stopping anyway
                pass
        # Sandbox.close does not wait for a tainted container's replacement that is still starting;
        # this process is about to be killed, so wait for those, then sweep what this process owns.
        for thread in threading.enumerate():
            target = getattr(thread, "_target", None)
            if thread is not threading.current_thread() and "replace" in getattr(target, "__qualname__", ""):
                thread.join(START_TIMEOUT)
        try:
            client = docker_client(timeout=10)
        except SandboxError:
            return []
        try:
            mine = client.api.containers(
                all=True,
                filters={
                    "label": [
                        f"{LABEL}=1",
                        f"{LABEL}.owner-pid={os.getpid()}",
                        f"{LABEL}.owner-host={socket.gethostname()}",
                    ]
                },
            )
            for info in mine:
                try:
                    client.api.remove_container(info["Id"], force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            return collect_garbage(client, only_dead_owners=True)
        finally:
            client.close()


def _current_node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())
