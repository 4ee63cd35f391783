"""Jobs/s per language: sf-sandbox's warm pool against `docker run` per job, and runsc against runc.

    python benchmarks/languages_throughput.py [--jobs 10] [--concurrency 2] [--runsc] [--json FILE]

For every language of the all-languages image (`sf sandbox build-image --languages all`), two
programs: `hello` (a trivial program; compiled languages compile it, then run it) and `sieve`
(a small compile-and-run: count the primes below 200000). Modes, in one run:

* sf-runc: `sf_sandbox.languages.run_code` on a warm pool of `--concurrency` containers;
* docker-run: `docker run --rm` per job with the same hardening (no network, read-only root,
  memory/pids limits, caps dropped, non-root), the code on stdin, `sh -c 'cat > src && compile && run'`;
* with --runsc, both again under gVisor on an engine of the script's own (own socket and data root;
  the shared engine is not touched), which it starts and removes.

Every job must print the expected output; the table shows jobs/s, p50 latency and the ratios.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from _common import machine, print_table, write_json

from sf_sandbox import Limits, Sandbox
from sf_sandbox.languages import LANGUAGES, CodeRequest, run_code

IMAGE = "sf-sandbox:all"
HELLO = {
    "python": 'print("hello")',
    "bash": "echo hello",
    "c": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }',
    "cpp": '#include <iostream>\nint main() { std::cout << "hello" << std::endl; }',
    "javascript": 'console.log("hello");',
    "go": 'package main\nimport "fmt"\nfunc main() { fmt.Println("hello") }',
    "java": 'public class Main { public static void main(String[] a) { System.out.println("hello"); } }',
    "rust": 'fn main() { println!("hello"); }',
}
N = 200_000
SIEVE = {
    "python": f"n={N}\ns=bytearray([1])*n\ns[0]=s[1]=0\nfor i in range(2,int(n**.5)+1):\n"
    "    if s[i]: s[i*i::i]=bytearray(len(range(i*i,n,i)))\nprint(sum(s))",
    "bash": f"n={N}; c=0; for ((i=2;i<2000;i++)); do p=1; for ((j=2;j*j<=i;j++)); do "
    "((i%j==0)) && { p=0; break; }; done; ((c+=p)); done; echo $c",
    "c": f"#include <stdio.h>\n#include <string.h>\nstatic char s[{N}];\nint main(void) {{ int c=0;"
    f" memset(s,1,{N}); for (int i=2;i<{N};i++) if (s[i]) {{ c++;"
    f" for (long j=(long)i*i;j<{N};j+=i) s[j]=0; }}"
    ' printf("%d\\n", c); }',
    "cpp": f"#include <iostream>\n#include <vector>\nint main() {{ std::vector<bool> s({N}, true); int c=0;"
    f" for (long i=2;i<{N};i++) if (s[i]) {{ c++; for (long j=i*i;j<{N};j+=i) s[j]=false; }}"
    " std::cout << c << '\\n'; }",
    "javascript": f"const n={N}; const s=new Uint8Array(n).fill(1); let c=0;"
    " for (let i=2;i<n;i++) if (s[i]) { c++; for (let j=i*i;j<n;j+=i) s[j]=0; } console.log(c);",
    "go": f'package main\nimport "fmt"\nfunc main() {{ n := {N}; s := make([]bool, n); c := 0\n'
    "for i := 2; i < n; i++ { if !s[i] { c++; for j := i * i; j < n; j += i { s[j] = true } } }\n"
    "fmt.Println(c) }",
    "java": f"public class Main {{ public static void main(String[] a) {{ int n={N};"
    " boolean[] s=new boolean[n];"
    " int c=0; for (int i=2;i<n;i++) if (!s[i]) { c++; for (long j=(long)i*i;j<n;j+=i) s[(int)j]=true; }"
    " System.out.println(c); } }",
    "rust": f"fn main() {{ let n = {N}; let mut s = vec![true; n]; let mut c = 0;\n"
    "for i in 2..n { if s[i] { c += 1; let mut j = i * i; while j < n { s[j] = false; j += i; } } }\n"
    'println!("{}", c); }',
}
EXPECT = {"hello": "hello\n", "sieve": f"{17984}\n"}
BASH_EXPECT = "303\n"  # bash counts primes below 2000 (it is too slow for the full sieve)
HARDENING = [
    "--network", "none", "--memory", "512m", "--memory-swap", "512m", "--pids-limit", "136",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--log-driver", "none", "--read-only",
    "--tmpfs", "/work:rw,exec,nosuid,nodev,size=64m,uid=100000,gid=100000,mode=0700",
    "--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=64m,mode=1777",
    "--user", "100000:100000", "-w", "/work", "-e", "HOME=/work",
]  # fmt: skip


def expected(lang: str, program: str) -> str:
    return BASH_EXPECT if (lang, program) == ("bash", "sieve") else EXPECT[program]


def docker_argv(lang: str, code: str, runtime: str | None) -> list[str]:
    """`docker run` of one job: the code on stdin, compiled and run by sh in a fresh container."""
    spec = LANGUAGES[lang]
    src = spec.file_name(code)
    steps = [f"cat > {shlex.quote(src)}"]
    if spec.compile:
        steps.append(shlex.join(spec.argv(spec.compile, code)))
    steps.append(shlex.join(spec.argv(spec.run, code)) if spec.run else f"python3 {src}")
    env = [a for k, v in spec.env.items() for a in ("-e", f"{k}={v}")]
    rt = ["--runtime", runtime] if runtime else []
    return ["docker", "run", "--rm", "-i", *rt, *HARDENING, *env, IMAGE, "sh", "-c", " && ".join(steps)]


def measure(jobs: list[Callable[[], str]], want: str, conc: int) -> tuple[float, float]:
    """Run ``jobs`` ``conc`` at a time; return (jobs/s, p50 ms). Every job must print ``want``."""
    latencies: list[float] = []

    def one(job: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        out = job()
        latencies.append(time.perf_counter() - t0)
        if out != want:
            raise SystemExit(f"wrong output {out!r}, expected {want!r}")

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as pool:
        list(pool.map(one, jobs))
    took = time.perf_counter() - t0
    latencies.sort()
    return len(jobs) / took, latencies[len(latencies) // 2] * 1000


def bench_sf(langs: list[str], n: int, conc: int, runtime: str | None) -> dict[tuple[str, str], tuple]:
    out = {}
    with Sandbox(image=IMAGE, limits=Limits(timeout=60), pool_size=conc, runtime=runtime) as sb:
        for lang in langs:
            for program, table in (("hello", HELLO), ("sieve", SIEVE)):
                req = CodeRequest(code=table[lang], language=lang, compile_timeout=60, run_timeout=60)

                def job(req: CodeRequest = req) -> str:
                    r = run_code(sb, req)
                    if not r.ok:
                        raise SystemExit(
                            f"{req.language}: {r.status} {r.error} {r.run and r.run.stderr[-300:]}"
                        )
                    return r.run.stdout if r.run else ""

                job()  # warm-up, not counted
                out[lang, program] = measure([job] * n, expected(lang, program), conc)
                print(f"  sf {runtime or 'runc'} {lang} {program}: {out[lang, program][0]:.2f}/s", flush=True)
    return out


def bench_docker(langs: list[str], n: int, conc: int, runtime: str | None) -> dict[tuple[str, str], tuple]:
    out = {}
    for lang in langs:
        for program, table in (("hello", HELLO), ("sieve", SIEVE)):
            argv = docker_argv(lang, table[lang], runtime)

            def job(argv: list[str] = argv, code: str = table[lang]) -> str:
                proc = subprocess.run(argv, input=code, capture_output=True, text=True, timeout=120)
                if proc.returncode != 0:
                    raise SystemExit(f"docker run failed ({proc.returncode}): {proc.stderr[-500:]}")
                return proc.stdout

            job()
            out[lang, program] = measure([job] * n, expected(lang, program), conc)
            print(
                f"  docker-run {runtime or 'runc'} {lang} {program}: {out[lang, program][0]:.2f}/s",
                flush=True,
            )
    return out


def runsc_engine() -> tuple[object, str]:
    """A private engine with runsc registered and the image loaded; returns (engine, DOCKER_HOST)."""
    from sf_sandbox.gvisor import RUNSC_RUNTIME
    from sf_sandbox.testing import LocalDockerd, save_image

    if shutil.which("runsc") is None:
        raise SystemExit("--runsc needs runsc: apt-get install runsc")
    base = tempfile.mkdtemp(prefix="sfbench-", dir="/tmp")
    engine = LocalDockerd(base, daemon_config={"runtimes": {"runsc": RUNSC_RUNTIME}})
    engine.start()
    print("loading the image into the runsc engine ...", flush=True)
    tarball = save_image(os.path.join(base, "img.tar"), IMAGE)
    engine.load_image(tarball)
    os.unlink(tarball)
    return engine, engine.host


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10, help="jobs per cell (after one warm-up)")
    ap.add_argument("--concurrency", type=int, default=2, help="jobs at once (= warm containers)")
    ap.add_argument("--languages", default=",".join(LANGUAGES), help="comma list")
    ap.add_argument("--runsc", action="store_true", help="also measure under gVisor (needs root and runsc)")
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args()
    langs = [x for x in args.languages.split(",") if x]
    modes: dict[str, dict] = {}
    t0 = time.time()
    modes["sf-runc"] = bench_sf(langs, args.jobs, args.concurrency, None)
    modes["docker-run-runc"] = bench_docker(langs, args.jobs, args.concurrency, None)
    engine = None
    if args.runsc:
        engine, host = runsc_engine()
        saved = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = host
        try:
            modes["sf-runsc"] = bench_sf(langs, args.jobs, args.concurrency, "runsc")
            modes["docker-run-runsc"] = bench_docker(langs, args.jobs, args.concurrency, "runsc")
        finally:
            if saved is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = saved
            engine.stop()  # type: ignore[attr-defined]
            shutil.rmtree(engine.base, ignore_errors=True)  # type: ignore[attr-defined]
    names = list(modes)
    headers = ["language", "program"] + [f"{m} /s" for m in names] + [f"{m} p50 ms" for m in names]
    headers += ["sf/docker-run (runc)"] + (["sf runsc/runc"] if args.runsc else [])
    rows = []
    for lang in langs:
        for program in ("hello", "sieve"):
            cells = [modes[m][lang, program] for m in names]
            row: list[object] = [lang, program]
            row += [f"{c[0]:.2f}" for c in cells] + [f"{c[1]:.0f}" for c in cells]
            row.append(
                f"{modes['sf-runc'][lang, program][0] / modes['docker-run-runc'][lang, program][0]:.1f}x"
            )
            if args.runsc:
                row.append(f"{modes['sf-runsc'][lang, program][0] / modes['sf-runc'][lang, program][0]:.2f}x")
            rows.append(row)
    print(f"\n{args.jobs} jobs per cell, concurrency {args.concurrency}, {time.time() - t0:.0f} s in all")
    print_table(headers, rows)
    info = machine()
    print("machine:", info)
    write_json(
        args.json,
        {
            "machine": info,
            "jobs": args.jobs,
            "concurrency": args.concurrency,
            "results": {
                m: {f"{k[0]}/{k[1]}": {"per_s": v[0], "p50_ms": v[1]} for k, v in d.items()}
                for m, d in modes.items()
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
