"""Helpers for tests that need the real sandbox (used by every sf package's test suite).

``require_sandbox()`` returns nothing when Docker and the image are ready; otherwise it skips the
test, or fails it when ``SF_REQUIRE_DOCKER=1`` (CI sets this, so a missing engine is a failure).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sf_sandbox.backends.docker import DEFAULT_IMAGE

if TYPE_CHECKING:
    import pytest


def sandbox_problem(image: str = DEFAULT_IMAGE) -> str | None:
    """Why the real sandbox cannot run here, or None when it can."""
    from sf_sandbox.errors import SandboxError
    from sf_sandbox.image import image_status

    try:
        status = image_status(image)
    except SandboxError as exc:
        return str(exc)
    if status != "current":
        return f"image {image} is {status}: run `sf sandbox build-image`"
    return None


def require_sandbox(image: str = DEFAULT_IMAGE) -> None:
    """Skip (or, with SF_REQUIRE_DOCKER=1, fail) the calling test when the sandbox cannot run."""
    import pytest

    problem = sandbox_problem(image)
    if problem is None:
        return
    if os.environ.get("SF_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SF_REQUIRE_DOCKER=1 but the sandbox cannot run: {problem}", pytrace=False)
    pytest.skip(f"sandbox unavailable: {problem}")


DOCKER_FIXTURES = frozenset(
    {"docker_ready", "sandbox", "fresh_sandbox", "start_server", "runsc_engine", "code_scorer"}
    | {"require_docker", "ray_cluster"}
)
"""Fixture names of the sf test suites that start or need the Docker engine."""


def mark_docker_tests(items: list[pytest.Item], fixtures: frozenset[str] = DOCKER_FIXTURES) -> None:
    """Give the ``docker`` marker to every collected test that uses one of ``fixtures``.

    A test uses a fixture directly or through another fixture. Call it from
    ``pytest_collection_modifyitems``, so that ``pytest -m "not docker"`` selects exactly the tests
    that run without an engine.
    """
    import pytest

    for item in items:
        if set(getattr(item, "fixturenames", ())) & fixtures:
            item.add_marker(pytest.mark.docker)


# ------------------------------------------------------------------------------------------------
# A multi-node Ray cluster on one machine, each node with its own Docker engine (sf_sandbox.ray_pool).
# Everything listens on loopback or on unix sockets; teardown kills only the PIDs started here.

from typing import Any  # noqa: E402 - appended section

RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Environment a driver needs to join a cluster pinned to 127.0.0.1: without it ``ray.init``
rewrites a loopback address to the machine's IP, where nothing listens."""


def ray_cluster_problem(image: str = DEFAULT_IMAGE) -> str | None:
    """Why a local multi-node Ray cluster with one dockerd per node cannot run here, or None."""
    import importlib.util
    import shutil

    problem = sandbox_problem(image)
    if problem is not None:
        return problem
    if importlib.util.find_spec("ray") is None:
        return 'Ray is not installed: pip install "sf-sandbox[ray]"'
    if shutil.which("dockerd") is None:
        return "dockerd is not on PATH (install docker.io / docker-ce)"
    if shutil.which("unshare") is None:
        return "unshare is not on PATH (util-linux)"
    if os.geteuid() != 0:
        return "starting a dockerd per node needs root"
    return None


def require_ray_cluster(image: str = DEFAULT_IMAGE) -> None:
    """Skip (or, with SF_REQUIRE_DOCKER=1, fail) when :class:`LocalRayCluster` cannot run."""
    import pytest

    problem = ray_cluster_problem(image)
    if problem is None:
        return
    if os.environ.get("SF_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SF_REQUIRE_DOCKER=1 but a local Ray cluster cannot run: {problem}", pytrace=False)
    pytest.skip(f"local Ray cluster unavailable: {problem}")


