"""What running workflows in the sandbox costs, against running them in-process (unsafe).

Against a local scripted OpenAI-compatible server with a fixed reply latency, the same N
workflows (sf-workflows' shipped LLM-only workflows, cycled over distinct problems) run
(a) in-process on the host, unsafe, the way AFlow and ScoreFlow execute them
    (``run_workflow_unsafe``), and
(b) through ``run_workflow`` inside sf-sandbox (``open_sandbox``: the operator runtime preloaded
    in every container), at the same concurrency, and
(c) as (b) in a pool without the preload (the runtime zip shipped and imported by every job).
All use the same executor (real openai client over HTTP, cache off). Reports workflows/s, the
mean latency per workflow, and the latency (b) adds per workflow and per operator call.
Targets (issue 5): (b) >= 0.9x (a)'s throughput, < 5 ms added per operator call.

    python benchmarks/workflow_overhead.py [--n 100] [--concurrency 8] [--latency 0.05] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
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


async def run_mode(
    mode: str, work: list[tuple[str, Task]], executor: Executor, sandbox: Any, concurrency: int
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(source: str, task: Task) -> tuple[Any, float]:
        async with gate:
            if mode == "unsafe":
                return await timed(run_workflow_unsafe(source, task, executor, validate=True))
            return await timed(run_workflow(source, task, executor, sandbox))

    start = time.perf_counter()
    results = await asyncio.gather(*(one(s, t) for s, t in work))
    wall = time.perf_counter() - start
    failed = [o for o, _ in results if not o.ok]
    if failed:
        raise SystemExit(
            f"{mode}: {len(failed)} workflows failed, e.g. {failed[0].status}: {failed[0].error}"
        )
    calls = sum(o.usage.calls for o, _ in results)
    per_item = [(o.usage.calls, d) for o, d in results]
    return {
        "per_item": per_item,
        "mode": mode,
        "workflows": len(work),
        "wall_s": wall,
        "workflows_per_s": len(work) / wall,
        "mean_latency_s": statistics.fmean(d for _, d in results),
        "operator_calls": calls,
        "calls_per_workflow": calls / len(work),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = items(args.n)
    with ScriptedServer(answer_script("42"), latency=args.latency) as server:
        executor = Executor(
            ExecutorConfig(
                model="bench-model",
                base_url=server.base_url,
                api_key="k",
                use_cache=False,
                concurrency=max(64, args.concurrency * 8),
            )
        )
        # (b) open_sandbox: the operator runtime preloaded in every container (the default);
        # (c) the same pool without the preload: the runtime zip shipped and imported per job
        shipped_pool = Sandbox(pool_size=args.concurrency, host_calls=host_calls())
        async with open_sandbox(pool_size=args.concurrency) as sandbox, shipped_pool as shipped:
            pools = {"unsafe": sandbox, "sandbox": sandbox, "shipped": shipped}
            # warm-up: containers started, openai imported, connections open (not timed)
            for mode, pool in pools.items():
                await run_mode(mode, work[: args.concurrency], executor, pool, args.concurrency)
            rows = []
            for _ in range(args.rounds):
                for mode, pool in pools.items():
                    rows.append(await run_mode(mode, work, executor, pool, args.concurrency))
        await executor.aclose()

    def best(mode: str) -> dict[str, Any]:
        return max((r for r in rows if r["mode"] == mode), key=lambda r: r["workflows_per_s"])

    def fit(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
        """Added latency per workflow = fixed per-job cost + calls x per-call cost: least squares
        over the paired items (the same workflow in both modes; 1 to 8 calls each)."""
        xs = [c for c, _ in a["per_item"]]
        ys = [(db - da) * 1000 for (_, da), (_, db) in zip(a["per_item"], b["per_item"], strict=True)]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        return slope, my - slope * mx

    a, b, c = best("unsafe"), best("sandbox"), best("shipped")
    added_wf = b["mean_latency_s"] - a["mean_latency_s"]
    slope, intercept = fit(a, b)
    slope_c, intercept_c = fit(a, c)
    return {
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "settings": {
            "n": args.n,
            "concurrency": args.concurrency,
            "reply_latency_s": args.latency,
            "rounds": args.rounds,
        },
        "unsafe_in_process": a,
        "sandboxed": b,
        "sandboxed_runtime_shipped": c,
        "all_rounds": rows,
        "throughput_ratio": b["workflows_per_s"] / a["workflows_per_s"],
        "throughput_ratio_runtime_shipped": c["workflows_per_s"] / a["workflows_per_s"],
        "fit_added_ms_per_job_runtime_shipped": intercept_c,
        "fit_added_ms_per_call_runtime_shipped": slope_c,
        "added_latency_per_workflow_ms": added_wf * 1000,
        "added_latency_per_operator_call_ms": added_wf * 1000 / a["calls_per_workflow"],
        "fit_added_ms_per_call": slope,
        "fit_added_ms_per_job": intercept,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="workflows per mode")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05, help="scripted reply latency (s)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds per mode; the best is reported"
    )
    parser.add_argument("--json", dest="json_path", default=None, help="write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    a, b, c = figures["unsafe_in_process"], figures["sandboxed"], figures["sandboxed_runtime_shipped"]
    print(
        f"{args.n} workflows, concurrency {args.concurrency}, reply latency {args.latency * 1000:.0f} ms, "
        f"{a['calls_per_workflow']:.2f} operator calls/workflow ({figures['machine']['cpus']} CPUs)"
    )
    print(f"{'mode':<26}{'workflows/s':>12}{'mean latency ms':>17}{'wall s':>9}")
    for label, r in (("(a) in-process, unsafe", a), ("(b) sf-sandbox", b), ("(c) (b), runtime shipped", c)):
        print(
            f"{label:<26}{r['workflows_per_s']:>12.2f}{r['mean_latency_s'] * 1000:>17.1f}{r['wall_s']:>9.2f}"
        )
    ratio_ok = "ok" if figures["throughput_ratio"] >= 0.9 else "MISSED"
    call_ok = "ok" if figures["added_latency_per_operator_call_ms"] < 5 else "MISSED"
    print(f"throughput (b)/(a): {figures['throughput_ratio']:.3f} (target >= 0.9: {ratio_ok})")
    print(
        f"added latency: {figures['added_latency_per_workflow_ms']:.1f} ms per workflow, "
        f"{figures['added_latency_per_operator_call_ms']:.2f} ms per operator call "
        "incl. the job's fixed cost "
        f"(target < 5: {call_ok})"
    )
    print(
        f"fit over 1-8-call workflows: {figures['fit_added_ms_per_job']:.1f} ms per sandbox job + "
        f"{figures['fit_added_ms_per_call']:.2f} ms per operator call"
    )
    print(
        f"without the runtime preload (c): (c)/(a) {figures['throughput_ratio_runtime_shipped']:.3f}, "
        f"{figures['fit_added_ms_per_job_runtime_shipped']:.1f} ms per sandbox job + "
        f"{figures['fit_added_ms_per_call_runtime_shipped']:.2f} ms per operator call"
    )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
