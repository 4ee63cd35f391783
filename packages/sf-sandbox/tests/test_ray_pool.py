"""RayPool on a real 2-node Ray cluster (one machine, every listener on 127.0.0.1).

Each node has its own dockerd: same results as one local pool, node deaths lose nothing, timeouts
hold, cleanup.

The cluster is shared with other packages' Ray tests in the same pytest process
(``sf_sandbox.testing.shared_ray_cluster``); faults are injected from inside a job, through a host
call that runs on the node itself, so a node dies exactly while it holds unfinished work.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sf_sandbox import Job, Limits, Result, Sandbox, SandboxConfigError, SandboxError, Status
from sf_sandbox.testing import (
    LocalRayCluster,
    descendants,
    listeners,
    require_ray_cluster,
    shared_ray_cluster,
)

pytestmark = pytest.mark.docker


# ----------------------------------------------------------------------------------- no cluster
def test_jobs_and_results_survive_pickling() -> None:
    job = Job(
        source="print(1)",
        stdin=b"in",
        files={"a/b.txt": b"x"},
        collect=("o",),
        env={"K": "v"},
        args=("1",),
        limits=Limits(timeout=2.5, output_bytes=10),
        id="j1",
    )
    result = Result(
        status=Status.TIMEOUT, exit_code=-9, stdout_bytes=b"\xff", files={"o": b"y"}, error="t", id="j1"
    )
    assert pickle.loads(pickle.dumps(job)) == job
    back = pickle.loads(pickle.dumps(result))
    assert back == result and back.status is Status.TIMEOUT and back.stdout_lossy


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sf_sandbox.ray_pool import MissingDependencyError, RayPool

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "sf-sandbox\[ray\]"'):
        RayPool().start()


def test_bad_options_are_config_errors() -> None:
    from sf_sandbox.ray_pool import RayPool

    for kwargs in ({"pool_size": 0}, {"batch_size": 0}, {"inflight": 0}, {"node_host": 3}):
        with pytest.raises(SandboxConfigError):
            RayPool(**kwargs)


# ----------------------------------------------------------------------------------- cluster
@pytest.fixture(scope="session")  # one cluster for every Ray test of the session (shared_ray_cluster)
def cluster() -> Iterator[LocalRayCluster]:
    require_ray_cluster()
    with shared_ray_cluster() as c:
        yield c


@pytest.fixture
def healthy(cluster: LocalRayCluster) -> LocalRayCluster:
    """The cluster with both engines and both raylets up (a fault test before may have killed one)."""
    cluster.heal()
    return cluster


def _key(r: Result) -> tuple[Any, ...]:
    return (
        r.id,
        r.status,
        r.exit_code,
        r.stdout_bytes,
        r.stderr_bytes,
        r.stdout_truncated,
        r.stderr_truncated,
        dict(r.files),
        r.error,
    )


def _host_functions() -> dict[str, Any]:
    def double(x: int) -> int:  # nested, so cloudpickle ships it by value to the node actors
        return 2 * x

    return {"double": double}


MIXED = [
    Job(source="print('hello')", id="ok"),
    Job(source="import sys\nprint('bad', file=sys.stderr)\nsys.exit(3)", id="exit3"),
    Job(source="import sys\nprint(sys.stdin.read().upper())", stdin=b"shout", id="stdin"),
    Job(
        source="open('out.txt','w').write(open('in.txt').read()[::-1])",
        files={"in.txt": b"abc"},
        collect=("out.txt",),
        id="files",
    ),
    Job(
        source="import os, sys\nprint(os.environ['K'], sys.argv[1:])",
        env={"K": "v"},
        args=("a", "b"),
        id="env",
    ),
    Job(argv=("sh", "-c", "echo from-sh"), id="argv"),
    Job(argv=("no-such-command",), id="missing-cmd"),  # a genuine sandbox_error: the node stays in use
    Job(source="while True:\n    print('x' * 100)", limits=Limits(output_bytes=10), id="flood"),
    Job(source="while True:\n    pass", limits=Limits(timeout=1.0), id="hang"),
    Job(source="from sf_host import call\nprint(call('double', 21))", id="hostcall"),
    *[Job(source=f"print(sum(range({i})))", id=f"n{i}") for i in range(10)],
]


def test_every_listener_is_on_loopback(cluster: LocalRayCluster) -> None:
    pids = cluster.pids()
    engines = [e for e in cluster.engines if e is not None]
    assert len(engines) == 2 and all(e.pid in pids for e in engines)
    assert all(cluster.raylet_pid(i) in pids for i in range(2))
    found = listeners(pids + [os.getpid()])
    ports = {port for _, proto, _, port in found if proto == "tcp"}
    assert int(cluster.address.rsplit(":", 1)[1]) in ports  # the GCS is among what was checked
    assert found and all(ip == "127.0.0.1" for _, _, ip, _ in found), found
    engine_pids = set(descendants([e.pid for e in engines if e.pid]))
    assert not [f for f in found if f[0] in engine_pids], (
        "dockerd/containerd must listen on unix sockets only"
    )


def test_results_equal_a_local_pool_and_containers_are_cleaned(healthy: LocalRayCluster) -> None:
    from sf_sandbox.ray_pool import RayPool

    # a leftover of a dead owner on each node's engine: the node pools remove it when they start
    for engine in healthy.engines:
        assert engine is not None
        client = engine.client()
        client.containers.create(
            "sf-sandbox:py3",
            command=["true"],
            labels={
                "sf-sandbox": "1",
                "sf-sandbox.owner-host": socket.gethostname(),
                "sf-sandbox.owner-pid": "1",
                "sf-sandbox.owner-start": "-1",
            },
        )
        client.close()
    limits = Limits(timeout=5)
    with Sandbox(limits=limits, pool_size=2, host_calls=_host_functions()) as local:
        expected = local.run_many(MIXED, concurrency=2)
    with RayPool(limits=limits, host_calls=_host_functions(), batch_size=3) as pool:
        got = pool.run_many(MIXED)
        report = pool.report
        assert [n.removed_at_start for n in report.nodes] == [1, 1]
        assert [r.id for r in got] == [j.id for j in MIXED]
        assert [_key(r) for r in got] == [_key(r) for r in expected]
        assert got[MIXED.index(next(j for j in MIXED if j.id == "hang"))].status is Status.TIMEOUT
        assert all(n.jobs > 0 for n in report.nodes) and sum(n.jobs for n in report.nodes) == len(MIXED)
        assert not report.retried and not report.lost
    for engine in healthy.engines:
        assert engine is not None
        client = engine.client()
        assert client.api.containers(all=True, filters={"label": "sf-sandbox=1"}) == []
        client.close()


def test_hanging_job_times_out_as_locally(healthy: LocalRayCluster) -> None:
    import asyncio

    from sf_sandbox.ray_pool import RayPool

    hang = [
        Job(source="import time\nwhile True:\n    time.sleep(0.01)", limits=Limits(timeout=0.5), id=f"h{i}")
        for i in range(2)
    ]
    with Sandbox(pool_size=1) as local:
        want = local.run(hang[0])
    with RayPool() as pool:
        got = asyncio.run(pool.arun_many(hang))
    assert want.status is Status.TIMEOUT and want.exit_code == -9
    assert [(r.status, r.exit_code, r.id) for r in got] == [
        (Status.TIMEOUT, -9, "h0"),
        (Status.TIMEOUT, -9, "h1"),
    ]
    assert all(0.5 <= r.duration < 3 for r in got)


def _slow_jobs(n: int) -> list[Job]:
    src = "from sf_host import call\ncall('fault')\nimport time\ntime.sleep(0.1)\nprint({i})"
    return [Job(source=src.format(i=i), id=f"s{i}") for i in range(n)]


def _kill_engine_of(host: str, pid: int) -> Any:
    def fault() -> None:  # runs inside the node's actor: only node `host` kills its own engine
        if os.environ.get("DOCKER_HOST") == host:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    return fault


def test_engine_death_mid_run_loses_nothing(healthy: LocalRayCluster) -> None:
    from sf_sandbox.ray_pool import RayPool

    victim = healthy.engines[1]
    assert victim is not None and victim.pid
    jobs = _slow_jobs(12)
    with RayPool(host_calls={"fault": _kill_engine_of(victim.host, victim.pid)}, batch_size=2) as pool:
        results = pool.run_many(jobs)
        report = pool.report
    assert [(r.id, r.status, r.stdout) for r in results] == [
        (f"s{i}", Status.OK, f"{i}\n") for i in range(12)
    ]
    lost = {n.docker_host: n for n in report.nodes if n.lost}
    assert list(lost) == [victim.host] and "docker engine gone" in (lost[victim.host].lost or "")
    assert report.retried and {r.node for r in report.retried} == {lost[victim.host].short_id}
    assert sum(n.jobs for n in report.nodes) == 12 and not report.failed_over
    assert "retried on other nodes" in report.format()


def _kill_node_of(host: str, raylet: int, whole_node: bool) -> Any:
    def fault() -> None:  # the raylet dies; with whole_node, every process under it too (this actor)
        if os.environ.get("DOCKER_HOST") == host:
            for pid in descendants([raylet]) if whole_node else [raylet]:
                os.kill(pid, signal.SIGKILL)

    return fault


@pytest.mark.parametrize("whole_node", [False, True], ids=["raylet", "raylet-and-workers"])
def test_node_death_mid_run_loses_nothing(healthy: LocalRayCluster, whole_node: bool) -> None:
    from sf_sandbox.ray_pool import RayPool

    victim = healthy.engines[1]
    assert victim is not None
    fault = _kill_node_of(victim.host, healthy.raylet_pid(1), whole_node)
    jobs = _slow_jobs(12)
    with RayPool(host_calls={"fault": fault}, batch_size=2) as pool:
        results = pool.run_many(jobs)
        report = pool.report
    assert healthy.ray_nodes[1].all_processes["raylet"][0].process.poll() is not None  # it did die mid-run
    assert [(r.id, r.status, r.stdout) for r in results] == [
        (f"s{i}", Status.OK, f"{i}\n") for i in range(12)
    ]
    assert sum(n.jobs for n in report.nodes) == 12 and not report.failed_over
    lost = [n for n in report.nodes if n.lost]
    if whole_node:  # its workers died with it: the unfinished batch must have moved
        assert [n.docker_host for n in lost] == [victim.host] and "raylet or actor died" in (
            lost[0].lost or ""
        )
        assert report.retried and {r.node for r in report.retried} == {lost[0].short_id}
    else:  # an actor may outlive its raylet for a while and still deliver; then nothing needs a retry
        assert [n.docker_host for n in lost] in ([], [victim.host])
        assert bool(report.retried) == bool(lost)


def test_no_node_left_gives_sandbox_errors_not_exceptions(healthy: LocalRayCluster) -> None:
    from sf_sandbox.ray_pool import RayPool

    victim = healthy.engines[1]
    assert victim is not None and victim.pid
    jobs = _slow_jobs(4)
    with RayPool(
        nodes=[healthy.node_id(1)], host_calls={"fault": _kill_engine_of(victim.host, victim.pid)}
    ) as pool:
        results = pool.run_many(jobs)
        assert [r.id for r in results] == [j.id for j in jobs]
        assert all(r.status is Status.SANDBOX_ERROR and "no Ray node" in (r.error or "") for r in results)
        assert pool.report.failed_over == 4
        assert pool.run(Job(source="print(1)")).status is Status.SANDBOX_ERROR
    closed = pool.run(Job(source="print(1)"))  # like a closed Sandbox: a result, not an exception
    assert closed.status is Status.SANDBOX_ERROR and closed.error == "the Ray pool is closed"


def _node_host_factory(fail_on: str | None = None, closed_dir: str | None = None) -> Any:
    """A NodeHost factory; the class is nested so cloudpickle ships it by value to the nodes."""

    class Counter:
        """Host calls built on the node, with per-job state reported back in ``host_data``."""

        def __init__(self) -> None:
            self.where = os.environ.get("DOCKER_HOST", "default")
            self.pid = os.getpid()
            self.calls: dict[str | None, int] = {}

        def host_calls(self) -> dict[str, Any]:
            def bump(n: int) -> int:
                return n + 1

            def tick(job_id: str) -> str:
                self.calls[job_id] += 1
                return self.where

            return {"bump": bump, "tick": tick}

        def job_started(self, job: Job) -> None:
            self.calls[job.id] = 0

        def job_finished(self, job: Job, result: Result) -> Result:
            import dataclasses

            facts = {"node": self.where, "pid": self.pid, "ticks": self.calls.pop(job.id)}
            return dataclasses.replace(result, host_data={**result.host_data, "counter": facts})

        def close(self) -> None:
            if closed_dir is not None:
                with open(os.path.join(closed_dir, f"closed-{self.pid}"), "w"):
                    pass

    def factory() -> Counter:
        if fail_on is not None and os.environ.get("DOCKER_HOST") == fail_on:
            raise RuntimeError("no executor key on this node")
        return Counter()

    return factory


def test_node_host_is_built_on_each_node_and_reports_per_job(healthy: LocalRayCluster, tmp_path: Any) -> None:
    from sf_sandbox.ray_pool import RayPool

    src = "from sf_host import call\nfor _ in range({n}):\n    where = call('tick', {id!r})\nprint(where)"
    jobs = [Job(source=src.format(n=i % 3 + 1, id=f"t{i}"), id=f"t{i}") for i in range(8)]
    jobs.append(Job(source="from sf_host import call\nprint(call('double', call('bump', 1)))", id="both"))
    factory = _node_host_factory(closed_dir=str(tmp_path))
    with RayPool(node_host=factory, host_calls=_host_functions(), batch_size=2) as pool:
        results = pool.run_many(jobs)
    assert len(list(tmp_path.glob("closed-*"))) == 2  # each node's host was closed with its pool
    hosts = {e.host for e in healthy.engines if e is not None}
    assert [r.status for r in results] == [Status.OK] * 9, [r.error or r.stderr for r in results]
    for i, r in enumerate(results[:8]):
        facts = r.host_data["counter"]
        assert facts["ticks"] == i % 3 + 1 and facts["node"] == r.stdout.strip() and facts["node"] in hosts
        assert facts["pid"] != os.getpid()  # answered in the node's actor, not by the driver
    assert {r.host_data["counter"]["node"] for r in results} == hosts  # both nodes took part
    assert results[-1].stdout == "4\n" and results[-1].host_data["counter"]["ticks"] == 0

    # a node whose factory fails stays out, with the factory's reason; the others do the work
    victim = healthy.engines[1]
    assert victim is not None
    with RayPool(node_host=_node_host_factory(fail_on=victim.host)) as pool:
        results = pool.run_many(jobs[:4])
        report = pool.report
    assert [r.status for r in results] == [Status.OK] * 4
    assert [n.docker_host for n in report.nodes] == [healthy.engines[0].host]  # type: ignore[union-attr]
    assert list(report.skipped.values()) == ["RuntimeError: no executor key on this node"]

    clash = RayPool(node_host=_node_host_factory(), host_calls={"bump": abs})
    with pytest.raises(SandboxError, match="bump.*given both by host_calls= and by node_host="):
        clash.start()
    clash.close()