def use_loopback_ray() -> None:
    """Let this process's ``ray.init`` join a cluster pinned to 127.0.0.1 (see RAY_LOOPBACK_ENV)."""
    import sys

    os.environ.update(RAY_LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # imported before the variable was set: same switch, set directly
        vars(constants)["ENABLE_RAY_CLUSTER"] = False


def descendants(pids: list[int]) -> list[int]:
    """``pids`` and every live process below them (by parent pid, read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read()
            ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    seen: list[int] = []
    todo = [p for p in pids if os.path.exists(f"/proc/{p}")]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def listeners(pids: list[int]) -> list[tuple[int, str, str, int]]:
    """Every TCP listening socket and bound UDP socket held by ``pids``: ``(pid, proto, ip, port)``.

    Read from ``/proc/<pid>/fd`` and ``/proc/net/{tcp,tcp6,udp,udp6}``; IPv4-mapped IPv6
    addresses are shown as IPv4.
    """
    import ipaddress

    tables: dict[int, tuple[str, str, int]] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{proto}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], int(cols[9])
            if proto.startswith("tcp") and state != "0A":  # LISTEN
                continue
            hexip, hexport = local.split(":")
            raw = bytes.fromhex(hexip)
            if len(raw) == 4:
                ip = ipaddress.IPv4Address(raw[::-1])
            else:  # four little-endian 32-bit words
                ip6 = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
                ip = ip6.ipv4_mapped or ip6
            tables[inode] = (proto.rstrip("6"), str(ip), int(hexport, 16))
    found: list[tuple[int, str, str, int]] = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in tables:
                    proto, ip, port = tables[inode]
                    found.append((pid, proto, ip, port))
    return sorted(set(found))


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether ``pid`` is gone or a zombie, waiting up to ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                data = fh.read()
            if data[data.rindex(b")") + 2 :].split()[0] == b"Z":
                return True
        except OSError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class LocalDockerd:
    """A Docker engine of the caller's own, for one test node.

    Own ``--data-root``, ``--exec-root``, ``--pidfile``, unix socket (``-H unix://…``) and config
    file (so ``/etc/docker/daemon.json`` cannot add a TCP listener), no bridge, no iptables, no
    ip forwarding, and its own mount namespace (``unshare --mount``), so nothing it mounts
    outlives it. It starts its own containerd under the exec root. :meth:`stop` removes its
    containers and ends the daemon, its containerd and their shims, by PID.
    """

    def __init__(self, base: str, daemon_config: dict[str, Any] | None = None) -> None:
        """Set up (not start) an engine under ``base``.

        Args:
            base: An empty directory (kept short: unix socket paths are limited to 107 bytes).
            daemon_config: The daemon.json it starts with (e.g. ``runtimes`` registering runsc).
        """
        self.base = base
        self.daemon_config = dict(daemon_config or {})
        self.sock = os.path.join(base, "docker.sock")
        self.host = f"unix://{self.sock}"
        self.exec_root = os.path.join(base, "x")
        self.proc: Any = None
        self._extra_pids: set[int] = set()

    def start(self, timeout: float = 60.0) -> None:
        """Start the daemon and wait until it answers.

        Raises:
            RuntimeError: it did not answer in ``timeout`` seconds (the message ends with its log).
        """
        import json
        import signal
        import subprocess
        import time

        if self.pid is not None:
            return
        # a restart after kill(): end what the crashed engine left (containerd, shims, containers),
        # as a rebooted machine would, so the new daemon starts its own containerd from scratch
        leftovers = self.pids()
        for pid in leftovers:
            _signal(pid, signal.SIGKILL)
        for pid in leftovers:
            _wait_gone(pid, 10)
        self._extra_pids.clear()
        # containerd dies with its dockerd but may stay a zombie for a moment; its pid file would
        # then make the new dockerd wait for a "running" containerd that never answers
        stale = os.path.join(self.exec_root, "containerd", "containerd.pid")
        old = self._containerd_pid()
        if old is not None and _wait_gone(old, 0):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        os.makedirs(self.base, exist_ok=True)
        config = os.path.join(self.base, "daemon.json")
        with open(config, "w") as fh:
            json.dump(self.daemon_config, fh)
        log = open(os.path.join(self.base, "dockerd.log"), "ab")  # noqa: SIM115 - owned by the child
        # its own mount namespace (unshare execs dockerd: same pid): every mount the engine and its
        # containers make dies with the last of its processes, even after a SIGKILL
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "dockerd",
                "--config-file",
                config,
                "--data-root",
                os.path.join(self.base, "data"),
                "--exec-root",
                self.exec_root,
                "--pidfile",
                os.path.join(self.base, "docker.pid"),
                "-H",
                self.host,
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--log-level",
                "warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.answers():
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"dockerd at {self.host} did not start: {tail}")
            time.sleep(0.1)
        containerd = self._containerd_pid()
        if containerd:
            self._extra_pids.add(containerd)

    def answers(self) -> bool:
        """Whether the daemon answers a ping."""
        import docker

        try:
            client: Any = docker.DockerClient(base_url=self.host, timeout=5)  # the docker SDK is untyped
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False

    def client(self, timeout: int = 120) -> Any:
        """A Docker SDK client for this daemon."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def load_image(self, tarball: str) -> None:
        """``docker load`` a tarball made by :func:`save_image`."""
        client = self.client(timeout=600)
        try:
            with open(tarball, "rb") as fh:
                client.images.load(fh)
        finally:
            client.close()

    def log_tail(self, n: int = 800) -> str:
        """The end of the daemon's log."""
        try:
            with open(os.path.join(self.base, "dockerd.log"), "rb") as fh:
                return fh.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def _containerd_pid(self) -> int | None:
        try:
            with open(os.path.join(self.exec_root, "containerd", "containerd.pid")) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            return None

    def _shim_pids(self) -> list[int]:
        """Parents of the containers' init processes (their containerd shims)."""
        tasks = os.path.join(self.exec_root, "containerd", "daemon", "io.containerd.runtime.v2.task", "moby")
        found: list[int] = []
        try:
            ids = os.listdir(tasks)
        except OSError:
            return []
        for cid in ids:
            try:
                with open(os.path.join(tasks, cid, "init.pid")) as fh:
                    init = int(fh.read().strip())
                with open(f"/proc/{init}/stat", "rb") as fh:
                    data = fh.read()
                found.append(int(data[data.rindex(b")") + 2 :].split()[1]))
            except (OSError, ValueError, IndexError):
                continue
        return found

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def pids(self) -> list[int]:
        """Every live process this engine started: dockerd, containerd, shims, containers."""
        roots = [p for p in [self.pid, *self._extra_pids, *self._shim_pids()] if p]
        return descendants(roots)

    def kill(self) -> None:
        """SIGKILL the daemon only, as a crash would (its containerd and containers stay)."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Remove this engine's containers, stop the daemon, then kill what it left, by PID."""
        import signal

        if self.pid is not None:
            try:
                client = self.client(timeout=30)
                for info in client.api.containers(all=True):
                    try:
                        client.api.remove_container(info["Id"], force=True)
                    except Exception:
                        pass
                client.close()
            except Exception:
                pass
        leftovers = self.pids()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for pid in descendants(leftovers):
            _signal(pid, signal.SIGKILL)
        for pid in leftovers:
            _wait_gone(pid, 5)


def save_image(path: str, image: str = DEFAULT_IMAGE) -> str:
    """Write ``image`` from the default engine to a ``docker save`` tarball at ``path``."""
    from sf_sandbox.backends.docker import docker_client

    client = docker_client(timeout=600)
    try:
        with open(path, "wb") as fh:
            for chunk in client.images.get(image).save(named=True):
                fh.write(chunk)
    finally:
        client.close()
    return path


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
        """Start the engines and load the image into each while the Ray head and nodes start."""
        import tempfile
        import threading

        use_loopback_ray()
        self.base = tempfile.mkdtemp(prefix="sfray-", dir=self.base_dir or "/tmp")
        # ray.cluster_utils writes the cluster address into Ray's default temp dir, which it does
        # not create itself (missing on a fresh machine)
        try:
            from ray._common.utils import get_default_ray_temp_dir

            ray_tmp = get_default_ray_temp_dir()
        except ImportError:  # other Ray versions: the same rule
            ray_tmp = os.path.join(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp", "ray")
        os.makedirs(ray_tmp, exist_ok=True)
        errors: list[BaseException] = []

        def guarded(fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by start()
                errors.append(exc)

        def parallel(fn: Any, items: list[Any], *args: Any) -> None:
            threads = [threading.Thread(target=guarded, args=(fn, item, *args)) for item in items]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        def load_images() -> None:
            tarball = save_image(os.path.join(self.base, "image.tar"), self.image)
            parallel(LocalDockerd.load_image, [e for e in self.engines if e is not None], tarball)
            os.unlink(tarball)

        try:
            if self.own_engines:
                self.engines = [LocalDockerd(os.path.join(self.base, f"d{i}")) for i in range(self.n)]
                parallel(LocalDockerd.start, list(self.engines))
                if errors:
                    raise errors[0]
                loader = threading.Thread(target=guarded, args=(load_images,))
                loader.start()
            else:
                self.engines = [None] * self.n
                loader = None
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
        import signal

        if i == 0:
            raise ValueError("node 0 is the head; kill another node")
        _signal(self.raylet_pid(i), signal.SIGKILL)

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
        import signal

        if self._connected:
            import ray

            ray.shutdown()  # pyright: ignore[reportUnknownMemberType] - ray leaves it unannotated
            self._connected = False
        ray_pids = descendants(list(self._started_pids))
        for pid in ray_pids:  # a throwaway cluster: no graceful drain (raylet and GCS wait on each other)
            _signal(pid, signal.SIGKILL)
        for node in self.ray_nodes:  # reap our children
            for infos in node.all_processes.values():
                for info in infos:
                    try:
                        info.process.wait(timeout=5)
                    except Exception:
                        pass
        for pid in ray_pids:
            _wait_gone(pid, 5)
        if self.cluster is not None:
            try:  # forget the address file it wrote; its processes are already gone
                from ray._common.utils import reset_ray_address

                reset_ray_address()
            except Exception:
                pass
        for engine in self.engines:
            if engine is not None:
                engine.stop()
        self.ray_nodes, self.engines, self.cluster = [], [], None
        if self.base:  # engine data roots hold ~15k files: delete them in the background
            import subprocess

            subprocess.Popen(
                ["rm", "-rf", "--one-file-system", self.base],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.base = ""


_SHARED: dict[str, Any] = {"cluster": None, "users": 0}


def shared_ray_cluster() -> Any:
    """A context manager yielding one 2-node :class:`LocalRayCluster` shared by every user in this process.

    The first user starts it, the last one out closes it; each user gets it healed (dead
    engines restarted, dead nodes replaced) and this process connected to it. Session-scoped
    fixtures of several packages' conftests can share one cluster this way.
    """
    import contextlib

    @contextlib.contextmanager
    def manage() -> Any:
        if _SHARED["cluster"] is None:
            cluster = LocalRayCluster(nodes=2)
            cluster.start()
            _SHARED["cluster"] = cluster
        _SHARED["users"] += 1
        try:
            cluster = _SHARED["cluster"]
            cluster.heal()
            cluster.connect()
            yield cluster
        finally:
            _SHARED["users"] -= 1
            if _SHARED["users"] == 0:
                _SHARED["cluster"].close()
                _SHARED["cluster"] = None

    return manage()


CANARY = (
    "import os, time\n"
    "secret = os.urandom(16).hex()\n"
    "paths = ['canary', os.path.join(os.environ['TMPDIR'], 'canary')]\n"
    "for p in paths:\n"
    "    with open(p, 'w') as fh:\n"
    "        fh.write(secret)\n"
    "block = bytearray(4 << 20)\n"
    "t = time.monotonic()\n"
    "while time.monotonic() - t < 0.3:\n"
    "    time.sleep(0.01)\n"
    "ok = all(open(p).read() == secret for p in paths) and len(block) == 4 << 20\n"
    "print('canary', 'ok' if ok else 'CHANGED', sorted(os.listdir('.')))\n"
)
"""A neighbour's job: writes a secret in its work and tmp dirs, holds 4 MiB for 0.3 s, checks both."""


class Canary:
    """Keeps one lane of ``sandbox`` busy with :data:`CANARY` jobs, back to back, while the block runs.

    On exit it asserts that every one of them ended ``ok`` with its files intact (a hostile
    neighbour in the same container changed nothing of it).

        with Canary(sandbox):
            sandbox.run(hostile_job)
    """

    def __init__(self, sandbox: Any) -> None:
        import threading

        self.sandbox = sandbox
        self.results: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sf-canary", daemon=True)

    def _loop(self) -> None:
        from sf_sandbox.job import Job

        while not self._stop.is_set():
            self.results.append(self.sandbox.run(Job(source=CANARY)))

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the neighbour's job did not finish"
        if exc[0] is not None:
            return
        assert self.results, "the neighbour ran no job"
        for r in self.results:
            assert r.ok and r.stdout == "canary ok ['canary', 'main.py']\n", (
                r.status,
                r.stdout,
                r.stderr[-500:],
                r.error,
            )
