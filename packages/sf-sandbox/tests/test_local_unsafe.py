"""The opt-in unsafe backend: same statuses and process-tree kill, no isolation."""

from __future__ import annotations

import os

from sf_sandbox import Job, Limits, Sandbox, Status
from sf_sandbox.backends.local_unsafe import UNSAFE_BACKEND_NAME


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_unsafe_backend_runs_and_kills_double_forked_children(tmp_path) -> None:
    marker = tmp_path / "alive"
    src = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "        while True:\n            time.sleep(0.02)\n"
        "    os._exit(0)\n"
        f"while not os.path.exists({str(marker)!r}):\n    time.sleep(0.01)\n"
        "print('done')\n"
    )
    with Sandbox(backend=UNSAFE_BACKEND_NAME, limits=Limits(timeout=5)) as sb:
        r = sb.run(Job(source=src))
        assert r.ok and r.stdout == "done\n"
        daemon = int(marker.read_text())
        # run() returns only after the whole tree is killed: the double-forked daemon is gone now
        assert not _alive(daemon), f"daemon {daemon} survived its job"
        r = sb.run(Job(source="while True: pass", limits=Limits(timeout=0.5)))
        assert r.status is Status.TIMEOUT
        r = sb.run(Job(source="import os\nprint(os.getcwd())"))
        assert r.ok and r.stdout.strip().endswith("/work") and r.stdout.strip() != os.getcwd()
