# pyright: reportTypeCommentUsage=false
"""What the kernel says about processes: OOM kills, IPC objects, pids by parent or uid; the uid kill."""

import os
import select
import signal
from typing import Callable, List, Optional, Tuple  # noqa: F401 (type comments)


def read_counter(path, key):
    # type: (str, str) -> Optional[int]
    """The integer after ``key`` in ``path``, a file of ``KEY VALUE`` lines (a cgroup counter file).

    None when the file cannot be read, holds no such line, or its value is not an integer.
    """
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def oom_kills(root="/sys/fs/cgroup"):
    # type: (str) -> Optional[int]
    """The container cgroup's OOM-kill counter, or None when the kernel keeps none.

    cgroup v2: ``oom_kill`` in ``memory.events``; cgroup v1: ``oom_kill`` in
    ``memory/memory.oom_control`` (kernels >= 4.13). Only the kernel writes these: a job cannot
    make its result ``memory`` by what it prints or how it dies.
    """
    for rel in ("memory.events", "memory/memory.oom_control"):
        value = read_counter(os.path.join(root, rel), "oom_kill")
        if value is not None:
            return value
    return None


def parent_of(pid):
    # type: (int) -> Optional[int]
    """The parent pid of process ``pid``, from ``/proc/<pid>/stat``; None when it is gone or unreadable."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def ipc_objects(uid=None):
    # type: (Optional[int]) -> int
    """Count SysV IPC objects and POSIX message queues: state that survives the processes.

    With ``uid`` (a lane of a shared container) only the objects that uid owns or created count;
    a neighbour's objects are the neighbour's taint. Where the kernel offers no ``/proc/sysvipc``
    (gVisor), the counts come from the IPC_INFO-style calls instead (:func:`ipc_counts_by_syscall`,
    which cannot tell owners apart, so every lane then counts every object); if those fail too,
    this fails closed (returns 1, so the container is replaced): a segment left behind would be
    readable by the next job.
    """
    count = mqueues(uid)
    if not os.path.isdir("/proc/sysvipc"):
        by_call = ipc_counts_by_syscall()
        return count + (1 if by_call is None else by_call)
    for name in ("shm", "msg", "sem"):
        try:
            with open("/proc/sysvipc/" + name) as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        if uid is None:
            count += max(0, len(lines) - 1)
            continue
        head = lines[0].split() if lines else []
        cols = [head.index(c) for c in ("uid", "cuid") if c in head]
        for line in lines[1:]:
            fields = line.split()
            if not cols or any(i < len(fields) and fields[i] == str(uid) for i in cols):
                count += 1  # a table we cannot read by owner counts every object (fail closed)
    return count


def mqueues(uid):
    # type: (Optional[int]) -> int
    """POSIX message queues in ``/dev/mqueue`` (where it is mounted), of ``uid`` if given."""
    try:
        names = os.listdir("/dev/mqueue")
    except OSError:
        return 0
    if uid is None:
        return len(names)
    n = 0
    for name in names:
        try:
            n += os.lstat(os.path.join("/dev/mqueue", name)).st_uid == uid
        except OSError:
            n += 1
    return n


def ipc_counts_by_syscall():
    """SysV shared memory segments, message queues and semaphore sets that exist.

    Counted from ``shmctl(SHM_INFO)`` (``used_ids``), ``msgctl(MSG_INFO)`` (``msgpool``) and
    ``semctl(SEM_INFO)`` (``semusz``); ``None`` when a call fails.
    """
    try:
        import ctypes
        import struct

        libc = ctypes.CDLL(None, use_errno=True)
        total = 0
        for call, args, fmt, at in (
            (libc.shmctl, (0, 14), "i", 0),  # SHM_INFO: struct shm_info.used_ids
            (libc.msgctl, (0, 12), "i", 0),  # MSG_INFO: struct msginfo.msgpool
            (libc.semctl, (0, 0, 19), "10i", 7),  # SEM_INFO: struct seminfo.semusz
        ):
            buf = ctypes.create_string_buffer(512)
            if call(*(args + (buf,))) < 0:
                return None
            total += struct.unpack_from(fmt, buf.raw)[at]
        return total
    except Exception:
        return None


def set_subreaper():
    """Make this process the child subreaper (``PR_SET_CHILD_SUBREAPER``): orphans come back to it.

    Best effort: where ``prctl`` is missing or refuses, nothing happens and nothing is raised.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


