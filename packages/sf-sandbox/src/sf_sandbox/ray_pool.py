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
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sf_sandbox._ray_dispatch import Call, Dispatch, Entry, Node, kill_actor, ray_cause
from sf_sandbox._ray_node import INSTALL_HINT, NodeHost, NodeHostFactory, NodePool, require_ray
from sf_sandbox._ray_report import NodeReport, RayReport, Retry
from sf_sandbox.errors import MissingDependencyError, SandboxConfigError, SandboxError
from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.pool import PoolBase, Progress, check_jobs, progress_reporter
from sf_sandbox.preload import Preload
from sf_sandbox.result import Result
from sf_sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from sf_sandbox.hostcalls import HostFunction

__all__ = [
    "INSTALL_HINT",
    "MissingDependencyError",
    "NodeHost",
    "NodeHostFactory",
    "NodePool",
    "NodeReport",
    "RayPool",
    "RayReport",
    "Retry",
    "require_ray",
]


class RayPool(PoolBase, Dispatch):
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
        settings: how every node's pool is opened (:class:`~sf_sandbox.settings.SandboxSettings`:
            image, runtime, limits, containers per node, preload; docker backend only); the
            keywords below that repeat a setting override it.
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
        settings: SandboxSettings | None = None,
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
        runtime: str | None = None,
    ) -> None:
        """See the class docstring."""
        # callers without a type checker may pass anything
        if preload is not None and not isinstance(cast(object, preload), Preload):
            raise SandboxConfigError("preload must be an sf_sandbox.Preload")
        if pool_size is not None and pool_size < 1:
            raise SandboxConfigError(f"pool_size must be >= 1, got {pool_size}")
        self.settings = SandboxSettings.given(settings).merge(
            image=image, limits=limits, pool_size=pool_size, preload=preload, runtime=runtime
        )
        """How every node's pool is opened; ``pool_size`` ``None``: each node's CPU count."""
        if self.settings.backend != "docker":
            raise SandboxConfigError(
                f"RayPool runs the docker backend on every node, not {self.settings.backend!r}"
            )
        if batch_size is not None and batch_size < 1:
            raise SandboxConfigError(f"batch_size must be >= 1, got {batch_size}")
        if inflight < 1:
            raise SandboxConfigError(f"inflight must be >= 1, got {inflight}")
        self.address = address
        self.image = self.settings.image
        self.limits = self.settings.limits
        self.preload = self.settings.preload
        self.pool_size = self.settings.pool_size
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
        self._nodes: list[Node] = []
        self._pending: collections.deque[Entry] = collections.deque()
        self._cond = threading.Condition()
        self._start_lock = threading.Lock()
        self._started = False
        self._closed = False
        self._owns_ray = False
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="sf-ray-start"
        )

    # ---------------------------------------------------------------------------- lifecycle
    # (entering starts, leaving closes: sf_sandbox.pool.PoolBase)
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
        candidates: list[tuple[Node, Any]] = []  # a node and the Ray ref of its pool's start
        for info in alive:
            node_id = info["NodeID"]
            resources: Mapping[str, Any] = info.get("Resources") or {}
            size = self.pool_size or max(1, int(resources.get("CPU") or 1))
            host = (
                self.docker_host.get(node_id) if isinstance(self.docker_host, Mapping) else self.docker_host
            )
            actor = remote_cls.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                num_cpus=0,
                max_concurrency=self.inflight + 2,
                max_restarts=0,
            ).remote(
                settings=self.settings.merge(pool_size=size),
                host_calls=self.host_calls,
                docker_host=host,
                node_host=self.node_host,
            )
            address = str(info.get("NodeManagerAddress") or "")
            report = NodeReport(node_id=node_id, address=address, pool_size=size)
            candidates.append((Node(report=report, actor=actor), actor.start.remote()))
        for node, ref in candidates:
            try:
                facts = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - reported per node; other nodes may work
                self.report.skipped[node.report.node_id] = ray_cause(exc)
                kill_actor(ray, node.actor)
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
                    kill_actor(ray, node.actor)
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
        jobs = check_jobs(jobs)
        if concurrency is not None and concurrency < 1:
            raise SandboxConfigError("concurrency must be >= 1")
        call = Call(jobs, progress_reporter(progress, len(jobs)))
        if not jobs:
            call.future.set_result([])
            return call.future
        entries = [Entry(call, i) for i in range(len(jobs))]
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
