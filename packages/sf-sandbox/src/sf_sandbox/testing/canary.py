"""A neighbour's job that proves a hostile job next to it changed nothing of it (:class:`Canary`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sf_sandbox.job import Job

if TYPE_CHECKING:
    from sf_sandbox.pool import Pool
    from sf_sandbox.result import Result

__all__ = ["CANARY", "Canary"]

CANARY = (
    "import os, time\n"
    "secret = os.urandom(16).hex()\n"
    "paths = ['canary', os.path.join(os.environ['TMPDIR'], 'canary')]\n"
    "for p in paths:\n"
    "    with open(p, 'w') as fh:\n"
    "        fh.write(secret)\n"
    "block = bytearray(4 << 20)\n"
    "t = time.monotonic()\n"
    "while time.monotonic() - t < 0.3:\n"
    "    time.sleep(0.01)\n"
    "ok = all(open(p).read() == secret for p in paths) and len(block) == 4 << 20\n"
    "print('canary', 'ok' if ok else 'CHANGED', sorted(os.listdir('.')))\n"
)
"""A neighbour's job: writes a secret in its work and tmp dirs, holds 4 MiB for 0.3 s, checks both."""


class Canary:
    """Keeps one lane of ``sandbox`` busy with :data:`CANARY` jobs, back to back, while the block runs.

    On exit it asserts that every one of them ended ``ok`` with its files intact (a hostile
    neighbour in the same container changed nothing of it).

        with Canary(sandbox):
            sandbox.run(hostile_job)
    """

    def __init__(self, sandbox: Pool) -> None:
        """Set up (not start) the neighbour on ``sandbox``; :meth:`__enter__` starts it."""
        self.sandbox = sandbox
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sf-canary", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.results.append(self.sandbox.run(Job(source=CANARY)))

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the neighbour's job did not finish"
        if exc[0] is not None:
            return
        assert self.results, "the neighbour ran no job"
        for r in self.results:
            assert r.ok and r.stdout == "canary ok ['canary', 'main.py']\n", (
                r.status,
                r.stdout,
                r.stderr[-500:],
                r.error,
            )
