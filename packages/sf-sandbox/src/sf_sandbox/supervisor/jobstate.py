# pyright: reportTypeCommentUsage=false
"""What one job has come to: its state while it runs, and the result frame decided from it."""

import os
import signal
import time
from typing import Any, Dict, List, Optional, Set, Tuple  # noqa: F401 (type comments)

from .frames import b64
from .procs import ipc_objects, oom_kills
from .relay import Relay  # noqa: F401 (type comments)
from .supervisor import Supervisor  # noqa: F401 (type comments)


class JobState:
    """The facts of one job (``msg`` is its ``run`` frame) and the verdict on them (``report``).

    ``JobRun`` fills them in step by step; the status is decided here from facts the job cannot forge:
    the exit status, the kill reasons, the kernel's OOM counter, the output caps.
    """

    def __init__(self, sup, msg):
        # type: (Supervisor, Dict[str, Any]) -> None
        self.sup = sup
        self.id = msg.get("id")
        self.job = msg["job"]  # type: Dict[str, Any]
        self.timeout = float(self.job.get("timeout", 10))
        self.cap = int(self.job.get("output_bytes", 1 << 20))
        self.oom_before = oom_kills() if sup.container else None
        self.start = time.monotonic()
        self.deadline = self.start + self.timeout
        self.child = None  # type: Optional[Dict[str, Any]]
        self.pid = -1
        self.setup_msg = None  # type: Optional[str]
        self.streams = {}  # type: Dict[int, bytearray]
        self.truncated = {}  # type: Dict[int, bool]
        self.open_fds = set()  # type: Set[int]
        self.relay = None  # type: Optional[Relay]
        self.kill_reason = None  # type: Optional[str]
        self.killed_at = None  # type: Optional[float]
        self.exit_status = None  # type: Optional[int]
        self.stray = False
        self.died_alone = False
        self.marks = {"fork": 0.0, "setup": 0.0, "end": 0.0, "collect": 0.0, "wipe": 0.0}

    def exit_code(self):
        # type: () -> Optional[int]
        """The main process's exit code (``-N`` for signal N); None when unknown, -1 when the zygote died."""
        status = self.exit_status
        if status is None:
            return None
        if status == -1:
            return -1
        if hasattr(os, "waitstatus_to_exitcode"):
            return os.waitstatus_to_exitcode(status)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def oom_seen(self):
        # type: () -> bool
        """The cgroup's OOM killer struck during this job (the kernel's counter, never job text)."""
        if not self.sup.container or self.oom_before is None:
            return False
        after = oom_kills()
        return after is not None and after > self.oom_before

    def oom_killed(self, seen):
        # type: (bool) -> bool
        """Whether to report ``memory``.

        A container of one lane: the OOM killer struck. A lane of
        a shared container: it struck *and* this job's main process died of SIGKILL before the
        supervisor killed anything, so a neighbour's OOM alone never makes this job ``memory``
        (the counter is container-wide and cannot tell lanes apart).
        """
        if not seen or self.sup.lane is None:
            return seen
        status = self.exit_status
        return (
            self.died_alone
            and status is not None
            and status >= 0
            and os.WIFSIGNALED(status)
            and os.WTERMSIG(status) == signal.SIGKILL
        )

    def verdict(self, code, memory):
        # type: (Optional[int], bool) -> Tuple[str, Optional[str]]
        """The job's ``(status, error)`` from exit ``code`` and whether ``memory`` is to be reported.

        Set-up failure or a dead zygote: ``sandbox_error``; then kill reasons (``timeout``,
        ``output_limit``), ``memory``, ``ok`` for exit 0, else ``error`` (with the signal, if any).
        """
        if self.setup_msg is not None:
            return "sandbox_error", self.setup_msg
        if self.exit_status == -1:
            return "sandbox_error", "supervisor: the job forker died during the job"
        if self.kill_reason == "timeout":
            return "timeout", "wall-clock limit of %gs reached" % self.timeout
        if self.kill_reason == "output_limit" or any(self.truncated.values()):
            return "output_limit", "output passed the %d-byte cap" % self.cap
        if memory:
            return "memory", "memory limit reached (the cgroup's OOM killer ended the job)"
        if code == 0:
            return "ok", None
        if code is not None and code < 0:
            return "error", "killed by signal %d" % -code
        return "error", None

    def report(self, files, file_errors, wiped):
        # type: (Dict[str, str], List[str], bool) -> Dict[str, Any]
        """The result frame of the job: status, exit code, output, ``files``/``file_errors``, timings.

        It also says whether the container is ``tainted`` and why (set-up failure, dead zygote, memory,
        strays, kill reasons, a failed wipe (``wiped`` False), IPC objects left).
        """
        code = self.exit_code()
        seen = self.oom_seen()
        memory = self.oom_killed(seen)
        status, error = self.verdict(code, memory)
        exec_failed = self.setup_msg is not None and self.setup_msg.startswith("cannot execute")
        taint = []  # type: List[str]
        if self.setup_msg is not None and not exec_failed:
            taint.append("setup failed")
        if self.exit_status == -1:
            taint.append("zygote gone")
        if seen:
            taint.append("memory")  # in a shared container, every lane that saw it: replace the box
        if self.stray or self.kill_reason in ("stray", "stuck", "timeout", "output_limit"):
            taint.append(self.kill_reason or "stray processes")
        if not wiped:
            taint.append("wipe failed")
        if self.sup.container and ipc_objects(None if self.sup.lane is None else self.sup.uid):
            taint.append("ipc objects left")
        assert self.child is not None  # a report follows a spawn that gave a child
        out_r, err_r = self.child["out_r"], self.child["err_r"]
        m = self.marks
        return {
            "status": status,
            "exit_code": code,
            "stdout": b64(bytes(self.streams[out_r])),
            "stderr": b64(bytes(self.streams[err_r])),
            "stdout_truncated": self.truncated[out_r],
            "stderr_truncated": self.truncated[err_r],
            "duration": m["end"] - self.start,
            "files": files,
            "file_errors": file_errors,
            "error": error,
            "setup_failed": self.setup_msg is not None,
            "tainted": bool(taint),
            "taint": ", ".join(t for t in taint if t),
            "phases_ms": [
                round((m["fork"] - self.start) * 1000, 3),
                round((m["setup"] - self.start) * 1000, 3),
                round((m["collect"] - m["end"]) * 1000, 3),
                round((m["wipe"] - m["collect"]) * 1000, 3),
                round((time.monotonic() - m["wipe"]) * 1000, 3),
            ],
        }


def gone(error):
    # type: (str) -> Dict[str, Any]
    """A tainted ``sandbox_error`` result (taint ``zygote gone``) with the message ``error``."""
    return {"status": "sandbox_error", "error": error, "tainted": True, "taint": "zygote gone"}
