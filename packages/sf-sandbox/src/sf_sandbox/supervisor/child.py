# pyright: reportTypeCommentUsage=false
"""The job's own process: drop privileges, take the spec, set up, then exec ``argv`` or run ``source``.

Everything here runs in the child the zygote forked (the supervisor never calls it itself).
"""

import atexit
import builtins
import errno
import fcntl
import io
import json
import os
import resource
import signal
import sys
import threading
import traceback
import types
from typing import Any, Dict, List, NoReturn  # noqa: F401 (type comments)

from .frames import unb64
from .slot import Slot  # noqa: F401 (type comments)

SETUP_OK = b"\x00ok"
"""What the child writes on its setup pipe once set up for ``source``; an exec closes the pipe instead."""


def become_job(slot, out_w, err_w, setup_w, host_fd, spec_fd):  # pragma: no cover - runs in the child
    # type: (Slot, int, int, int, int, int) -> NoReturn
    """Become the job of ``slot`` (in the child the zygote forked): never returns.

    Drops privileges (in a container), reads the job spec from ``spec_fd``, writes its inputs, sets the
    descriptors (stdin, ``out_w``, ``err_w``, ``host_fd`` as fd 3, ``setup_w``), rlimits and environment,
    then execs ``argv`` or runs ``source``. A set-up failure is written to ``setup_w`` and exits 125; an
    exec failure is written there and exits 127.
    """
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        if slot.container:
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("1000")
            os.setgroups([])
            os.setgid(slot.uid)
            os.setuid(slot.uid)
        if slot.lane is not None:
            deny_listening()
        chunks = []  # type: List[bytes]
        while True:
            chunk = os.read(spec_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(spec_fd)
        job = json.loads(b"".join(chunks).decode())
        work = slot.work
        source = job.get("source")
        write_inputs(job, work, slot.tmp)
        fsize = int(job.get("file_size", 64 << 20))
        mfd = stdin_fd(unb64(job.get("stdin", "")))
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in (mfd, out_w, err_w, host_fd, setup_w)]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
        os.set_inheritable(4, False)
        os.closerange(5, 65536)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if slot.container:
            pids = int(job.get("pids", 128))
            resource.setrlimit(resource.RLIMIT_NPROC, (pids, pids))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": work,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONPATH": slot.helper_dir,
            "PYTHONDONTWRITEBYTECODE": "1",
            "SF_HOST_FD": "3",
            "TMPDIR": slot.tmp,
        }
        env.update(job.get("env", {}))
    except BaseException as exc:
        try:
            os.write(setup_w, ("job setup failed: %s" % (exc,)).encode())
        finally:
            os._exit(125)
    if source is None:
        argv = job["argv"]
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            os.write(4, ("cannot execute %r: %s" % (argv[0], exc.strerror)).encode())
            os._exit(127)
    os.write(4, SETUP_OK)
    os.close(4)
    run_source(source, job.get("args", []), env, work)


SECCOMP_ARCH = {"x86_64": (0xC000003E, 49, 50), "aarch64": (0xC00000B7, 200, 201)}
"""AUDIT_ARCH, bind and listen syscall numbers per machine."""


LISTEN_FILTER = []  # type: List[Any]
"""``[libc, prog, filters]`` once :func:`listen_filter` has run (in the zygote, before any fork)."""


