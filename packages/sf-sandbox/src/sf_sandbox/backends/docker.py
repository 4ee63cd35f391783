"""Docker backend: one hardened container per pool slot, supervisor as PID 1, channel = attach."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from sf_sandbox._procfs import stat_fields
from sf_sandbox.backends import seccomp
from sf_sandbox.backends.base import Backend, Connection
from sf_sandbox.errors import EngineUnavailableError, ImageNotFoundError, SandboxError
from sf_sandbox.limits import Limits
from sf_sandbox.supervisor import BOOTSTRAP, bootstrap_payload, helper_sources

LABEL = "sf-sandbox"
"""Every container we create carries ``sf-sandbox=1`` plus owner labels (see ``owner_labels``)."""
DEFAULT_IMAGE = "sf-sandbox:py3"
SUPERVISOR_CAPS = ["SETUID", "SETGID", "KILL", "DAC_OVERRIDE", "FOWNER"]
"""The only capabilities PID 1 keeps: drop to the job uid, kill the job's processes, and wipe what
the job left once it is dead. Jobs never hold any capability (the uid switch clears them all)."""


def docker_client(timeout: int | None = 60, ping: bool = True) -> Any:
    """A Docker SDK client for ``DOCKER_HOST``, else the current Docker context, else the local socket.

    Raises:
        EngineUnavailableError: the SDK is missing or no engine answers.
    """
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a hard dependency
        raise EngineUnavailableError("the 'docker' Python package is missing: pip install docker") from exc
    base_url = os.environ.get("DOCKER_HOST")
    if not base_url:
        try:
            from docker.context import ContextAPI

            ctx = ContextAPI.get_current_context()
            # typed as never None, but None when the configured context is gone: caught below
            if ctx.name != "default" and ctx.Host:
                base_url = ctx.Host
        except Exception:
            base_url = None
    where = base_url or "unix:///var/run/docker.sock"
    try:
        client = (
            docker.DockerClient(base_url=base_url, timeout=timeout)
            if base_url
            else docker.from_env(timeout=cast(int, timeout))  # None (no timeout) works; the stub says int
        )
        if ping:
            client.ping()  # pyright: ignore[reportUnknownMemberType] - the SDK leaves its arguments untyped
    except Exception as exc:
        raise EngineUnavailableError(
            f"no Docker engine answers at {where} ({type(exc).__name__}). Start it (`sudo systemctl start "
            "docker`, or `dockerd &` as root), set DOCKER_HOST, or run `sf sandbox doctor`."
        ) from None
    return client


def owner_labels() -> dict[str, str]:
    """Labels that let ``sf sandbox gc`` tell live pools from leftovers."""
    return {
        LABEL: "1",
        f"{LABEL}.owner-host": socket.gethostname(),
        f"{LABEL}.owner-pid": str(os.getpid()),
        f"{LABEL}.owner-start": str(process_start_time(os.getpid()) or ""),
        f"{LABEL}.created": str(int(time.time())),
    }


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it does not exist."""
    fields = stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None
    except (ValueError, IndexError):
        return None


LANES_ROOT = "/lanes"
"""Where the lanes of a shared container have their tmpfs: ``/lanes/<i>`` (work dir and tmp)."""


def container_mounts(uid: int, work_mb: int, lanes: int = 1) -> dict[str, str]:
    """The container's tmpfs mounts.

    One lane: ``/work`` (the job uid's, 0700) and ``/tmp``
    (1777). Several: ``/lanes/<i>`` per lane, owned by ``uid + i`` with mode 0700 and a size of
    its own (so one lane's disk bomb cannot fill a neighbour's), and ``/tmp`` not writable by
    any job (root, 0755; the supervisor makes ``/dev/shm`` the same).
    """
    common = "rw,nosuid,nodev"
    if lanes <= 1:
        return {
            "/work": f"{common},size={work_mb}m,uid={uid},gid={uid},mode=0700",
            "/tmp": f"{common},size={work_mb}m,mode=1777",
            "/sf": f"{common},noexec,size=1m,mode=0755",
        }
    mounts = {
        "/tmp": f"{common},size=1m,mode=0755",
        "/sf": f"{common},noexec,size=1m,mode=0755",
    }
    for lane in range(lanes):
        owner = uid + lane
        mounts[f"{LANES_ROOT}/{lane}"] = f"{common},size={work_mb}m,uid={owner},gid={owner},mode=0700"
    return mounts


