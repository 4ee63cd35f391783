"""``sf sandbox demo``: real programs, good and hostile, through the real sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable

from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.sandbox import Sandbox
from sf_sandbox.settings import SandboxSettings

PROGRAMS: list[tuple[str, str, str]] = [
    ("correct solution", "ok", "def add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('passed')"),
    ("wrong answer", "error", "def add(a, b):\n    return a - b\nassert add(2, 3) == 5, 'add(2, 3) != 5'"),
    (
        "infinite loop ignoring SIGTERM",
        "timeout",
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
    ),
    (
        "fork bomb",
        "timeout",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    ),
    ("memory bomb", "memory", "x = []\nwhile True:\n    x.append(bytearray(16 << 20))"),
    ("stdout flood", "output_limit", "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)"),
    (
        "network egress",
        "ok",
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n"
        "    print('CONNECTED')\nexcept OSError as e:\n    print('blocked:', e)",
    ),
    (
        "read host secrets",
        "ok",
        "import os\nprint(sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k))",
    ),
]


def run_demo(sandbox: SandboxSettings | str | None = None, echo: Callable[[str], None] = print) -> int:
    """Run the demo programs at concurrency 2; return 0 when every status is the expected one.

    ``sandbox``: the pool's settings, or just its image (``None``: the default image).
    """
    jobs = [Job(source=src, id=name, limits=Limits(timeout=3)) for name, _, src in PROGRAMS]
    settings = (
        sandbox if isinstance(sandbox, SandboxSettings) else SandboxSettings(image=sandbox, pool_size=2)
    )
    t0 = time.monotonic()
    with Sandbox.from_settings(settings) as sb:
        results = sb.run_many(jobs, concurrency=2)
    echo(f"{'program':32} {'expected':13} {'status':13} {'time':>7}  output")
    bad = 0
    for (name, expected, _), r in zip(PROGRAMS, results, strict=True):
        line = r.stdout.strip() or r.stderr.strip().splitlines()[-1:] or [""]
        text = (line if isinstance(line, str) else line[0])[:60]
        mark = "" if r.status == expected else "  <-- unexpected"
        bad += r.status != expected
        echo(f"{name:32} {expected:13} {r.status!s:13} {r.duration:6.2f}s  {text}{mark}")
    echo(f"{len(jobs)} programs in {time.monotonic() - t0:.1f}s; host and next jobs unaffected")
    return 1 if bad else 0
