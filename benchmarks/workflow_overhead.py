"""What running workflows in the sandbox costs, against running them in-process (unsafe).

Against a local scripted OpenAI-compatible server with a fixed reply latency, the same N
workflows (sf-workflows' shipped LLM-only workflows, cycled over distinct problems) run
(a) in-process on the host, unsafe, the way AFlow and ScoreFlow execute them
    (``run_workflow_unsafe``), and
(b) through ``run_workflow`` inside sf-sandbox (``open_sandbox``: the operator runtime preloaded
    in every container), at the same concurrency, and
(c) as (b) in a pool without the preload (the runtime zip shipped and imported by every job;
    only with ``--shipped``), and
(d) as (b) with several jobs per container (``jobs_per_container``, "lanes"): ceil(c / lanes)
    containers instead of c (plus ``--spare-containers``, so that a workflow finds a free lane
    while the lanes of the workflows just finished are killed and wiped).
All use the same executor (real openai client over HTTP, cache off, its connection pool sized
for the concurrency) and the same endpoint, which runs in a process of its own so that it shares
neither the event loop nor the GIL with what is measured. Each concurrency runs ``--n`` workflows
(default: 4 x the concurrency, so that throughput is that of a steady state, not of one wave).
Reports, per concurrency, workflows/s against (a), the mean latency per workflow and what each
pool adds to it, the seconds each pool took to be ready, and the CPU time per workflow of this
process and of the pool's containers (where the engine's cgroups can be read). Targets: issue 5,
(b) >= 0.9x (a); issue 17, (d) >= 0.95x (a), < 50 ms added per workflow and ready in < 20 s at
concurrency 128 and 256 with 2 s replies.

    python benchmarks/workflow_overhead.py [--n N] [--concurrency 8 [16 ...]] [--latency 0.05]
        [--jobs-per-container 16] [--spare-containers 0] [--shipped] [--skip-one-job] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sf_sandbox import Sandbox
from sf_workflows import (
    Executor,
    ExecutorConfig,
    Task,
    get_template,
    host_calls,
    open_sandbox,
    run_workflow,
    run_workflow_unsafe,
)
from sf_workflows.testing import ScriptedServer, answer_script

WORKFLOWS = [
    ("cot", "math"),
    ("cot_sc", "math"),
    ("self_refine", "math"),
    ("multipersona", "math"),
    ("medprompt", "qa"),
    ("scoreflow", "qa"),
    ("io", "qa"),
    ("self_refine", "qa"),
]


def items(n: int) -> list[tuple[str, Task]]:
    out = []
    for i in range(n):
        name, task_type = WORKFLOWS[i % len(WORKFLOWS)]
        task = Task(id=f"p{i}", task_type=task_type, prompt=f"Problem {i}: what is {i} plus {i}?")
        out.append((get_template(name, task_type), task))
    return out


async def timed(coro: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - start


def _serve(latency: float, conn: Connection) -> None:
    """The scripted endpoint, in a child process: its URL goes to ``conn``; it stops when told."""
    with ScriptedServer(answer_script("42"), latency=latency) as server:
        conn.send(server.base_url)
        conn.recv()


@contextlib.contextmanager
def endpoint(latency: float) -> Iterator[str]:
    """The base URL of a scripted OpenAI-compatible server running in a process of its own."""
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(latency, theirs), name="scripted-endpoint", daemon=True)
    proc.start()
    try:
        if not mine.poll(60):
            raise SystemExit("the scripted endpoint did not start")
        yield mine.recv()
    finally:
        with contextlib.suppress(OSError):
            mine.send(None)
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def container_cpu_s() -> float | None:
    """CPU seconds used so far by this process's sandbox containers (cgroup v1 or v2), or None.

    None where the engine's cgroups are not readable from here (a remote engine, rootless).
    The pools not being measured sit idle, so the sum is the measured pool's.
    """
    from sf_sandbox.backends.docker import LABEL, docker_client

    client = docker_client()
    try:
        found = client.containers.list(filters={"label": f"{LABEL}.owner-pid={os.getpid()}"})
    finally:
        client.close()
    total = 0.0
    for container in found:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container.id}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container.id}.scope/cpu.stat")
        try:
            if v1.exists():
                total += int(v1.read_text()) / 1e9
            else:
                usec = v2.read_text().split("usage_usec", 1)[1].split()[0]
                total += int(usec) / 1e6
        except (OSError, IndexError, ValueError):
            return None
    return total if found else None


async def run_mode(
    mode: str,
    work: list[tuple[str, Task]],
    executor: Executor,
    sandbox: Any,
    concurrency: int,
    count_cpu: bool = False,
) -> dict[str, Any]:
    """Run ``work`` in ``mode`` at ``concurrency``; the figures of the round.

    ``count_cpu``: also the CPU time of the containers (a docker engine query before and after).
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(source: str, task: Task) -> tuple[Any, float]:
        async with gate:
            if mode == "unsafe":
                return await timed(run_workflow_unsafe(source, task, executor, validate=True))
            return await timed(run_workflow(source, task, executor, sandbox))

    box_before = container_cpu_s() if count_cpu else None
    cpu_before = time.process_time()
    start = time.perf_counter()
    results = await asyncio.gather(*(one(s, t) for s, t in work))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    box_after = container_cpu_s() if count_cpu else None
    failed = [o for o, _ in results if not o.ok]
    if failed:
        raise SystemExit(
            f"{mode}: {len(failed)} workflows failed, e.g. {failed[0].status}: {failed[0].error}"
        )
    calls = sum(o.usage.calls for o, _ in results)
    per_item = [(o.usage.calls, d) for o, d in results]
    boxes = None if box_before is None or box_after is None else box_after - box_before
    return {
        "per_item": per_item,
        "mode": mode,
        "workflows": len(work),
        "wall_s": wall,
        "workflows_per_s": len(work) / wall,
        "mean_latency_s": statistics.fmean(d for _, d in results),
        "operator_calls": calls,
        "calls_per_workflow": calls / len(work),
        "host_cpu_ms_per_workflow": cpu * 1000 / len(work),
        "container_cpu_ms_per_workflow": None if boxes is None else boxes * 1000 / len(work),
    }