class DockerConnection(Connection):
    """A container running the supervisor, and its attach socket."""

    def __init__(
        self,
        client: Any,
        container: Any,
        sock: Any,
        on_data: Callable[[bytes], None],
        on_close: Callable[[], None],
    ) -> None:
        from sf_sandbox._protocol import DockerStreamDemux

        self._client = client
        self.container = container
        self.label = container.short_id
        self._sock = sock
        self._raw = getattr(sock, "_sock", sock)
        # the SDK leaves its HTTP timeout on the hijacked socket: an idle pool would "die" after it
        self._raw.settimeout(None)
        self._demux = DockerStreamDemux()
        self._stderr = bytearray()
        self._send_lock = threading.Lock()
        self._closed = False
        self._on_data = on_data
        self._on_close = on_close
        self._reader = threading.Thread(target=self._read, name=f"sf-sandbox-{self.label}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                try:
                    chunk = self._raw.recv(1 << 20)
                except OSError:
                    break
                if not chunk:
                    break
                out, err = self._demux.feed(chunk)
                if err:
                    self._stderr += err
                    del self._stderr[:-65536]
                if out:
                    self._on_data(out)
        finally:
            self._on_close()

    def send(self, data: bytes) -> None:
        """Write ``data`` whole to the container's attached socket (one writer at a time).

        Raises:
            OSError: the socket is closed or the container is gone.
        """
        with self._send_lock:
            self._raw.sendall(data)

    def kill(self) -> None:
        """Kill the container (and so every process in it) now; never raises (a gone one is fine)."""
        try:
            self.container.kill()
        except Exception:
            pass

    def close(self) -> None:
        """Remove the container (force), retrying while the engine is busy, then drop the socket."""
        if self._closed:
            return
        self._closed = True
        for attempt in range(3):
            try:
                self.container.remove(force=True)
                break
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404:
                    break  # already gone
                time.sleep(0.5 * (attempt + 1))
        try:
            self._raw.close()
        except OSError:
            pass
        try:
            self._client.close()
        except Exception:
            pass

    def diagnostics(self) -> str:
        """The last 4000 characters of what the supervisor printed on stderr (bad UTF-8 replaced)."""
        return bytes(self._stderr).decode("utf-8", "replace")[-4000:]


class DockerBackend(Backend):
    """Runs supervisors in containers of ``image`` on the engine ``DOCKER_HOST`` (or context) names.

    Every container: ``--network none``, read-only root, tmpfs ``/work`` (owned by the job uid,
    mode 0700), ``/tmp`` and ``/sf``, all capabilities dropped but
    SETUID/SETGID/KILL/DAC_OVERRIDE/FOWNER for PID 1, ``no-new-privileges``, our seccomp profile
    (``backends/seccomp.py``: io_uring and other kernel surface denied), memory (= memory+swap),
    pids and CPU limits, logging driver ``none``.
    Jobs run as a per-container random uid >= 100000 with no capabilities at all.
    """

    name = "docker"
    in_container = True

    def __init__(self, image: str = DEFAULT_IMAGE, runtime: str | None = None) -> None:
        self.image = image
        self.runtime = runtime or os.environ.get("SF_SANDBOX_RUNTIME") or None
        """Docker runtime (``runsc`` for gVisor), else ``$SF_SANDBOX_RUNTIME``, else the engine's default."""
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The Docker SDK client, made (and pinged) on first use and kept.

        Raises:
            EngineUnavailableError: the SDK is missing or no engine answers.
        """
        if self._client is None:
            self._client = docker_client()
        return self._client

    def check(self) -> None:
        """Fail fast if the engine does not answer or ``image`` is not in it; return nothing.

        Raises:
            EngineUnavailableError: the SDK is missing or no engine answers.
            ImageNotFoundError: ``image`` is not in the engine (the message says how to get it).
        """
        import docker.errors

        client = self.client
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            hint = (
                "build it with `sf sandbox build-image`"
                if self.image == DEFAULT_IMAGE
                else ("build or load it first (it needs python3 on PATH)")
            )
            raise ImageNotFoundError(f"image {self.image!r} is not in the Docker engine: {hint}") from None

    def start(
        self,
        limits: Limits,
        on_data: Callable[[bytes], None],
        on_close: Callable[[], None],
        lanes: int = 1,
    ) -> tuple[Connection, dict[str, object]]:
        """Start one container.

        ``lanes`` > 1 gives it that many concurrent job lanes (:func:`container_mounts`), each with
        its own uid (``uid + lane``) and tmpfs.

        Raises:
            ImageNotFoundError: ``image`` is not in the engine.
            EngineUnavailableError: the engine stopped answering.
            SandboxError: the engine refused the container, or it could not be started (it is removed).
        """
        uid = random.randint(100_000, 1_999_999)
        container = self._create(self._host_config(limits, uid, lanes))
        conn = self._attach_and_boot(container, on_data, on_close)
        config: dict[str, object] = {
            "mode": "container",
            "job_uid": uid,
            "work_dir": "/work",
            "helper_dir": "/sf",
            "writable": ["/work", "/tmp", "/dev/shm"],
            "tmp_dir": "/tmp",
            "helpers": helper_sources(),
        }
        if lanes > 1:
            config.update(lanes=lanes, lanes_root=LANES_ROOT)
        return conn, config

    def _host_config(self, limits: Limits, uid: int, lanes: int) -> Any:
        """The container's isolation: no network, read-only root, tmpfs, cgroup limits, no capabilities."""
        from docker.types import LogConfig, Ulimit

        work_mb = limits.file_size_mb
        # gVisor's sentry keeps ~60 host threads of its own plus per-task stubs in the container's pids
        # cgroup; each job stays bounded by RLIMIT_NPROC (= limits.pids, per lane uid), which gVisor enforces
        overhead = (8 if self.runtime != "runsc" else 256) + 4 * (lanes - 1)
        return self.client.api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs=container_mounts(uid, work_mb, lanes),
            shm_size=f"{max(1, min(work_mb, 64))}m",
            mem_limit=f"{limits.memory_mb * lanes}m",
            memswap_limit=f"{limits.memory_mb * lanes}m",
            pids_limit=limits.pids * lanes + overhead,
            nano_cpus=int(min(limits.cpus * lanes, float(os.cpu_count() or 1)) * 1e9),
            cap_drop=["ALL"],
            cap_add=SUPERVISOR_CAPS,
            security_opt=["no-new-privileges", seccomp.security_opt()],
            ulimits=[Ulimit(name="nofile", soft=1024, hard=1024)],
            log_config=LogConfig(type="none"),
            **({"runtime": self.runtime} if self.runtime else {}),
        )

    def _create(self, host_config: Any) -> Any:
        """Create (not start) the supervisor's container; return the SDK's container object.

        Raises:
            ImageNotFoundError, SandboxError, EngineUnavailableError: as :meth:`start` says.
        """
        import docker.errors

        try:
            created = self.client.api.create_container(
                self.image,
                command=["python3", "-c", BOOTSTRAP],
                stdin_open=True,  # with detach=False the SDK also sets StdinOnce: host gone -> EOF -> exit
                tty=False,
                user="0:0",
                working_dir="/",
                labels=owner_labels(),
                environment={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
                host_config=host_config,
            )
            return self.client.containers.get(created["Id"])
        except docker.errors.ImageNotFound:
            raise ImageNotFoundError(
                f"image {self.image!r} is not in the Docker engine: build it with `sf sandbox build-image`"
            ) from None
        except docker.errors.APIError as exc:
            raise SandboxError(
                f"Docker refused to create a sandbox container: {exc.explanation or exc}"
            ) from None
        except Exception as exc:  # connection refused/reset: the engine went away
            raise EngineUnavailableError(
                f"the Docker engine stopped answering: {type(exc).__name__}: {exc}"
            ) from None

    def _attach_and_boot(
        self, container: Any, on_data: Callable[[bytes], None], on_close: Callable[[], None]
    ) -> DockerConnection:
        """Attach to ``container``, start it and send the supervisor its bootstrap payload.

        Raises:
            SandboxError: any step failed (the container is removed).
        """
        try:
            # A client of its own: a hijacked stream must never sit in a shared connection pool,
            # where urllib3 may close it when the pool is full (the container then sees EOF and exits).
            attach_client = docker_client(timeout=None, ping=False)
            sock = attach_client.api.attach_socket(
                container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            conn = DockerConnection(attach_client, container, sock, on_data, on_close)
            container.start()
            conn.send(bootstrap_payload())
        except Exception as exc:
            try:
                container.remove(force=True)
            except Exception:
                pass
            raise SandboxError(f"could not start a sandbox container: {exc}") from None
        return conn

    def close(self) -> None:
        """Close the engine client, if one was made; never raises. A later use makes a new one."""
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
