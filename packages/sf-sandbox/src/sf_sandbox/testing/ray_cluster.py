"""A multi-node Ray cluster on one machine, each node with its own Docker engine (:mod:`sf_sandbox.ray_pool`).

Everything listens on loopback or on unix sockets; teardown kills only the PIDs started here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Generator
from typing import Any

from sf_sandbox.backends.docker import DEFAULT_IMAGE
from sf_sandbox.testing.dockerd import LocalDockerd, save_image
from sf_sandbox.testing.procs import descendants, signal_pid, wait_gone

__all__ = ["RAY_LOOPBACK_ENV", "LocalRayCluster", "shared_ray_cluster", "use_loopback_ray"]

RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Environment a driver needs to join a cluster pinned to 127.0.0.1: without it ``ray.init``
rewrites a loopback address to the machine's IP, where nothing listens."""


def use_loopback_ray() -> None:
    """Let this process's ``ray.init`` join a cluster pinned to 127.0.0.1 (see RAY_LOOPBACK_ENV)."""
    import sys

    os.environ.update(RAY_LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # imported before the variable was set: same switch, set directly
        vars(constants)["ENABLE_RAY_CLUSTER"] = False


class LocalRayCluster:
    """A Ray cluster of ``nodes`` nodes on this machine, all pinned to 127.0.0.1, each with its own dockerd.

    Node ``i``'s raylet (and so its workers and actors) gets ``DOCKER_HOST`` of engine ``i``.
    Built on ``ray.cluster_utils.Cluster``; GCS health checks are tightened so a killed node is
    noticed in seconds. Use as a context manager, or :meth:`start` / :meth:`close`.

    Example::

        with LocalRayCluster(nodes=2) as cluster:
            cluster.connect()                      # ray.init for this process
            with RayPool() as pool: ...
            cluster.kill_raylet(1); cluster.heal()  # node 1 dies, then comes back as a new node
    """

    def __init__(
        self,
        nodes: int = 2,
        *,
        cpus_per_node: int = 1,
        image: str = DEFAULT_IMAGE,
        own_engines: bool = True,
        base_dir: str | None = None,
    ) -> None:
        """``own_engines=False`` points every node at the default engine (no dockerd started)."""
        self.n = nodes
        self.cpus = cpus_per_node
        self.image = image
        self.own_engines = own_engines
        self.base_dir = base_dir
        self.base = ""
        self.engines: list[LocalDockerd | None] = []
        self.ray_nodes: list[Any] = []
        self.cluster: Any = None
        self._connected = False
        self._started_pids: set[int] = set()

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Start the engines and load the image into each while the Ray head and nodes start.

        Raises:
            Exception: the first failure of an engine, the image load or a node (everything
                started so far is closed first).
        """
        use_loopback_ray()
        self.base = tempfile.mkdtemp(prefix="sfray-", dir=self.base_dir or "/tmp")
        _make_ray_temp_dir()
        errors: list[BaseException] = []
        try:
            loader = self._start_engines(errors)
            from ray.cluster_utils import Cluster

            self.cluster = Cluster()
            try:
                for i in range(self.n):
                    self.ray_nodes.append(self._add_node(i))
            finally:
                if loader is not None:
                    loader.join()
            if errors:
                raise errors[0]
        except BaseException:
            self.close()
            raise

    def _start_engines(self, errors: list[BaseException]) -> threading.Thread | None:
        """Start one engine per node (in parallel), then the thread loading the image into them.

        Returns the loader thread (its failures go to ``errors``), or None with ``own_engines=False``.

        Raises:
            Exception: an engine did not start.
        """
        if not self.own_engines:
            self.engines = [None] * self.n
            return None
        self.engines = [LocalDockerd(os.path.join(self.base, f"d{i}")) for i in range(self.n)]
        _in_parallel(errors, LocalDockerd.start, list(self.engines))
        if errors:
            raise errors[0]
        loader = threading.Thread(target=_guarded, args=(errors, self._load_images, errors))
        loader.start()
        return loader

    def _load_images(self, errors: list[BaseException]) -> None:
        """``docker save`` the image from the default engine and load it into every node's engine."""
        tarball = save_image(os.path.join(self.base, "image.tar"), self.image)
        _in_parallel(errors, LocalDockerd.load_image, [e for e in self.engines if e is not None], tarball)
        os.unlink(tarball)

    def _node_args(self, i: int) -> dict[str, Any]:
        engine = self.engines[i]
        env = {"DOCKER_HOST": engine.host} if engine is not None else {}
        args: dict[str, Any] = {
            "num_cpus": self.cpus,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "include_log_monitor": False,
            "object_store_memory": 80 * 1024 * 1024,
            "env_vars": env,
            "temp_dir": os.path.join(self.base, "ray"),
        }
        if i == 0:
            args["_system_config"] = {
                "health_check_initial_delay_ms": 0,
                "health_check_period_ms": 1000,
                "health_check_timeout_ms": 2000,
                "health_check_failure_threshold": 4,
            }
        return args

    def _add_node(self, i: int) -> Any:
        node = self.cluster.add_node(**self._node_args(i))
        self._started_pids.update(self._node_pids(node))
        return node

    @staticmethod
    def _node_pids(node: Any) -> list[int]:
        return [info.process.pid for infos in node.all_processes.values() for info in infos]

    # ------------------------------------------------------------------ use
    @property
    def address(self) -> str:
        """The head's ``127.0.0.1:PORT`` (give it to ``ray.init`` / ``RayPool(address=...)``)."""
        return str(self.cluster.address)

    def node_id(self, i: int) -> str:
        """Ray node id (hex) of node ``i``."""
        return str(self.ray_nodes[i].node_id)

    def raylet_pid(self, i: int) -> int:
        """The pid of node ``i``'s raylet."""
        return int(self.ray_nodes[i].all_processes["raylet"][0].process.pid)

    def connect(self) -> None:
        """``ray.init`` this process into the cluster (no-op when already connected)."""
        import logging

        import ray

        use_loopback_ray()
        if not ray.is_initialized():
            # ray's own annotations are partial (some parameters have none)
            ray.init(  # pyright: ignore[reportUnknownMemberType]
                address=self.address, logging_level=logging.WARNING, log_to_driver=False
            )
            self._connected = True

    def driver_env(self) -> dict[str, str]:
        """Environment for a driver subprocess (``sf bench run --ray ADDRESS``)."""
        return dict(RAY_LOOPBACK_ENV)

    def pids(self) -> list[int]:
        """Every live process this cluster started: Ray's (with workers and agents) and the engines'."""
        roots = list(self._started_pids)
        for engine in self.engines:
            if engine is not None:
                roots.extend(engine.pids())
        return descendants(roots)

    def kill_raylet(self, i: int) -> None:
        """SIGKILL node ``i``'s raylet (``i`` > 0: the head also runs the GCS); its workers follow."""
        if i == 0:
            raise ValueError("node 0 is the head; kill another node")
        signal_pid(self.raylet_pid(i), signal.SIGKILL)

    def kill_dockerd(self, i: int) -> None:
        """SIGKILL node ``i``'s dockerd."""
        engine = self.engines[i]
        if engine is None:
            raise ValueError("this cluster uses the default engine (own_engines=False)")
        engine.kill()

    def heal(self) -> None:
        """Restart dead engines, replace nodes whose raylet died (same engine, new node id)."""
        for engine in self.engines:
            if engine is not None and engine.pid is None:
                engine.start()
        for i, node in enumerate(self.ray_nodes):
            if i and node.all_processes["raylet"][0].process.poll() is not None:
                self.cluster.remove_node(node, allow_graceful=False)
                self.ray_nodes[i] = self._add_node(i)

    # ------------------------------------------------------------------ stop
    def close(self) -> None:
        """Disconnect, end every process started here (by PID), remove the temp dir."""
        if self._connected:
            import ray

            ray.shutdown()  # pyright: ignore[reportUnknownMemberType] - ray leaves it unannotated
            self._connected = False
        self._end_ray_processes()
        for engine in self.engines:
            if engine is not None:
                engine.stop()
        self.ray_nodes, self.engines, self.cluster = [], [], None
        if self.base:  # engine data roots hold ~15k files: delete them in the background
            subprocess.Popen(
                ["rm", "-rf", "--one-file-system", self.base],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.base = ""

    def _end_ray_processes(self) -> None:
        """SIGKILL every Ray process started here and reap them; forget the address file Ray wrote."""
        ray_pids = descendants(list(self._started_pids))
        for pid in ray_pids:  # a throwaway cluster: no graceful drain (raylet and GCS wait on each other)
            signal_pid(pid, signal.SIGKILL)
        for node in self.ray_nodes:  # reap our children
            for infos in node.all_processes.values():
                for info in infos:
                    try:
                        info.process.wait(timeout=5)
                    except Exception:
                        pass
        for pid in ray_pids:
            wait_gone(pid, 5)
        if self.cluster is not None:
            try:  # forget the address file it wrote; its processes are already gone
                from ray._common.utils import reset_ray_address

                reset_ray_address()
            except Exception:
                pass


def _make_ray_temp_dir() -> None:
    """Create Ray's default temp dir.

    ``ray.cluster_utils`` writes the cluster address there but does not create it (it is missing
    on a fresh machine).
    """
    try:
        from ray._common.utils import get_default_ray_temp_dir

        ray_tmp = get_default_ray_temp_dir()
    except ImportError:  # other Ray versions: the same rule
        ray_tmp = os.path.join(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp", "ray")
    os.makedirs(ray_tmp, exist_ok=True)


def _guarded(errors: list[BaseException], fn: Callable[..., object], *args: object) -> None:
    """Call ``fn(*args)``; append what it raises to ``errors`` (a thread's target: the caller re-raises)."""
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
        errors.append(exc)


def _in_parallel(
    errors: list[BaseException], fn: Callable[..., object], items: list[Any], *args: object
) -> None:
    """``fn(item, *args)`` for every item, each in its own thread; wait for all; failures go to ``errors``."""
    threads = [threading.Thread(target=_guarded, args=(errors, fn, item, *args)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class _Shared:
    """The one cluster :func:`shared_ray_cluster` hands out in this process, and how many hold it."""

    cluster: LocalRayCluster | None = None
    users: int = 0


@contextlib.contextmanager
def shared_ray_cluster() -> Generator[LocalRayCluster]:
    """A context manager yielding one 2-node :class:`LocalRayCluster` shared by every user in this process.

    The first user starts it, the last one out closes it; each user gets it healed (dead
    engines restarted, dead nodes replaced) and this process connected to it. Session-scoped
    fixtures of several packages' conftests can share one cluster this way.
    """
    cluster = _Shared.cluster
    if cluster is None:
        cluster = LocalRayCluster(nodes=2)
        cluster.start()
        _Shared.cluster = cluster
    _Shared.users += 1
    try:
        cluster.heal()
        cluster.connect()
        yield cluster
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            cluster.close()
            _Shared.cluster = None
