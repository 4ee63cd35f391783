"""Run the code harness in a child process (used inside the sandbox job; stdlib only)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

from ._harness import SOURCE, HarnessReply, HarnessRequest, failed_reply, parse_reply


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
        return failed_reply(f"timeout after {timeout:g}s")
    finally:
        try:  # anything the candidate left running in its group goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    reply = parse_reply(out.decode("utf-8", "replace"))
    if reply is not None:
        return reply
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return failed_reply(f"code runner died (exit {proc.returncode}){': ' + tail[0] if tail[0] else ''}")


async def run_harness(request: HarnessRequest, timeout: float) -> HarnessReply:
    """Async wrapper of :func:`run_harness_blocking` (runs in a worker thread)."""
    return await asyncio.to_thread(run_harness_blocking, request, timeout)