def listen_filter():
    # type: () -> List[Any]
    """The seccomp program of :func:`deny_listening` and the libc to load it with, built once.

    The zygote of a lane calls this before it forks any job, so each job only makes the two
    ``prctl`` calls (importing ctypes and building the program per job cost ~1.5 ms of CPU).
    The program is a constant: nothing of any job is in it.
    """
    if LISTEN_FILTER:
        return LISTEN_FILTER
    import ctypes

    arch, bind, listen = SECCOMP_ARCH[os.uname().machine]
    deny, allow = 0x00050000 | errno.EPERM, 0x7FFF0000  # SECCOMP_RET_ERRNO | EPERM, RET_ALLOW
    code = [  # (code, jt, jf, k): load arch; other ABIs (x32, i386) are denied outright
        (0x20, 0, 0, 4),
        (0x15, 1, 0, arch),
        (0x06, 0, 0, deny),
        (0x20, 0, 0, 0),
        (0x35, 3, 0, 0x40000000),  # x32 syscall numbers
        (0x15, 2, 0, bind),
        (0x15, 1, 0, listen),
        (0x06, 0, 0, allow),
        (0x06, 0, 0, deny),
    ]

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint),
        ]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(code))(*[Filter(*ins) for ins in code])
    LISTEN_FILTER[:] = [ctypes.CDLL(None, use_errno=True), Prog(len(code), filters), filters]
    return LISTEN_FILTER


def deny_listening():  # pragma: no cover - runs in the child
    # type: () -> None
    """Give a lane's job a seccomp filter that fails ``bind`` and ``listen`` with EPERM.

    Lanes share the container's network namespace: loopback and the abstract unix socket
    namespace. So that no job can listen where a neighbour may connect, a lane's job gets a
    seccomp filter of its own that fails ``bind`` and ``listen`` with EPERM (``connect`` has
    then nothing to reach; socketpairs and pipes still work). Raises when it cannot be applied,
    so the job fails set-up rather than run without it.
    """
    import ctypes

    libc, prog, _ = listen_filter()
    if (
        libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0
    ):  # NO_NEW_PRIVS, SECCOMP
        raise OSError(ctypes.get_errno(), "cannot apply the lane's seccomp filter")


def write_inputs(job, work, tmp):  # pragma: no cover - runs in the child
    # type: (Dict[str, Any], str, str) -> None
    """Write the job's files and source into the work dir (as the job's uid)."""
    os.umask(0o022)
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    for rel, content in job.get("files", {}).items():
        path = os.path.join(work, rel)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(unb64(content))
    source = job.get("source")
    if source is not None:
        with open(os.path.join(work, "main.py"), "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(source)
    if tmp != "/tmp":
        os.makedirs(tmp, exist_ok=True)


def stdin_fd(stdin):  # pragma: no cover - runs in the child
    # type: (bytes) -> int
    """A descriptor that reads ``stdin``: a memfd (seekable), or a pipe where there is none."""
    mfd = os.memfd_create("stdin", 0) if hasattr(os, "memfd_create") else None
    if mfd is None:
        rfd, wfd = os.pipe()
        os.write(wfd, stdin)
        os.close(wfd)
        return rfd
    os.write(mfd, stdin)
    os.lseek(mfd, 0, os.SEEK_SET)
    return mfd


def run_source(source, args, env, work):  # pragma: no cover - runs in the child
    # type: (str, List[str], Dict[str, str], str) -> NoReturn
    """Run ``source`` as ``__main__`` in this (forked) interpreter and exit like python3 would."""
    os.environ.clear()
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"
    )
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8"
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.argv = [os.path.join(work, "main.py")] + list(args)
    sys.path[:] = [work, env.get("PYTHONPATH", "")] + [p for p in sys.path[1:] if p]
    main = types.ModuleType("__main__")
    main.__file__ = os.path.join(work, "main.py")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    code = 0
    try:
        compiled = compile(source, main.__file__, "exec")
        exec(compiled, main.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            try:
                print(exc.code, file=sys.stderr)
            except Exception:
                pass
            code = 1
    except BaseException:
        try:
            traceback.print_exc()
        except Exception:
            pass
        code = 1
    try:
        # join non-daemon threads, as the interpreter does at exit (CPython-internal: not in the stubs)
        threading._shutdown()  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    except Exception:
        pass
    try:
        atexit._run_exitfuncs()  # pyright: ignore[reportPrivateUsage]  # what the interpreter runs at exit
    except Exception:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code & 0xFF if code >= 0 else 1)
