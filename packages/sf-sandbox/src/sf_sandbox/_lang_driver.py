"""Compile-then-run driver for compiled languages; runs *inside* the sandbox (stdlib only, Python >= 3.8).

The host sends this file as a ``source`` job (so it starts in the supervisor's warm interpreter)
with one argument, a JSON spec::

    {"compile": [argv] | null, "run": [argv], "compile_timeout": s, "run_timeout": s,
     "compile_output_bytes": n, "env": {...}, "report": "relative/path.json"}

Contract:

* The compile phase runs with stdin from /dev/null and its stdout/stderr captured here (each
  capped at ``compile_output_bytes``); its process group is killed at ``compile_timeout``.
* The run phase inherits fds 0, 1 and 2, so the program's stdin, stdout and stderr are the job's
  own (the supervisor feeds and caps them exactly as for any job). Its process group is killed
  at ``run_timeout``, and whatever is left of that group when the program exits.
* The report (a JSON file under the work dir, collected by the host) is written after the
  compile phase and again after the run phase; each write is atomic (write, then rename).
* The exit code mirrors the program's (0 when it exited 0), so the supervisor's status agrees.

The driver runs as the job's uid, so the program could tamper with it or its report: a report
is only as trustworthy as the program, which already controls its own exit code and output. The
supervisor's limits (wall clock, output caps, memory, end-of-job kill of every process) hold
whatever the program does.
"""

# Python 3.8 style (this file runs under the image's python3): type comments, not annotations.
# pyright: reportTypeCommentUsage=false

import base64
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple, TypedDict  # noqa: F401 (type comments)


class CompileEntry(TypedDict):
    """The compile phase's report entry (``sf_sandbox.languages`` reads it)."""

    status: str
    exit_code: Optional[int]
    stdout: str
    """Base64 of the captured stdout (at most ``compile_output_bytes``)."""
    stderr: str
    """Base64 of the captured stderr (at most ``compile_output_bytes``)."""
    truncated: bool
    duration: float
    error: Optional[str]


class RunEntry(TypedDict):
    """The run phase's report entry (its output is the job's own)."""

    status: str
    exit_code: Optional[int]
    duration: float
    error: Optional[str]


class Report(TypedDict):
    """The report file: each phase's entry, None until the phase has run."""

    compile: Optional[CompileEntry]
    run: Optional[RunEntry]


def kill_group(proc):
    # type: (subprocess.Popen[bytes]) -> None
    """Kill ``proc``'s whole process group (it started its own session); gone already is fine."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def write_report(path, report):
    # type: (str, Report) -> None
    """Write ``report`` to ``path`` atomically (write a sibling, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh)
    os.replace(tmp, path)


def run_compile(argv, env, timeout, cap):
    # type: (List[str], Dict[str, str], float, int) -> CompileEntry
    """Run the compiler; return the phase's report entry."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return {
            "status": "sandbox_error",
            "exit_code": None,
            "stdout": "",
            "stderr": "",
            "truncated": False,
            "duration": 0.0,
            "error": f"cannot start the compiler {argv[0]!r}: {exc.strerror}",
        }
    assert proc.stdout is not None and proc.stderr is not None  # both are PIPE
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    truncated = False
    timed_out = False
    open_fds = set(bufs)
    deadline = start + timeout
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            kill_group(proc)
            break
        ready, _, _ = select.select(list(open_fds), [], [], min(left, 1.0))
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            room = cap - len(bufs[fd])
            if room > 0:
                bufs[fd] += chunk[:room]
            if len(chunk) > room:
                truncated = True
    left = max(0.0, deadline - time.monotonic())
    try:
        code = proc.wait(timeout=left if not timed_out else None)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc)
        code = proc.wait()
    kill_group(proc)  # what the compiler left behind in its group
    if timed_out:
        status = "timeout"
    elif code == 0:
        status = "ok"
    else:
        status = "compile_error"
    entry = {
        "status": status,
        "exit_code": code,
        "stdout": base64.b64encode(bytes(bufs[out_fd])).decode(),
        "stderr": base64.b64encode(bytes(bufs[err_fd])).decode(),
        "truncated": truncated,
        "duration": time.monotonic() - start,
        "error": (f"compile phase passed its {timeout:g}s limit") if timed_out else None,
    }  # type: CompileEntry
    proc.stdout.close()
    proc.stderr.close()
    return entry


def in_memory(argv):
    # type: (List[str]) -> Tuple[List[str], Tuple[int, ...]]
    """``argv`` with a ``./binary`` in the work dir replaced by a memfd copy of it, and the fds to pass.

    The work dir is mounted ``noexec``; the built program runs from an anonymous memory file
    instead (``/proc/self/fd/N``), which changes nothing else about it.
    """
    if not argv[0].startswith("./"):
        return argv, ()
    with open(argv[0], "rb") as fh:
        data = fh.read()
    fd = os.memfd_create("program", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return [f"/proc/self/fd/{fd}"] + list(argv[1:]), (fd,)


def run_program(argv, env, timeout):
    # type: (List[str], Dict[str, str], float) -> RunEntry
    """Run the program on the job's own stdin/stdout/stderr; return the phase's report entry."""
    start = time.monotonic()
    try:
        argv, keep = in_memory(argv)
        proc = subprocess.Popen(argv, env=env, start_new_session=True, pass_fds=keep)
        for fd in keep:
            os.close(fd)
    except OSError as exc:
        return {
            "status": "sandbox_error",
            "exit_code": None,
            "duration": 0.0,
            "error": f"cannot start {argv[0]!r}: {exc.strerror}",
        }
    timed_out = False
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc)
        code = proc.wait()
    kill_group(proc)
    return {
        "status": "timeout" if timed_out else ("ok" if code == 0 else "error"),
        "exit_code": code,
        "duration": time.monotonic() - start,
        "error": (f"run phase passed its {timeout:g}s limit") if timed_out else None,
    }


def main():
    # type: () -> None
    """Run the phases of the spec in ``sys.argv[1]``; exit as the program did."""
    spec = json.loads(sys.argv[1])  # type: Dict[str, Any]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("SF_HOST_FD", None)
    env.update(spec.get("env") or {})
    report_path = os.path.join(os.getcwd(), spec["report"])
    report = {"compile": None, "run": None}  # type: Report
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.set_inheritable(0, True)
    if spec.get("compile"):
        report["compile"] = run_compile(
            spec["compile"], env, float(spec["compile_timeout"]), int(spec["compile_output_bytes"])
        )
        write_report(report_path, report)
        if report["compile"]["status"] != "ok":
            os._exit(1)
    try:
        os.close(3)  # the host-call channel is not the program's
    except OSError:
        pass
    report["run"] = run_program(spec["run"], env, float(spec["run_timeout"]))
    write_report(report_path, report)
    code = report["run"]["exit_code"]
    if code is None:
        os._exit(1)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
