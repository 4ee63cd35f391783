"""The opt-in unsafe backend: same statuses and process-tree kill, no isolation."""

from __future__ import annotations

import os
import time

from sf_sandbox import Job, Limits, Sandbox, Status
from sf_sandbox.backends.local_unsafe import UNSAFE_BACKEND_NAME


def test_unsafe_backend_runs_and_kills_double_forked_children(tmp_path) -> None:
    marker = tmp_path / "alive"
    src = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        while True:\n            open({str(marker)!r}, 'w').write('x'); time.sleep(0.02)\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\nprint('done')\n"
    )
    with Sandbox(backend=UNSAFE_BACKEND_NAME, limits=Limits(timeout=5)) as sb:
        r = sb.run(Job(source=src))
        assert r.ok and r.stdout == "done\n"
        assert marker.exists()
        marker.unlink()
        time.sleep(0.2)  # give a surviving daemon time to re-create the marker
        assert not marker.exists()
        r = sb.run(Job(source="while True: pass", limits=Limits(timeout=0.5)))
        assert r.status is Status.TIMEOUT
        r = sb.run(Job(source="import os\nprint(os.getcwd())"))
        assert r.ok and r.stdout.strip().endswith("/work") and r.stdout.strip() != os.getcwd()
