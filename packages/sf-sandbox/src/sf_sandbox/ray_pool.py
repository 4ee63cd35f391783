"""Scale-out on Ray: one warm sandbox pool per node, jobs dispatched to the pools in batches.

    from sf_sandbox import Job, Limits
    from sf_sandbox.ray_pool import RayPool

    with RayPool(address="auto", limits=Limits(timeout=10)) as pool:    # one pool per alive node
        results = pool.run_many([Job(source=src) for src in programs])   # input order, like Sandbox
        print(pool.report.format())                                      # nodes, jobs, retries

:class:`RayPool` has the job-running surface of :class:`~sf_sandbox.Sandbox` (``run``,
``run_many``, ``arun``, ``arun_many``, ``limits``, context manager), so code written for one
machine (sf-bench's ``CodeScorer(sandbox=...)``, for instance) runs on a cluster unchanged.

How it works. At :meth:`RayPool.start` one :class:`NodePool` actor is placed on every alive node
(``NodeAffinitySchedulingStrategy``, hard affinity, ``num_cpus=0``: the work runs in containers,
outside Ray's CPU accounting). Each actor owns one :class:`~sf_sandbox.Sandbox` that talks to its
node's own Docker engine (``DOCKER_HOST`` of the node's environment, or ``docker_host=``) and
removes the labelled containers that dead owners left there when it starts and stops. Jobs of
every call wait in one queue; each node keeps ``inflight`` batches in flight and, whenever one
returns, takes its share of the queue as the next batch (see :class:`RayPool`), so Ray's per-call
cost (about a millisecond) is paid once per batch and faster nodes get more work.

Faults. A node is lost when its actor dies (raylet, worker process or machine gone) or when a batch
comes back with ``sandbox_error`` results and the node's engine no longer answers a ping. The
batch's unfinished jobs (all of it when the actor died; its ``sandbox_error`` jobs when the engine
vanished) go back to the front of the queue and run on the remaining nodes. Every job's result is
recorded exactly once, in its input position; :attr:`RayPool.report` lists what was retried and
why. When no node is left, the remaining jobs get ``sandbox_error`` results (never an exception),
as a single machine's pool does when its engine goes away. Nodes that join after ``start`` are not
used (create a new pool to pick them up).

Host calls on the nodes. A job's host calls are answered on the node that runs it, never on the
driver. ``host_calls=`` pickles ready-made functions to every node. ``node_host=`` is for a host
side that must be *built* on the node (a client with a connection pool, a database handle) or
that keeps per-job state: a picklable zero-argument factory, called once in each node's actor,
returning a :class:`NodeHost`, which gives the node's host calls and is told when each job starts
and ends; what it puts in the job's :attr:`Result.host_data <sf_sandbox.Result.host_data>` travels
back with the result (sf-workflows uses it to answer a workflow's LLM calls with an executor
built on the node and to bring the run's token and cost accounting back to the driver).

Requires the ``ray`` extra: ``pip install "sf-sandbox[ray]"``; ``sf_sandbox`` (with the same image)
must be installed on every node. Ray is imported only when a pool starts.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from sf_sandbox.errors import MissingDependencyError, SandboxConfigError, SandboxError
from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.preload import Preload
from sf_sandbox.result import Result, Status

if TYPE_CHECKING:
    from sf_sandbox.hostcalls import HostFunction

__all__ = [
    "MissingDependencyError",
    "NodeHost",
    "NodePool",
    "NodeReport",
    "RayPool",
    "RayReport",
    "Retry",
    "require_ray",
]

Progress = Callable[[int, int], None]

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
        """The host functions this node's jobs may call (merged with ``RayPool(host_calls=...)``;
        a name given by both is a :class:`~sf_sandbox.SandboxConfigError` on that node)."""
        ...

    def job_started(self, job: Job) -> None:
        """Called before ``job`` is handed to the node's sandbox (and before any of its host calls)."""
        ...

    def job_finished(self, job: Job, result: Result) -> Result:
        """Called once the job has ended; returns the result the driver gets (usually ``result``
        with :attr:`~sf_sandbox.Result.host_data` added). Called for every job that was started,
        whatever its status, also when the node's engine failed under it."""
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
        image: str | None,
        limits: Limits,
        pool_size: int,
        host_calls: Mapping[str, HostFunction] | None,
        docker_host: str | None,
        node_host: NodeHostFactory | None = None,
        preload: Preload | None = None,
    ) -> None:
        """See the class docstring."""
        if docker_host:
            os.environ["DOCKER_HOST"] = docker_host
        self.preload = preload
        self.pool_size = pool_size
        self.image = image
        self.limits = limits
        self.host_calls = dict(host_calls or {})
        self.node_host_factory = node_host
        self.host: NodeHost | None = None
        self.sandbox: Any = None
        self.jobs = 0

    def start(self) -> dict[str, Any]:
        """Build the node host (``node_host``), remove containers left by dead owners on this
        node's engine, warm the pool.

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
            if not isinstance(host, NodeHost):
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
        self.sandbox = Sandbox(
            image=self.image,
            limits=self.limits,
            pool_size=self.pool_size,
            host_calls=calls or None,
            preload=self.preload,
        )
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


# ------------------------------------------------------------------------------------------ report
@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """One job that ran again on another node because its first node was lost."""

    index: int
    """The job's position in its ``run_many`` call."""
    job_id: str | None
    """The job's ``id``."""
    node: str
    """Short id of the node it was taken from."""
    reason: str
    """Why that node was given up (``raylet or actor died: ...``, ``docker engine gone``)."""