HELPER_UID_OFFSET = 2000000
"""The kill helper's real and saved uid is its lane's uid plus this: a uid no job runs as (the
Docker back end draws job uids below 2,000,000 + lanes), distinct per lane."""


def kill_as(uid, then=None, wait_s=1.0):
    # type: (int, Optional[Callable[[], bytes]], float) -> Optional[Tuple[List[int], Optional[bytes]]]
    """SIGKILL every process of ``uid``; return the pids of ``uid`` still there right after, and ``then()``.

    A helper forks, drops to ``uid`` and calls ``kill(-1, SIGKILL)``, which an unprivileged process
    may only send to its own uid's processes (never to another lane's) and which reaches them all
    at once, forks in progress included (the kernel hands a signal sent to many processes to a
    child being forked too), so no chain of forks can outrun it. Then, still as ``uid``, it probes
    every pid in ``/proc`` with ``kill(pid, 0)``: that succeeds exactly for processes whose real or
    saved uid is ``uid`` (root's and other lanes' answer EPERM; hiding as non-dumpable changes
    nothing), zombies included. Those are the processes the kill reached that have not been reaped
    yet; once it reports none, none of ``uid`` exists and none can appear (the helper itself is
    the last, and it is gone when this returns).

    The helper's effective uid is ``uid`` (what the kill, the probe and the file reads are checked
    against) but its real and saved uids are ``uid + HELPER_UID_OFFSET``: a signal's permission is
    the sender's real or effective uid against the target's real or saved uid, so a process of
    ``uid`` can neither stop the helper (SIGSTOP) nor trace it, while the helper's ``kill(-1)``
    still reaches exactly the processes of ``uid`` (no process but a helper of this lane has the
    other uid, and a lane has one helper at a time).

    When none is left the helper, the only process of ``uid``, also runs ``then`` (if given: the
    collection of the job's files, read as ``uid``) and its bytes come back as the second item
    (None when it was not run). One fork per job does the kill, the check and the collection.

    Returns None when the helper could not report (fork failed, killed, or silent for ``wait_s``
    seconds: it is then killed): the caller's loop tries again.
    """
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None  # the caller's loop tries again
    if pid == 0:  # pragma: no cover - runs in the helper
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            helper = uid + HELPER_UID_OFFSET
            os.setresuid(helper, uid, helper)  # acts as uid; a job of uid cannot signal or trace it
            os.kill(-1, signal.SIGKILL)
            me = os.getpid()
            left = []  # type: List[str]
            for name in os.listdir("/proc"):
                if name.isdigit() and int(name) != me:
                    try:
                        os.kill(int(name), 0)
                    except OSError:
                        continue
                    left.append(name)
            out = (" ".join(left) + "\n").encode()
            if then is not None and not left:
                extra = then()
                out += b"%d\n" % len(extra) + extra
            write_all(w, out)
        finally:
            os._exit(0)
    os.close(w)
    data = read_helper(r, pid, wait_s)
    os.close(r)
    reap_pid(pid)
    head, nl, rest = data.partition(b"\n")
    if not nl:
        return None
    pids = [int(x) for x in head.split()]
    if then is None or pids:
        return pids, None
    size, nl, extra = rest.partition(b"\n")
    if not nl or not size.isdigit() or len(extra) != int(size):
        return None  # the helper died while collecting: try again
    return pids, extra


def read_helper(fd, pid, wait_s):
    # type: (int, int, float) -> bytes
    """What helper ``pid`` writes on pipe ``fd`` until it closes it.

    After ``wait_s`` seconds of silence the helper is killed and the caller tries again: whatever
    holds it up (a file it reads that blocks, a full process table), the supervisor never waits on
    it for long.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks = []  # type: List[bytes]
    while True:
        try:
            if not poller.poll(int(wait_s * 1000)):
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(fd, 1 << 20)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(fd, data):
    # type: (int, bytes) -> None
    """Write all of ``data`` to blocking ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def reap_pid(pid):
    # type: (int) -> None
    """Wait for child ``pid`` to end (it must be gone before the next job looks around)."""
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


def all_pids():
    """The pid of every process in ``/proc``."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]
