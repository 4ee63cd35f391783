"""The supervisor that runs inside every sandbox container (stdlib only, Python >= 3.8), and its loader.

The supervisor is sent to the container at start-up (``BOOTSTRAP`` reads it from stdin), so any image
with python3 works. It speaks length-prefixed JSON frames on fd 0 (requests) and fd 1 (replies) and
runs one job at a time:

* forks a child per job; in a container the child drops to an unprivileged uid (the supervisor,
  PID 1, keeps only CAP_SETUID/SETGID/KILL) so the job cannot signal, trace or read the
  supervisor, and raises its own OOM score so the kernel picks the job, never the supervisor;
* feeds stdin from a memfd, reads stdout/stderr through pipes and caps them, killing the job as
  soon as a cap is passed;
* enforces the wall-clock timeout itself (a client-side timeout cannot kill a process in a
  container);
* at the end of every job kills *every* process left (``kill(-1, SIGKILL)`` from PID 1 reaches
  setsid'd and double-forked processes too), reaps them, collects the requested files (as the
  job's uid), wipes every writable place (work dir, /tmp, /dev/shm) and restores each one's own
  owner, mode, xattrs and times;
* reports ``tainted`` when something may have survived (stray processes, SysV IPC objects, a
  failed wipe, a failed set-up), and the host then replaces the container;
* relays host calls (``Relay``): the job writes frames on fd 3 (``SF_HOST_FD``) and the
  supervisor forwards them to the host and the answers back, within the job's caps. Nothing
  else crosses, and nothing here ever blocks on the host: the wall-clock limit holds whatever
  the host does.

One job is a ``JobRun``: spawn, feed, then drain/enforce rounds, kill, collect, wipe, report.

A container of several lanes (config ``lanes`` > 1) runs a ``Multiplexer`` as PID 1 instead: it
forks one such supervisor per lane (``lane_config``: uid base + lane, its own tmpfs
``/lanes/<i>``), and each scopes the kill (``sweep_lane``: ``kill(-1)`` from the lane's uid), the
stray, IPC and OOM checks and the wipe to its lane; a lane's jobs may not bind or listen
(``deny_listening``), since the lanes share one network namespace.

In ``local`` mode (the opt-in unsafe backend) there is no uid switch and the kill walks the
supervisor's descendants instead, using PR_SET_CHILD_SUBREAPER so orphans are found.

The source is one module per job, in this directory; ``supervisor_source`` joins them, in the order
of ``PAYLOAD``, into the one program that is sent (each module's imports of its siblings are left
out: in the joined text the names are already defined above). The modules, in that order:

* ``warm``: the modules imported once before any fork, so that every job starts warm;
* ``frames``: frames on the host channel (``Channel``, ``Outbox``, ``frame``, base64);
* ``install``: the helper modules and the preload written before the fork; wide pipes;
* ``procs``: kernel facts (OOM counter, IPC objects, pids by parent or uid) and the kill as a uid;
* ``wipe``: the wipe of every writable dir and the reset of its own metadata;
* ``slot``: the fixed facts of one supervisor (mode, job uid, dirs, lane);
* ``child``: the job's own process: privilege drop, set-up, exec or ``source`` run;
* ``zygote``: the pristine forker of every job's process, and its messages;
* ``supervisor``: the ``Supervisor``: its state, its zygote client, reaping;
* ``sweep``: the end-of-job kill of every process of the job (container, lane, local);
* ``relay``: the host-call ``Relay`` of one job;
* ``collect``: the collection of the job's files, as its uid;
* ``jobstate``: a job's facts and the result frame decided from them;
* ``jobrun``: ``JobRun``, one job step by step;
* ``serve``: the single-job supervisor's main loop;
* ``lanes``: the ``Multiplexer`` of a container of several lanes;
* ``main``: the entry point (runs when the payload is executed as ``__sf_supervisor__``).

``sf_host`` is not part of the payload: it is written into every job's helper dir (``helper_sources``).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from importlib.resources import files

BOOTSTRAP = (
    "import os\n"
    "b=b''\n"
    "while not b.endswith(b'\\n'):\n"
    "    c=os.read(0,1)\n"
    "    if not c: raise SystemExit(0)\n"
    "    b+=c\n"
    "n=int(b);s=b''\n"
    "while len(s)<n:\n"
    "    c=os.read(0,n-len(s))\n"
    "    if not c: raise SystemExit(0)\n"
    "    s+=c\n"
    "g={'__name__':'__sf_supervisor__'}\n"
    "exec(compile(s,'sf_supervisor','exec'),g)\n"
)
"""A tiny program passed with ``python3 -c``: reads the supervisor's source from stdin and runs it."""

PAYLOAD = (
    "warm",
    "frames",
    "install",
    "procs",
    "wipe",
    "slot",
    "child",
    "zygote",
    "supervisor",
    "sweep",
    "relay",
    "collect",
    "jobstate",
    "jobrun",
    "serve",
    "lanes",
    "main",
)
"""The supervisor's modules in the order they are joined: each after every sibling it imports."""


def _without_sibling_imports(name: str, text: str, before: set[str]) -> str:
    """``text`` of module ``name`` less its top-level ``from .x import ...`` lines.

    Raises:
        ValueError: the module imports a sibling that is not in ``before`` (not joined above it), or
            imports one anywhere but at its top level.
    """
    tree = ast.parse(text, filename=name + ".py")
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level != 1 or node.module not in before:
                raise ValueError(f"supervisor module {name} imports .{node.module}, not joined before it")
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    nested = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level and n.lineno not in drop]
    if nested:
        raise ValueError(f"supervisor module {name} imports a sibling below its top level")
    lines = text.splitlines(keepends=True)
    return "".join(line for i, line in enumerate(lines, 1) if i not in drop)


@lru_cache(maxsize=None)
def supervisor_source() -> bytes:
    """The supervisor's source, as sent to the container: the ``PAYLOAD`` modules joined in order.

    Raises:
        ValueError: a module imports a sibling that is not joined before it.
    """
    parts: list[str] = []
    before: set[str] = set()
    for name in PAYLOAD:
        text = files(__name__).joinpath(name + ".py").read_text(encoding="utf-8")
        parts.append(f"# ---- sf_supervisor: {name}.py ----\n")
        parts.append(_without_sibling_imports(name, text, before))
        before.add(name)
    return "".join(parts).encode()


def helper_sources() -> dict[str, str]:
    """Modules made importable inside every job (``sf_host``)."""
    return {"sf_host.py": files(__name__).joinpath("sf_host.py").read_text()}


def bootstrap_payload() -> bytes:
    """What the host writes to the bootstrap's stdin before the first frame."""
    src = supervisor_source()
    return str(len(src)).encode() + b"\n" + src