@dataclass(slots=True, kw_only=True)
class NodeReport:
    """What one node did for the pool."""

    node_id: str
    """Ray node id (hex)."""
    address: str = ""
    """The node's IP address as Ray knows it."""
    hostname: str = ""
    docker_host: str = ""
    """The engine the node's pool talks to (``default``: the local socket)."""
    pool_size: int = 0
    jobs: int = 0
    """Results this node delivered (retried jobs count where they finally ran)."""
    batches: int = 0
    removed_at_start: int = 0
    """Leftover containers of dead owners removed when the pool started."""
    removed_at_stop: int = 0
    lost: str | None = None
    """Why the node was given up; ``None`` while it is in use."""

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the node id."""
        return self.node_id[:8]


@dataclass(slots=True, kw_only=True)
class RayReport:
    """What a :class:`RayPool` did: per-node figures, lost nodes and every retried job."""

    nodes: list[NodeReport] = field(default_factory=list)
    retried: list[Retry] = field(default_factory=list)
    failed_over: int = 0
    """Jobs that got ``sandbox_error`` because no node was left to run them."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Nodes whose pool could not start (node id → reason); they get no work."""

    @property
    def lost(self) -> list[NodeReport]:
        """The nodes given up during the run."""
        return [n for n in self.nodes if n.lost]

    def format(self) -> str:
        """A few human-readable lines: nodes and their jobs, lost nodes, retried jobs."""
        used = self.nodes
        lines = [
            f"ray: {len(used)} node(s), {sum(n.jobs for n in used)} job(s): "
            + ", ".join(
                f"{n.short_id} ({n.address or '?'}, pool {n.pool_size}) {n.jobs}"
                + (" LOST" if n.lost else "")
                for n in used
            )
        ]
        for node_id, why in self.skipped.items():
            lines.append(f"ray: node {node_id[:8]} not used: {why}")
        for n in self.lost:
            moved = [r for r in self.retried if r.node == n.short_id]
            names = ", ".join(r.job_id or f"#{r.index}" for r in moved[:10])
            more = f" and {len(moved) - 10} more" if len(moved) > 10 else ""
            lines.append(
                f"ray: node {n.short_id} lost ({n.lost}); {len(moved)} unfinished job(s) retried "
                f"on other nodes" + (f": {names}{more}" if moved else "")
            )
        if self.failed_over:
            lines.append(f"ray: {self.failed_over} job(s) got sandbox_error: no node was left to run them")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        from dataclasses import asdict

        return {
            "nodes": [asdict(n) for n in self.nodes],
            "retried": [asdict(r) for r in self.retried],
            "failed_over": self.failed_over,
            "skipped": dict(self.skipped),
        }


