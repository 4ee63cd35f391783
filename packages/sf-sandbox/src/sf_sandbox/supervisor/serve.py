# pyright: reportTypeCommentUsage=false
"""The single-job supervisor's main loop: ``ready``, a ``result`` per ``run``, a ``pong`` per ``ping``."""

import sys
from typing import Any, Dict  # noqa: F401 (type comments)

from .jobrun import JobRun
from .supervisor import Supervisor  # noqa: F401 (type comments)


def serve(sup):
    # type: (Supervisor) -> None
    """Serve the host as ``sup`` until it says ``shutdown`` or closes the channel; return None then.

    Sends ``ready`` (with the preload error, if any) first, then answers each ``run`` with a ``result``
    frame (a job that raises is reported as a tainted ``sandbox_error``, never fatal) and each ``ping``
    with a ``pong``; after an untainted job the next job's child is pre-spawned.
    """
    import gc

    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) the parent's pages in each child
    hello = {"op": "ready", "pid": sup.me, "python": sys.version.split()[0]}
    if sup.preload_error:
        hello["error"] = sup.preload_error
    sup.chan.send(hello)
    while True:
        if sup.pending:
            msg = sup.pending.pop(0)
        else:
            msg, rest = sup.chan.recv_blocking()
            sup.pending.extend(rest)
            if msg is None:
                return
        op = msg.get("op")
        if op == "run":
            try:
                reply = JobRun(sup, msg).run()  # type: Dict[str, Any]  # see JobRun for the steps
            except Exception as exc:  # never die on a job: report and ask for replacement
                reply = {"status": "sandbox_error", "error": "supervisor: %r" % (exc,), "tainted": True}
            reply["op"] = "result"
            reply["id"] = msg.get("id")
            sup.chan.send(reply)
            sup.exited.clear()
            if not reply.get("tainted") and sup.zpid is not None:
                sup.prespawned = sup.spawn()  # off the critical path: the next job starts warm
        elif op == "shutdown":
            return
        elif op == "ping":
            sup.chan.send({"op": "pong", "id": msg.get("id")})
        # stale host-call answers for a finished job are dropped
