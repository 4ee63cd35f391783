"""A Docker engine of the test's own (:class:`LocalDockerd`), and its image (:func:`save_image`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from sf_sandbox._procfs import stat_fields
from sf_sandbox.backends.docker import DEFAULT_IMAGE
from sf_sandbox.testing.procs import descendants, signal_pid, wait_gone

__all__ = ["LocalDockerd", "save_image"]


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
        self.proc: subprocess.Popen[bytes] | None = None
        self._extra_pids: set[int] = set()

    def start(self, timeout: float = 60.0) -> None:
        """Start the daemon and wait until it answers (a no-op while it runs).

        A restart after :meth:`kill` first ends what the crashed engine left (containerd, shims,
        containers), as a rebooted machine would, so the new daemon starts its own containerd.

        Raises:
            RuntimeError: it did not answer in ``timeout`` seconds (the message ends with its log).
        """
        if self.pid is not None:
            return
        self._end_leftovers()
        self.proc = self._spawn()
        self._wait_answers(timeout)
        containerd = self._containerd_pid()
        if containerd:
            self._extra_pids.add(containerd)

    def _end_leftovers(self) -> None:
        """Kill what a crashed engine left, and drop its containerd's pid file once that one is gone."""
        leftovers = self.pids()
        for pid in leftovers:
            signal_pid(pid, signal.SIGKILL)
        for pid in leftovers:
            wait_gone(pid, 10)
        self._extra_pids.clear()
        # containerd dies with its dockerd but may stay a zombie for a moment; its pid file would
        # then make the new dockerd wait for a "running" containerd that never answers
        stale = os.path.join(self.exec_root, "containerd", "containerd.pid")
        old = self._containerd_pid()
        if old is not None and wait_gone(old, 0):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass

    def _argv(self, config: str) -> list[str]:
        """The daemon's command line: its own mount namespace, roots, socket; no networking of its own."""
        # unshare execs dockerd (same pid): every mount the engine and its containers make dies
        # with the last of its processes, even after a SIGKILL
        return [
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
        ]

    def _spawn(self) -> subprocess.Popen[bytes]:
        """Write its daemon.json and start it in a session of its own, logging to ``dockerd.log``."""
        os.makedirs(self.base, exist_ok=True)
        config = os.path.join(self.base, "daemon.json")
        with open(config, "w") as fh:
            json.dump(self.daemon_config, fh)
        log = open(os.path.join(self.base, "dockerd.log"), "ab")  # noqa: SIM115 - owned by the child
        try:
            return subprocess.Popen(
                self._argv(config),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()

    def _wait_answers(self, timeout: float) -> None:
        """Poll the daemon (every 0.1 s) until it answers; stop it and raise if it dies or times out."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"dockerd at {self.host} did not start: {tail}")
            time.sleep(0.1)

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
                fields = stat_fields(init)
                if fields is not None:
                    found.append(int(fields[1]))
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
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Remove this engine's containers, stop the daemon, then kill what it left, by PID."""
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
            signal_pid(pid, signal.SIGKILL)
        for pid in leftovers:
            wait_gone(pid, 5)


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