async def open_pool(**kwargs: Any) -> tuple[Any, float]:
    """An entered pool and the seconds it took to be ready (every container warm)."""
    start = time.perf_counter()
    pool = open_sandbox(**kwargs) if kwargs.pop("_preload", True) else Sandbox(**kwargs)
    await pool.__aenter__()
    return pool, time.perf_counter() - start


def workflows_for(args: argparse.Namespace, concurrency: int) -> int:
    """Workflows per mode at ``concurrency``: ``--n``, else 4 waves (4 x the concurrency)."""
    return args.n if args.n else 4 * concurrency


async def measure(args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    """Every mode at one concurrency, alternating rounds; the pools start one after the other."""
    n = workflows_for(args, concurrency)
    work = items(n)
    load_before = os.getloadavg()
    lanes = args.jobs_per_container
    with endpoint(args.latency) as base_url:
        executor = Executor(
            ExecutorConfig(
                model="bench-model",
                base_url=base_url,
                api_key="k",
                use_cache=False,
                concurrency=max(64, concurrency * 8),
            )
        )
        specs: dict[str, dict[str, Any]] = {
            # (d) open_sandbox with several jobs per container (lanes); started first, so its
            # ready time is not measured while (b)'s many containers load the machine
            "lanes": {
                "pool_size": -(-concurrency // lanes) + args.spare_containers,
                "jobs_per_container": lanes,
            },
            # (b) open_sandbox: one job per container, the operator runtime preloaded (the default)
            "sandbox": {"pool_size": concurrency},
        }
        if args.shipped:  # (c) (b) without the preload: the runtime zip shipped and imported per job
            specs["shipped"] = {"pool_size": concurrency, "host_calls": host_calls(), "_preload": False}
        if args.skip_one_job:
            del specs["sandbox"]
        pools: dict[str, Any] = {}
        ready: dict[str, float] = {}
        try:
            for mode, spec in specs.items():
                pools[mode], ready[mode] = await open_pool(**dict(spec))
            modes = {"unsafe": next(iter(pools.values())), **pools}
            # warm-up: containers used once, openai imported, connections open (not timed)
            for mode, pool in modes.items():
                await run_mode(mode, work[:concurrency], executor, pool, concurrency)
            rows = []
            for _ in range(args.rounds):
                for mode, pool in modes.items():
                    rows.append(await run_mode(mode, work, executor, pool, concurrency, count_cpu=True))
        finally:
            for pool in pools.values():
                await pool.__aexit__(None, None, None)
        await executor.aclose()

    def best(mode: str) -> dict[str, Any]:
        return max((r for r in rows if r["mode"] == mode), key=lambda r: r["workflows_per_s"])

    a = best("unsafe")
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "n": n,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "unsafe_in_process": a,
        "all_rounds": rows,
    }
    for mode in pools:
        b = best(mode)
        slope, intercept = fit(a, b)
        out[mode] = {
            **b,
            "pool_ready_s": ready[mode],
            "containers": specs[mode]["pool_size"],
            "jobs_per_container": specs[mode].get("jobs_per_container", 1),
            "throughput_ratio": b["workflows_per_s"] / a["workflows_per_s"],
            "added_latency_per_workflow_ms": (b["mean_latency_s"] - a["mean_latency_s"]) * 1000,
            "fit_added_ms_per_job": intercept,
            "fit_added_ms_per_call": slope,
        }
    return out


def fit(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Added latency per workflow = fixed per-job cost + calls x per-call cost, by least squares.

    The fit is over the paired items (the same workflow in both modes; 1 to 8 calls each).
    """
    xs = [c for c, _ in a["per_item"]]
    ys = [(db - da) * 1000 for (_, da), (_, db) in zip(a["per_item"], b["per_item"], strict=True)]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    runs = [await measure(args, c) for c in args.concurrency]
    return {
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "settings": {
            "n": args.n or "4 x concurrency",
            "concurrency": args.concurrency,
            "reply_latency_s": args.latency,
            "rounds": args.rounds,
            "jobs_per_container": args.jobs_per_container,
            "spare_containers": args.spare_containers,
        },
        "runs": runs,
    }


LABELS = {
    "sandbox": "(b) sf-sandbox, 1 job/container",
    "lanes": "(d) sf-sandbox, lanes",
    "shipped": "(c) (b), runtime shipped",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_run(run: dict[str, Any], args: argparse.Namespace) -> None:
    """The table of one concurrency (and whether the lanes pool met issue 17's targets)."""
    a = run["unsafe_in_process"]
    print(
        f"\n{run['n']} workflows, concurrency {run['concurrency']}, "
        f"reply latency {args.latency * 1000:.0f} ms, {a['calls_per_workflow']:.2f} operator calls/workflow; "
        f"load average before {_loads(run['load_average_before'])}, after {_loads(run['load_average_after'])}"
    )
    print(
        f"{'mode':<34}{'containers':>11}{'workflows/s':>12}{'x (a)':>7}{'mean lat ms':>12}"
        f"{'added ms':>10}{'ready s':>9}{'host cpu ms':>12}{'box cpu ms':>11}"
    )
    print(
        f"{'(a) in-process, unsafe':<34}{'-':>11}{a['workflows_per_s']:>12.2f}{1:>7.3f}"
        f"{a['mean_latency_s'] * 1000:>12.1f}{'-':>10}{'-':>9}"
        f"{_ms(a['host_cpu_ms_per_workflow']):>12}{_ms(a['container_cpu_ms_per_workflow']):>11}"
    )
    for mode, label in LABELS.items():
        r = run.get(mode)
        if r is None:
            continue
        shape = f"{r['containers']}x{r['jobs_per_container']}"
        print(
            f"{label:<34}{shape:>11}{r['workflows_per_s']:>12.2f}{r['throughput_ratio']:>7.3f}"
            f"{r['mean_latency_s'] * 1000:>12.1f}{r['added_latency_per_workflow_ms']:>10.1f}"
            f"{r['pool_ready_s']:>9.1f}"
            f"{_ms(r['host_cpu_ms_per_workflow']):>12}{_ms(r['container_cpu_ms_per_workflow']):>11}"
        )
    lanes = run["lanes"]
    ok = (
        lanes["throughput_ratio"] >= 0.95
        and lanes["added_latency_per_workflow_ms"] < 50
        and lanes["pool_ready_s"] < 20
    )
    print(f"lanes targets (>= 0.95x, < 50 ms added, ready < 20 s): {'ok' if ok else 'MISSED'}")


def _loads(loads: Any) -> str:
    return "(" + ", ".join(f"{x:.2f}" for x in loads) + ")"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=None, help="workflows per mode (default: 4 x each concurrency)"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8], help="one or more")
    parser.add_argument("--latency", type=float, default=0.05, help="scripted reply latency (s)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds per mode; the best is reported"
    )
    parser.add_argument("--jobs-per-container", type=int, default=16, help="lanes of the (d) pool")
    parser.add_argument(
        "--spare-containers",
        type=int,
        default=0,
        help="containers of the (d) pool beyond ceil(concurrency / lanes): free lanes while others "
        "are wiped between jobs",
    )
    parser.add_argument("--shipped", action="store_true", help="also (c): the runtime shipped per job")
    parser.add_argument("--skip-one-job", action="store_true", help="leave out (b), the 1-job pool")
    parser.add_argument("--json", dest="json_path", default=None, help="write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    m = figures["machine"]
    print(
        f"{m['cpus']} CPUs, load average before {m['load_average_before']}, after {m['load_average_after']}"
    )
    for run in figures["runs"]:
        print_run(run, args)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
