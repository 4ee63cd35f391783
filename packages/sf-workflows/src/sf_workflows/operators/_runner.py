"""Run the code harness in a child process (used inside the sandbox job; stdlib only)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from typing import cast

from ._harness import SOURCE, HarnessReply, HarnessRequest


def _failure(error: str) -> HarnessReply:
    return {"ok": False, "output": "", "stdout": "", "error": error, "results": []}


def run_harness_blocking(request: HarnessRequest, timeout: float) -> HarnessReply:
    """Run the harness on ``request`` in a new process group; kill the group after ``timeout``.

    Never raises for the candidate's behaviour: timeouts, crashes and garbage become an
    ``error`` in the reply.
    """
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", SOURCE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(json.dumps(request).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return _failure(f"timeout after {timeout:g}s")
    finally:
        try:  # anything the candidate left running in its group goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        reply: object = json.loads(out.decode("utf-8", "replace"))
        if isinstance(reply, dict) and "ok" in reply:
            # the harness (a fixed script of ours) wrote it; a dict with "ok" is its reply shape
            return cast(HarnessReply, reply)
    except ValueError:
        pass
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return _failure(f"code runner died (exit {proc.returncode}){': ' + tail[0] if tail[0] else ''}")


async def run_harness(request: HarnessRequest, timeout: float) -> HarnessReply:
    """Async wrapper of :func:`run_harness_blocking` (runs in a worker thread)."""
    return await asyncio.to_thread(run_harness_blocking, request, timeout)