# ------------------------------------------------------------------------------------------ driver
class _Call:
    """One run_many/arun call: its jobs, their result slots, and the future its caller waits on."""

    def __init__(self, jobs: list[Job], progress: Callable[..., None]) -> None:
        self.jobs = jobs
        self.results: list[Result | None] = [None] * len(jobs)
        self.missing = len(jobs)
        self.progress = progress
        self.future: concurrent.futures.Future[list[Result]] = concurrent.futures.Future()
        self.lock = threading.Lock()
        """Orders progress reports; taken before (never while holding) the pool's condition."""


@dataclass(slots=True)
class _Entry:
    """One job waiting for a node: the call it belongs to and its index there."""

    call: _Call
    index: int


@dataclass(slots=True)
class _Node:
    report: NodeReport
    actor: Any
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.report.lost is None


class RayPool:
    """Sandbox pools on every node of a Ray cluster, behind the :class:`~sf_sandbox.Sandbox` API.

    Results come back in input order; a job's failure never raises (see the module docstring for
    what happens when a node dies). Thread-safe; the async methods may be used from any loop.

    Jobs from every concurrent call share one queue. Each node has ``inflight`` slots; a free
    slot takes ``ceil(queued / slots)`` jobs (at least 1, at most 256) or ``batch_size`` when set,
    and sends them to its node in one Ray call. So a large ``run_many`` is cut into shrinking
    batches (big ones first, small ones at the end so the nodes finish together), and many
    concurrent one-job ``arun`` calls (sf-bench streams code answers that way) are batched
    whenever the nodes are busy.

    Args:
        address: the cluster to join: ``"auto"`` (the cluster ``ray start`` made on this machine),
            ``"HOST:PORT"`` (its head), or ``"local"`` (a fresh one-node Ray on this machine);
            ``None`` means ``"auto"``. When this process is already connected to Ray, that
            connection is used whatever ``address`` says (and is left open by :meth:`close`).
        image: the sandbox image (it must be present on every node's engine).
        limits: limits of every job (per-job ``Job.limits`` still apply).
        pool_size: warm containers per node, the most jobs a node runs at once; ``None``: the
            node's CPU count in Ray.
        host_calls: host functions, run on the node that runs the job (so they must pickle).
        node_host: a picklable zero-argument factory run once on every node, returning that
            node's :class:`NodeHost` (host calls built on the node, per-job hooks; see the
            module docstring). A node whose factory raises is not used.
        docker_host: the engine of every node (``"unix:///run/docker.sock"``), or a mapping from Ray
            node id (hex) to engine; ``None`` (and nodes not in the mapping): the node's own
            ``DOCKER_HOST``, else its default local socket.
        batch_size: jobs per Ray call; ``None``: adaptive (see above).
        inflight: batches each node holds at once (2 keeps its pool busy between batches).
        nodes: restrict the pool to these Ray node ids (hex).
        init_kwargs: extra arguments for ``ray.init`` when this pool connects.
        preload: trusted code every job on every node starts with imported
            (:class:`~sf_sandbox.preload.Preload`).

    Raises (on start):
        MissingDependencyError: Ray is not installed.
        SandboxConfigError: the cluster cannot be joined.
        SandboxError: no node could start a pool (the message gives each node's reason).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        image: str | None = None,
        limits: Limits | None = None,
        pool_size: int | None = None,
        host_calls: Mapping[str, HostFunction] | None = None,
        node_host: NodeHostFactory | None = None,
        docker_host: str | Mapping[str, str] | None = None,
        batch_size: int | None = None,
        inflight: int = 2,
        nodes: Sequence[str] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        preload: Preload | None = None,
    ) -> None:
        """See the class docstring."""
        if preload is not None and not isinstance(preload, Preload):
            raise SandboxConfigError("preload must be an sf_sandbox.Preload")
        self.preload = preload
        if pool_size is not None and pool_size < 1:
            raise SandboxConfigError(f"pool_size must be >= 1, got {pool_size}")
        if batch_size is not None and batch_size < 1:
            raise SandboxConfigError(f"batch_size must be >= 1, got {batch_size}")
        if inflight < 1:
            raise SandboxConfigError(f"inflight must be >= 1, got {inflight}")
        self.address = address
        self.image = image
        self.limits = limits or Limits()
        self.pool_size = pool_size
        self.host_calls = dict(host_calls) if host_calls else None
        if node_host is not None and not callable(node_host):
            raise SandboxConfigError("node_host must be a zero-argument callable that returns a NodeHost")
        self.node_host = node_host
        self.docker_host = docker_host
        self.batch_size = batch_size
        self.inflight = inflight
        self.only_nodes = set(nodes) if nodes is not None else None
        self.init_kwargs = dict(init_kwargs or {})
        self.report = RayReport()
        """Cumulative report over the pool's lifetime (see :class:`RayReport`)."""
        self._nodes: list[_Node] = []
        self._pending: collections.deque[_Entry] = collections.deque()
        self._cond = threading.Condition()
        self._start_lock = threading.Lock()
        self._started = False
        self._closed = False
        self._owns_ray = False
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="sf-ray-start"
        )

    # ---------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    @property
    def nodes(self) -> list[NodeReport]:
        """The nodes in use (or lost), as :class:`NodeReport` s."""
        return [n.report for n in self._nodes]

    def start(self) -> None:
        """Connect to Ray, place and warm one pool per alive node. Idempotent.

        Raises:
            MissingDependencyError: Ray is not installed.
            SandboxConfigError: the cluster cannot be joined.
            SandboxError: no node could start a pool.
        """
        with self._start_lock:
            if self._closed:
                raise SandboxError("the Ray pool is closed")
            if not self._started:
                self._start()

    def _start(self) -> None:
        ray = require_ray()
        if not ray.is_initialized():
            kwargs = {"logging_level": "warning", "log_to_driver": False, **self.init_kwargs}
            address = self.address or "auto"
            try:
                ray.init(address=None if address == "local" else address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise SandboxConfigError(
                    f"cannot join the Ray cluster at {address!r}: {exc} (start one with `ray start --head`, "
                    "or pass its HEAD_IP:PORT)"
                ) from None
            self._owns_ray = True
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote_cls = ray.remote(NodePool)
        alive = [n for n in ray.nodes() if n.get("Alive")]
        if self.only_nodes is not None:
            alive = [n for n in alive if n["NodeID"] in self.only_nodes]
        if not alive:
            self._release_ray(ray)
            raise SandboxError(
                "the Ray cluster has no alive node"
                + (" among the nodes= given" if self.only_nodes is not None else "")
            )
        candidates = []
        for info in alive:
            node_id = info["NodeID"]
            size = self.pool_size or max(1, int((info.get("Resources") or {}).get("CPU") or 1))
            host = (
                self.docker_host.get(node_id) if isinstance(self.docker_host, Mapping) else self.docker_host
            )
            actor = remote_cls.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                num_cpus=0,
                max_concurrency=self.inflight + 2,
                max_restarts=0,
            ).remote(
                image=self.image,
                limits=self.limits,
                pool_size=size,
                host_calls=self.host_calls,
                docker_host=host,
                node_host=self.node_host,
                preload=self.preload,
            )
            address = str(info.get("NodeManagerAddress") or "")
            report = NodeReport(node_id=node_id, address=address, pool_size=size)
            candidates.append((_Node(report=report, actor=actor), actor.start.remote()))
        for node, ref in candidates:
            try:
                facts = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - reported per node; other nodes may work
                self.report.skipped[node.report.node_id] = _cause(exc)
                _kill(ray, node.actor)
                continue
            node.report.hostname = facts["hostname"]
            node.report.docker_host = facts["docker_host"]
            node.report.removed_at_start = len(facts["removed"])
            self._nodes.append(node)
        if not self._nodes:
            reasons = "; ".join(f"node {k[:8]}: {v}" for k, v in self.report.skipped.items())
            self._release_ray(ray)
            raise SandboxError(f"no Ray node could start a sandbox pool: {reasons}")
        self.report.nodes = [n.report for n in self._nodes]
        self._started = True
        for node in self._nodes:
            for k in range(self.inflight):
                t = threading.Thread(
                    target=self._serve, args=(node,), daemon=True, name=f"sf-ray-{node.report.short_id}-{k}"
                )
                node.threads.append(t)
                t.start()

    def _release_ray(self, ray: Any) -> None:
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def close(self) -> None:
        """Stop every node's pool (containers removed), release the actors. Safe to call twice.

        Jobs still queued get ``sandbox_error`` results.
        """
        with self._start_lock:
            with self._cond:
                if self._closed:
                    return
                self._closed = True
                orphans, self._pending = list(self._pending), collections.deque()
                self._cond.notify_all()
            self._fail(orphans, "the Ray pool is closed", count=False)
            if self._started:
                ray = require_ray()
                refs = [(n, n.actor.close.remote()) for n in self._nodes if n.alive]
                for node, ref in refs:
                    try:
                        node.report.removed_at_stop = len(ray.get(ref, timeout=120))
                    except Exception:  # noqa: BLE001 - a node that died at the end has nothing to close
                        pass
                for node in self._nodes:
                    _kill(ray, node.actor)
                for node in self._nodes:
                    for t in node.threads:
                        t.join(timeout=5)
                self._release_ray(ray)
            self._threads.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------------------- running
    def run(self, job: Job) -> Result:
        """Run one job on some node and return its result (never raises for what the job does)."""
        return self.run_many([job])[0]

    def run_many(
        self, jobs: Iterable[Job], *, concurrency: int | None = None, progress: bool | Progress = False
    ) -> list[Result]:
        """Run ``jobs`` across the cluster; results come back in input order.

        Args:
            jobs: the jobs.
            concurrency: accepted for :class:`~sf_sandbox.Sandbox` compatibility (must be >= 1);
                each node runs up to its ``pool_size`` jobs at once whatever the calls ask.
            progress: a callback ``(done, total)`` or True for a line on stderr.

        After :meth:`close` every job gets a ``sandbox_error`` result, as with a closed ``Sandbox``.

        Raises:
            SandboxConfigError: a non-Job in ``jobs``, ``concurrency < 1``, or the cluster
                cannot be joined (first use).
            SandboxError: no node could start a pool (first use).
        """
        if not self._closed:
            self.start()
        return self._submit(jobs, concurrency, progress).result()

    async def arun(self, job: Job) -> Result:
        """Async :meth:`run` (host calls run on the node, not on the calling loop)."""
        return (await self.arun_many([job]))[0]

    async def arun_many(
        self, jobs: Iterable[Job], *, concurrency: int | None = None, progress: bool | Progress = False
    ) -> list[Result]:
        """Async :meth:`run_many` (input order kept)."""
        if not self._started and not self._closed:
            await asyncio.get_running_loop().run_in_executor(self._threads, self.start)
        return await asyncio.wrap_future(self._submit(jobs, concurrency, progress))

    def _submit(
        self, jobs: Iterable[Job], concurrency: int | None, progress: bool | Progress
    ) -> concurrent.futures.Future[list[Result]]:
        """Queue ``jobs`` (never blocks); the future completes when every one has a result."""
        from sf_sandbox.sandbox import _progress

        jobs = list(jobs)
        for job in jobs:
            if not isinstance(job, Job):
                raise SandboxConfigError(f"expected a sf_sandbox.Job, got {type(job).__name__}")
        if concurrency is not None and concurrency < 1:
            raise SandboxConfigError("concurrency must be >= 1")
        call = _Call(jobs, _progress(progress, len(jobs)))
        if not jobs:
            call.future.set_result([])
            return call.future
        entries = [_Entry(call, i) for i in range(len(jobs))]
        with self._cond:
            closed = self._closed
            nobody = not any(n.alive for n in self._nodes)
            if not closed and not nobody:
                self._pending.extend(entries)
                self._cond.notify_all()
        if closed:
            self._fail(entries, "the Ray pool is closed", count=False)
        elif nobody:
            self._fail(entries, "no Ray node with a working sandbox pool is left")
        return call.future

    # ---------------------------------------------------------------------------- dispatch
    def _serve(self, node: _Node) -> None:
        """One of a node's ``inflight`` slots: take a share of the queue, run it there, repeat."""
        while True:
            with self._cond:
                while not self._closed and node.alive and not self._pending:
                    self._cond.wait()
                if self._closed or not node.alive:
                    return
                if self.batch_size:
                    take = self.batch_size
                else:
                    slots = self.inflight * max(1, sum(1 for n in self._nodes if n.alive))
                    take = min(256, -(-len(self._pending) // slots))
                batch = [self._pending.popleft() for _ in range(min(take, len(self._pending)))]
            self._execute(node, batch)

    def _execute(self, node: _Node, batch: list[_Entry]) -> None:
        ray = require_ray()
        jobs = [e.call.jobs[e.index] for e in batch]
        try:
            results = ray.get(node.actor.run_batch.remote(jobs))
        except Exception as exc:  # noqa: BLE001 - the node cannot be trusted with more work
            if isinstance(exc, ray.exceptions.RayActorError):
                reason = f"raylet or actor died: {_cause(exc)}"
            elif not self._engine_alive(node):
                reason = f"docker engine gone ({_cause(exc)})"
            else:
                reason = f"its pool failed: {_cause(exc)}"
            self._lose(node, reason)
            self._retry(batch, node)
            return
        broken = {k for k, r in enumerate(results) if r.status is Status.SANDBOX_ERROR}
        if broken and not self._engine_alive(node):
            self._lose(node, "docker engine gone")
        else:
            broken = set()
        with self._cond:
            node.report.batches += 1
            node.report.jobs += len(batch) - len(broken)
        for k, entry in enumerate(batch):
            if k not in broken:
                self._finish(entry.call, entry.index, results[k])
        if broken:
            self._retry([batch[k] for k in sorted(broken)], node)

    def _engine_alive(self, node: _Node) -> bool:
        ray = require_ray()
        try:
            return bool(ray.get(node.actor.engine_alive.remote(), timeout=60))
        except Exception:  # noqa: BLE001 - actor gone too
            return False

    def _lose(self, node: _Node, reason: str) -> None:
        with self._cond:
            if node.report.lost is None:
                node.report.lost = reason
            orphans: list[_Entry] = []
            if not any(n.alive for n in self._nodes):  # nobody left to take the queued jobs
                orphans, self._pending = list(self._pending), collections.deque()
            self._cond.notify_all()
        _kill(require_ray(), node.actor)
        self._fail(orphans, f"no Ray node with a working sandbox pool is left ({reason})")

    def _retry(self, entries: list[_Entry], node: _Node) -> None:
        reason = node.report.lost or "node lost"
        with self._cond:
            for e in entries:
                self.report.retried.append(
                    Retry(
                        index=e.index,
                        job_id=e.call.jobs[e.index].id,
                        node=node.report.short_id,
                        reason=reason,
                    )
                )
            if any(n.alive for n in self._nodes) and not self._closed:
                self._pending.extendleft(reversed(entries))  # first in line, in their order
                self._cond.notify_all()
                return
        self._fail(entries, f"no Ray node with a working sandbox pool is left ({reason})")

    def _fail(self, entries: list[_Entry], why: str, *, count: bool = True) -> None:
        if count:
            with self._cond:
                self.report.failed_over += len(entries)
        for e in entries:
            self._finish(
                e.call, e.index, Result(status=Status.SANDBOX_ERROR, error=why, id=e.call.jobs[e.index].id)
            )

    def _finish(self, call: _Call, index: int, result: Result) -> None:
        with call.lock:
            with self._cond:
                if call.results[index] is not None:  # exactly once: a late duplicate is dropped
                    return
                call.results[index] = result
                call.missing -= 1
                done = len(call.jobs) - call.missing
            call.progress(done)
            if done == len(call.jobs):
                call.progress(done, final=True)
                call.future.set_result([r for r in call.results if r is not None])


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already dead
        pass


def _cause(exc: BaseException) -> str:
    """A one-line reason from a Ray exception (the exception a task raised, when there is one)."""
    cause = getattr(exc, "cause", None)
    base = cause if isinstance(cause, BaseException) else exc
    lines = [line.strip() for line in str(base).splitlines() if line.strip()]
    return f"{type(base).__name__}: {lines[0] if lines else ''}"[:300]
