"""The code harness: a tiny stdlib script that runs candidate code for Programmer and Test.

It is always run in a *separate process inside the sandbox* (a child process of the workflow
job, or a sandbox job of its own when the workflow runs on the host), never in the host's
Python. It reads one JSON request from stdin and writes one JSON reply to its original stdout:

request: ``{"mode": "solve" | "tests", "code": str, "tests": [str], "entry_point": str | None,
"test_timeout": float, "output_cap": int}``

reply: ``{"ok": bool, "output": str, "stdout": str, "error": str | None, "results":
[{"test": str, "passed": bool, "error": str | None}]}``

``solve`` executes the code, calls its ``solve()`` and returns ``str(result)`` as ``output``;
``tests`` executes the code, then each test statement in the code's namespace, each under its
own ``test_timeout`` (SIGALRM); ``candidate`` names the ``entry_point`` function, as in the
HumanEval/MBPP public tests (``assert candidate(1) == 2``). The candidate's own prints go to a
capped buffer (``stdout``) and its writes to fd 1/2 to ``/dev/null``, so it cannot forge the
reply by printing.
"""

from __future__ import annotations

import json
from typing import Literal, TypedDict, cast


class HarnessRequest(TypedDict, total=False):
    """One request to the harness (the JSON it reads from stdin); absent keys take defaults."""

    mode: Literal["solve", "tests"]
    """``solve`` calls ``solve()``; anything else runs ``tests``."""
    code: str
    """The candidate source (required)."""
    tests: list[str]
    """Test statements (``tests`` mode; default none)."""
    entry_point: str | None
    """The function bound to ``candidate`` in ``tests`` mode."""
    test_timeout: float
    """Seconds for the code's import and for each test or ``solve()`` call (default 5)."""
    output_cap: int
    """Bytes of captured stdout and of ``output`` kept (default 65536)."""


class TestOutcome(TypedDict):
    """One test statement's result in :class:`HarnessReply`."""

    test: str
    passed: bool
    error: str | None


class HarnessReply(TypedDict):
    """The harness's JSON reply (also what a failed run of it is reported as)."""

    ok: bool
    """``solve``: it returned; ``tests``: every test passed."""
    output: str
    """``str(solve())``, capped (``solve`` mode)."""
    stdout: str
    """What the candidate printed, capped."""
    error: str | None
    """Why the code did not run (compile error, exception, timeout), else None."""
    results: list[TestOutcome]
    """One entry per test (``tests`` mode)."""


def failed_reply(error: str) -> HarnessReply:
    """The reply standing for a harness run that did not answer (timeout, crash, garbage)."""
    return {"ok": False, "output": "", "stdout": "", "error": error, "results": []}


def parse_reply(data: str | bytes) -> HarnessReply | None:
    """The harness's reply in ``data`` (its stdout), or None when ``data`` is not one.

    A JSON object with an ``ok`` key is taken as the reply: the harness is a fixed script of
    ours, so that is its shape (the candidate cannot write to the harness's stdout).
    """
    try:
        reply: object = json.loads(data)
    except ValueError:
        return None
    return cast(HarnessReply, reply) if isinstance(reply, dict) and "ok" in reply else None


SOURCE = r"""
import json, os, signal, sys, traceback

def _short_error(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(tb):
        if frame.filename in ("<candidate>", "<test>"):
            where = " (%s line %s)" % (frame.filename.strip("<>"), frame.lineno)
            break
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return (text[:2000] + where) if text else type(exc).__name__ + where

class _Capped:
    def __init__(self, cap):
        self.cap, self.parts, self.size = cap, [], 0
    def write(self, s):
        s = str(s)
        if self.size < self.cap:
            self.parts.append(s[: self.cap - self.size])
        self.size += len(s)
        return len(s)
    def flush(self):
        pass
    def getvalue(self):
        return "".join(self.parts)

class _TestTimeout(BaseException):
    pass

def _alarm(signum, frame):
    raise _TestTimeout()

def main():
    request = json.loads(sys.stdin.read())
    reply_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    buf = _Capped(int(request.get("output_cap", 65536)))
    sys.stdout = sys.stderr = buf
    reply = {"ok": False, "output": "", "stdout": "", "error": None, "results": []}
    namespace = {"__name__": "__candidate__"}
    signal.signal(signal.SIGALRM, _alarm)
    per_test = float(request.get("test_timeout", 5.0))
    try:
        code = compile(request["code"], "<candidate>", "exec")
        signal.setitimer(signal.ITIMER_REAL, per_test)
        try:
            exec(code, namespace)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if request.get("mode") == "solve":
            solve = namespace.get("solve")
            if not callable(solve):
                raise NameError("the code defines no solve() function")
            signal.setitimer(signal.ITIMER_REAL, per_test)
            try:
                value = solve()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            reply["output"] = str(value)[: int(request.get("output_cap", 65536))]
            reply["ok"] = True
        else:
            entry = request.get("entry_point")
            if entry and callable(namespace.get(entry)) and "candidate" not in namespace:
                namespace["candidate"] = namespace[entry]  # public tests may call candidate(...)
            results = []
            for test in request.get("tests", []):
                try:
                    signal.setitimer(signal.ITIMER_REAL, per_test)
                    exec(compile(test, "<test>", "exec"), namespace)
                    results.append({"test": test, "passed": True, "error": None})
                except _TestTimeout:
                    results.append({"test": test, "passed": False, "error": "timeout after %gs" % per_test})
                except BaseException as exc:
                    results.append({"test": test, "passed": False, "error": _short_error(exc)})
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            reply["results"] = results
            reply["ok"] = all(r["passed"] for r in results)
    except _TestTimeout:
        reply["error"] = "timeout after %gs" % per_test
    except BaseException as exc:
        reply["error"] = _short_error(exc)
    reply["stdout"] = buf.getvalue()
    data = json.dumps(reply).encode()
    while data:
        data = data[os.write(reply_fd, data):]

main()
"""
