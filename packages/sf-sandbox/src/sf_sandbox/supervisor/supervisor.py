"""The supervisor that runs inside every sandbox container (stdlib only, Python >= 3.8).

It is sent to the container at start-up (see ``bootstrap.py``), so any image with python3 works.
It speaks length-prefixed JSON frames on fd 0 (requests) and fd 1 (replies) and runs one job at a
time:

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
"""

import atexit
import base64
import builtins
import collections
import errno
import fcntl
import io
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple  # noqa: F401 (type comments)

# Everything a job's interpreter usually needs is imported once here, before any fork, so each
# job starts warm (this is what makes a forked job ~10x cheaper than a fresh ``python3``).
WARM_MODULES = (
    "asyncio",
    "concurrent.futures",
    "subprocess",
    "re",
    "math",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "random",
    "typing",
    "dataclasses",
    "decimal",
    "fractions",
    "statistics",
    "hashlib",
    "zipimport",
    "importlib.util",
    "copy",
    "inspect",
)
for _name in WARM_MODULES:
    try:
        __import__(_name)
    except Exception:  # an image without one of them still works
        pass

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
MAX_HOST_FRAME = 16 * 1024 * 1024
"""Largest host-call request a job may send; a bigger one is refused from its header."""
MAX_DEPTH = 100
"""Deepest nesting of lists/dicts in a host call's arguments (the host checks replies the same way)."""
WRITABLE_DIRS = ("/work", "/tmp", "/dev/shm")
SETUP_OK = b"\x00ok"

# Frame I/O on the host channel ------------------------------------------------------------------


class Outbox:
    """Bytes waiting for a non-blocking descriptor, written in order and never blocking.

    Each item carries a tag; ``write`` returns the tags of the items it finished, so a caller
    learns when a whole frame has left (the relay frees a call's slot only then).
    """

    def __init__(self):
        # type: () -> None
        self.items = collections.deque()  # type: collections.deque
        self.size = 0

    def put(self, data, tag=None):
        # type: (bytes, object) -> None
        """Queue ``data`` (after everything queued) under ``tag``; empty ``data`` is ignored."""
        if data:
            self.items.append([memoryview(data), tag, False])
            self.size += len(data)

    def drop(self, tag):
        # type: (object) -> None
        """Forget the items tagged ``tag`` that have not begun to leave."""
        keep = collections.deque()  # type: collections.deque
        for item in self.items:
            if item[1] == tag and not item[2]:
                self.size -= len(item[0])
            else:
                keep.append(item)
        self.items = keep

    def write(self, writer):
        # type: (Callable[[memoryview], int]) -> List[object]
        """Write what ``writer`` takes now; return the tags of the items fully written.

        ``writer`` raises BlockingIOError when the descriptor is full; other OSErrors propagate.
        """
        done = []  # type: List[object]
        while self.items:
            item = self.items[0]
            try:
                n = writer(item[0])
            except (BlockingIOError, InterruptedError):
                break
            self.size -= n
            item[0] = item[0][n:]
            item[2] = True
            if len(item[0]):
                break  # partial write: the descriptor is full
            self.items.popleft()
            done.append(item[1])
        return done

    def clear(self):
        # type: () -> List[object]
        """Drop everything queued, begun or not; return the tags of the items dropped, in order."""
        tags = [item[1] for item in self.items]
        self.items.clear()
        self.size = 0
        return tags


class Channel:
    """Frames to and from the host: an incremental reader and a never-blocking writer.

    Frames queued with ``queue`` leave when ``flush`` is called with the descriptor writable, so
    the job loop keeps enforcing limits however slowly the host reads. ``send`` (between jobs)
    waits until its frame is written.
    """

    def __init__(self, rfd, wfd):
        # type: (int, int) -> None
        self.rfd = rfd
        self.wfd = wfd
        self.buf = bytearray()
        self.eof = False
        self.head = None  # type: Optional[Dict[str, Any]]  # a frame whose raw body comes next
        self.out = Outbox()
        os.set_blocking(wfd, False)

    def queue(self, data):
        # type: (bytes) -> None
        """Queue one encoded frame (``frame()``)."""
        self.out.put(data)

    def flush(self):
        # type: () -> bool
        """Write what the descriptor takes now; True when nothing is left."""
        self.out.write(lambda view: os.write(self.wfd, view))
        return not self.out.items

    def send(self, obj):
        # type: (Dict[str, Any]) -> None
        """Write ``obj`` (after everything queued), waiting for the host to take it."""
        self.queue(frame(obj))
        poller = select.poll()
        poller.register(self.wfd, select.POLLOUT)
        while not self.flush():
            try:
                poller.poll()
            except InterruptedError:
                pass

    def feed(self):
        # type: () -> List[Dict[str, Any]]
        """Read what is available (call when poll says readable). Returns parsed frames."""
        try:
            chunk = os.read(self.rfd, 1 << 20)
        except InterruptedError:
            return []
        if not chunk:
            self.eof = True
            return []
        self.buf += chunk
        return self._parse()

    def _parse(self):
        # type: () -> List[Dict[str, Any]]
        """Whole frames from the buffer.

        A frame with ``body`` is followed by a raw frame, kept
        undecoded as ``raw`` (its 4-byte header included: a host-call reply exactly as the job
        reads it, forwarded without a copy into a new frame).
        """
        frames = []
        buf, pos = self.buf, 0
        while len(buf) - pos >= 4:
            (n,) = HEADER.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise ValueError("frame too large")
            if len(buf) - pos < 4 + n:
                break
            start, pos = pos, pos + 4 + n
            if self.head is not None:
                with memoryview(buf) as view:
                    self.head["raw"] = view[start:pos].tobytes()  # one copy
                frames.append(self.head)
                self.head = None
                continue
            msg = json.loads(buf[start + 4 : pos].decode())
            if "body" in msg:
                self.head = msg
            else:
                frames.append(msg)
        if pos:
            del buf[:pos]
        return frames

    def recv_blocking(self):
        # type: () -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]]]
        """Wait for one whole frame; return it and the frames that arrived with it.

        Returns ``(None, [])`` once the host closed its end. Raises ValueError on a frame over
        ``MAX_FRAME`` (and what ``json.loads`` raises on a frame that is not JSON).
        """
        while True:
            frames = self._parse()
            if frames:
                return frames[0], frames[1:]
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                return None, []
            self.buf += chunk


def frame(obj):
    # type: (Dict[str, Any]) -> bytes
    """One length-prefixed JSON frame."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def too_deep(obj, limit):
    # type: (Any, int) -> bool
    """True when lists/dicts in ``obj`` nest deeper than ``limit`` (iterative: any depth)."""
    stack = [(obj, 1)] if isinstance(obj, (list, dict)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (list, dict)):
                stack.append((child, depth + 1))
    return False


def b64(data):
    # type: (bytes) -> str
    """``data`` as base64 text (ASCII ``str``)."""
    return base64.b64encode(data).decode()


def unb64(text):
    # type: (str) -> bytes
    """The bytes that the base64 ``text`` encodes; ``b""`` for an empty ``text``."""
    return base64.b64decode(text.encode()) if text else b""


# Helpers ------------------------------------------------------------------------------------------


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


def write_helpers(helper_dir, helpers):
    # type: (str, Dict[str, str]) -> None
    """Write the job-importable helper modules (``sf_host``) into ``helper_dir``."""
    for name, source in helpers.items():
        os.makedirs(helper_dir, exist_ok=True)
        with open(os.path.join(helper_dir, name), "w") as fh:
            fh.write(source)
        os.chmod(os.path.join(helper_dir, name), 0o644)


def preload(helper_dir, spec):
    # type: (str, Dict[str, Any]) -> Optional[str]
    """Write the pool's preload files into the helper dir and import its modules.

    This runs before the zygote is forked, so every job inherits them. Returns an error text, or None.
    """
    try:
        os.makedirs(helper_dir, exist_ok=True)
        for name, data in spec.get("files", {}).items():
            path = os.path.join(helper_dir, os.path.basename(name))
            with open(path, "wb") as fh:
                fh.write(unb64(data))
            os.chmod(path, 0o644)
        for name in reversed(spec.get("path", [])):
            sys.path.insert(0, os.path.join(helper_dir, os.path.basename(name)))
        for module in spec.get("modules", []):
            __import__(module)
    except BaseException as exc:  # reported in the ready frame: the host refuses the pool
        return "preload failed: %s: %s" % (type(exc).__name__, exc)
    return None


# The supervisor -----------------------------------------------------------------------------------


class Supervisor:
    """Runs one job at a time for the host, over ``channel``, as ``config`` (the host's init frame) says.

    ``config`` gives the mode (``container`` drops privileges to ``job_uid``; ``local`` does not), the
    work, helper, tmp and writable dirs, the helpers and preload to install, and the lane (when the
    container holds several). Jobs are forked by a zygote; after each one every writable dir is
    wiped and restored, and a container left unclean is reported ``tainted``.
    """

    def __init__(self, channel, config):
        self.chan = channel
        self.mode = config.get("mode", "container")
        self.uid = int(config.get("job_uid", 65534))
        self.work = config.get("work_dir", "/work")
        self.helper_dir = config.get("helper_dir", "/sf")
        self.writable = tuple(config.get("writable", WRITABLE_DIRS))
        self.tmp = config.get("tmp_dir", "/tmp")
        self.me = os.getpid()
        self.container = self.mode == "container"
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.lane = config.get("lane")  # type: Optional[int]
        """This supervisor's lane when the container holds several (``Multiplexer``), else None:
        then the kill, the stray check and the IPC check reach only the lane's uid."""
        if not self.container or self.lane is not None:
            set_subreaper()  # a lane's orphans come back to its supervisor, not to PID 1
        write_helpers(self.helper_dir, config.get("helpers", {}))
        if not self.container:
            for top in self.writable:
                os.makedirs(top, 0o700, exist_ok=True)
        self.tops = snapshot_tops(self.writable)  # restored after every job (reset_top)
        self.preload_error = config.get("preload_error") or preload(
            self.helper_dir, config.get("preload") or {}
        )
        self.exited = {}  # pid -> wait status, for children reaped while sweeping
        self.pending = []  # frames received while a job ran that belong to the main loop
        self.zpid, self.zsock = start_zygote(self)
        self.prespawned = None

    # main loop
    def serve(self):
        """Serve the host until it says ``shutdown`` or closes the channel; return None then.

        Sends ``ready`` (with the preload error, if any) first, then answers each ``run`` with a ``result``
        frame (a job that raises is reported as a tainted ``sandbox_error``, never fatal) and each ``ping``
        with a ``pong``; after an untainted job the next job's child is pre-spawned.
        """
        import gc

        gc.collect()
        gc.freeze()  # keep the collector from touching (and so copying) the parent's pages in each child
        hello = {"op": "ready", "pid": self.me, "python": sys.version.split()[0]}
        if self.preload_error:
            hello["error"] = self.preload_error
        self.chan.send(hello)
        while True:
            if self.pending:
                msg = self.pending.pop(0)
            else:
                msg, rest = self.chan.recv_blocking()
                self.pending.extend(rest)
                if msg is None:
                    return
            op = msg.get("op")
            if op == "run":
                try:
                    reply = self.run_job(msg)
                except Exception as exc:  # never die on a job: report and ask for replacement
                    reply = {"status": "sandbox_error", "error": "supervisor: %r" % (exc,), "tainted": True}
                reply["op"] = "result"
                reply["id"] = msg.get("id")
                self.chan.send(reply)
                self.exited.clear()
                if not reply.get("tainted") and self.zpid is not None:
                    self.prespawned = self.spawn()  # off the critical path: the next job starts warm
            elif op == "shutdown":
                return
            elif op == "ping":
                self.chan.send({"op": "pong", "id": msg.get("id")})
            # stale host-call answers for a finished job are dropped

    def spawn(self):
        """Have the zygote fork a job process; it drops privileges and then waits for its spec.

        The zygote has never held any job's data, so a job reading its own memory finds its own
        spec and nothing of the jobs before it. Returns the child's pid and our ends of its pipes,
        or None when the zygote is gone.
        """
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        setup_r, setup_w = os.pipe()
        spec_r, spec_w = os.pipe()
        host_sup, host_job = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            send_fds(self.zsock, b"spawn", [out_w, err_w, setup_w, host_job.fileno(), spec_r])
            pid = self.zygote_reply()
        except OSError:
            self.zygote_died()
            pid = None
        finally:
            for fd in (out_w, err_w, setup_w, spec_r):
                os.close(fd)
            host_job.close()
        child = {
            "pid": pid,
            "out_r": out_r,
            "err_r": err_r,
            "setup_r": setup_r,
            "spec_w": spec_w,
            "host": host_sup,
        }
        if pid is None:
            self.discard(child)
            return None
        host_sup.setblocking(False)
        try:  # a large reply then reaches the job in a few writes, not a poll round per 200 KB
            host_sup.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        except OSError:
            pass
        return child

    def discard(self, child):
        """Close our ends of ``child``'s pipes and its host-call socket (errors ignored)."""
        for key in ("out_r", "err_r", "setup_r", "spec_w"):
            try:
                os.close(child[key])
            except OSError:
                pass
        child["host"].close()

    # one job
    def run_job(self, msg):
        # type: (Dict[str, Any]) -> Dict[str, Any]
        """Run one job (see ``JobRun`` for the steps) and return its result frame."""
        return JobRun(self, msg).run()

    def read_setup(self, fd):
        """Read the child's setup pipe ``fd`` to its end; return None when set-up succeeded, else its error.

        Success is the child writing ``SETUP_OK`` or the pipe closing empty (a successful exec closes it:
        close-on-exec); anything else is the child's error text (bad UTF-8 replaced).
        """
        data = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                break
            data += chunk
            if data.startswith(SETUP_OK):
                return None
        if not data:
            return None  # exec succeeded (CLOEXEC closed the pipe)
        return data.decode("utf-8", "replace")

    def reap(self, pid, exit_status, block=False):
        """Reap orphans; return the main child's wait status (reported by the zygote) once known."""
        self.reap_all()
        while exit_status is None:
            if pid in self.exited:
                return self.exited.pop(pid)
            if self.zpid is None:
                return -1 if block else None  # the forker died with the job's status
            if not block:
                self.drain_zygote()
                return self.exited.pop(pid, None)
            self.drain_zygote(block=True)
        return exit_status

    def zygote_reply(self):
        """Wait for the zygote's answer to a spawn: the child's pid, or None if the zygote died."""
        while True:
            msg = recv_msg(self.zsock)
            if msg is None:
                self.zygote_died()
                return None
            if "spawned" in msg:
                return msg["spawned"]
            if "exited" in msg:
                self.exited[msg["exited"]] = msg["status"]

    def drain_zygote(self, block=False):
        """Read the zygote's messages, recording each ``exited`` status in ``self.exited``.

        Without ``block``, reads what has arrived and returns; with it, waits for one message. The zygote
        closing its socket calls ``zygote_died``. The socket is left blocking either way.
        """
        self.zsock.setblocking(block)
        try:
            while True:
                try:
                    msg = recv_msg(self.zsock)
                except BlockingIOError:
                    return
                if msg is None:
                    self.zygote_died()
                    return
                if "exited" in msg:
                    self.exited[msg["exited"]] = msg["status"]
                if block:
                    return
        finally:
            if self.zsock is not None:
                self.zsock.setblocking(True)

    def zygote_died(self):
        """Forget the zygote: no pid, its socket closed (later spawns then fail as ``zygote gone``)."""
        self.zpid = None
        if self.zsock is not None:
            self.zsock.close()
            self.zsock = None

    def sweep(self, pid):
        """Kill every process the job started; return True if any besides the main one existed."""
        if self.lane is not None:
            return self.sweep_lane(pid)
        stray = False
        for _ in range(200):
            if self.container:
                # everything but the supervisor and the zygote: a job can make its /proc entry
                # root-owned (PR_SET_DUMPABLE 0), so ownership is not a safe test
                victims = [p for p in all_pids() if p not in (self.me, self.zpid)]
                if not victims:
                    break
                if [v for v in victims if v != pid]:
                    stray = True
                for victim in victims:
                    try:
                        os.kill(victim, signal.SIGKILL)
                    except OSError:
                        pass
            else:
                victims = [v for v in self.descendants() if v != self.zpid]
                if not victims:
                    break
                if [v for v in victims if v != pid]:
                    stray = True
                for victim in victims:
                    try:
                        os.kill(victim, signal.SIGKILL)
                    except OSError:
                        pass
            self.reap_all()
            time.sleep(0.001)
        return stray

    def sweep_lane(self, pid):
        """``sweep`` for one lane of a shared container.

        Kill every process of the lane's uid and nothing else. The kill is ``kill(-1, SIGKILL)``
        sent by a helper that has dropped to that uid (it reaches exactly the processes of the uid,
        however they hide, and no pid that a neighbour's new process may have reused); ``/proc``
        says when none are left.
        """
        stray = False
        for _ in range(200):
            victims = uid_pids(self.uid)
            if not victims:
                break
            if [v for v in victims if v != pid]:
                stray = True
            kill_as(self.uid)
            self.reap_all()
            time.sleep(0.001)
        return stray

    def reap_all(self):
        """Reap every exited child without blocking; return None when none is left to reap.

        The zygote's exit calls ``zygote_died``; any other child's wait status goes into ``self.exited``.
        """
        while True:
            try:
                got, status = os.waitpid(-1, os.WNOHANG)
            except (ChildProcessError, InterruptedError):
                return
            if got == 0:
                return
            if got == self.zpid:
                self.zygote_died()
            else:
                self.exited[got] = status

    def descendants(self):
        """The pids of every process below this supervisor (children, theirs, ...), read from ``/proc``."""
        children = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                ppid = parent_of(int(name))
                if ppid is not None:
                    children.setdefault(ppid, []).append(int(name))
        out, todo = [], [self.me]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    # in the child
    def child(self, out_w, err_w, setup_w, host_fd, spec_fd):  # pragma: no cover - runs in the child
        """Become the job (in the forked child): never returns.

        Drops privileges (in a container), reads the job spec from ``spec_fd``, writes its inputs, sets the
        descriptors (stdin, ``out_w``, ``err_w``, ``host_fd`` as fd 3, ``setup_w``), rlimits and environment,
        then execs ``argv`` or runs ``source``. A set-up failure is written to ``setup_w`` and exits 125; an
        exec failure is written there and exits 127.
        """
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            if self.container:
                with open("/proc/self/oom_score_adj", "w") as fh:
                    fh.write("1000")
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
            if self.lane is not None:
                deny_listening()
            chunks = []
            while True:
                chunk = os.read(spec_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(spec_fd)
            job = json.loads(b"".join(chunks).decode())
            work = self.work
            source = job.get("source")
            write_inputs(job, work, self.tmp)
            fsize = int(job.get("file_size", 64 << 20))
            mfd = stdin_fd(unb64(job.get("stdin", "")))
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in (mfd, out_w, err_w, host_fd, setup_w)]
            for target, fd in enumerate(high):
                os.dup2(fd, target)
            os.set_inheritable(4, False)
            os.closerange(5, 65536)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if self.container:
                pids = int(job.get("pids", 128))
                resource.setrlimit(resource.RLIMIT_NPROC, (pids, pids))
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": work,
                "LANG": "C.UTF-8",
                "LC_ALL": "C.UTF-8",
                "PYTHONPATH": self.helper_dir,
                "PYTHONDONTWRITEBYTECODE": "1",
                "SF_HOST_FD": "3",
                "TMPDIR": self.tmp,
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
    prog = Prog(len(code), filters)
    libc = ctypes.CDLL(None, use_errno=True)
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


# The host-call relay ----------------------------------------------------------------------------


class Relay:
    """Host calls of one job: the job's socket on one side, the host channel on the other.

    Invariants, each enforced here before anything reaches the host:

    * at most ``in_flight`` calls of the job are forwarded and unanswered; a call's slot is
      freed only once its reply has been written to the job, so a job that stops reading its
      replies stops its own calls, never the supervisor (the socket is simply not read);
    * the frames of calls in flight total at most ``budget`` bytes; a call past it is answered
      with an error at once;
    * a frame over ``MAX_HOST_FRAME`` is refused from its header (never read, never re-encoded):
      the job gets an error and its channel is shut;
    * a request is forwarded as the job's own bytes (no re-encoding, so no growth), after its
      shape and nesting depth (``MAX_DEPTH``) are checked;
    * nothing here blocks: the loop polls, reads and writes what is ready.
    """

    def __init__(self, sock, job_id, job, chan):
        # type: (socket.socket, Any, Dict[str, Any], Channel) -> None
        self.sock = sock
        self.job_id = job_id
        self.chan = chan
        self.max_calls = int(job.get("host_calls", 0))
        self.cap = max(1, int(job.get("host_calls_in_flight", 4)))
        self.budget = int(job.get("host_call_bytes", 32 << 20))
        self.calls = 0
        self.sizes = {}  # type: Dict[int, int]  # call number -> request bytes, until answered
        self.in_flight_bytes = 0
        self.inbuf = bytearray()
        self.to_job = Outbox()
        self.reading = True
        self.writing = True

    # polling
    def wants_read(self):
        # type: () -> bool
        """True while the job's socket should be polled for requests.

        That is: still reading, a slot free, and the replies to the job not backed up (under 1 MiB).
        """
        return self.reading and len(self.sizes) < self.cap and self.to_job.size < (1 << 20)

    def wants_write(self):
        # type: () -> bool
        """True while replies wait for the job and its socket can still take them."""
        return self.writing and bool(self.to_job.items)

    # job -> host
    def on_readable(self):
        # type: () -> None
        """Read what the job sent and handle the whole requests in it; its end of stream stops reading."""
        try:
            chunk = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.reading = False
            return
        self.inbuf += chunk
        self.parse()

    def parse(self):
        # type: () -> None
        """Handle each whole request in the buffer while a slot is free; an oversized one is refused."""
        while self.reading and len(self.sizes) < self.cap and len(self.inbuf) >= 4:
            (n,) = HEADER.unpack_from(self.inbuf)
            if n > MAX_HOST_FRAME:
                self.refuse_oversized(n)
                return
            if len(self.inbuf) < 4 + n:
                return
            raw = bytes(self.inbuf[4 : 4 + n])
            del self.inbuf[: 4 + n]
            self.request(raw)

    def request(self, raw):
        # type: (bytes) -> None
        """Check one request (the job's frame body ``raw``) and forward it to the host, or answer it at once.

        A malformed or too deeply nested request, one past the job's call limit, or one that would pass
        ``budget`` gets an error reply from here; otherwise it takes a slot and goes to the host unchanged.
        """
        self.calls += 1
        try:
            req = json.loads(raw.decode("utf-8", "surrogatepass"))
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            if (
                not isinstance(req.get("name"), str)
                or not isinstance(req.get("args", []), list)
                or not isinstance(req.get("kwargs", {}), dict)
            ):
                raise ValueError("bad request shape")
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, RecursionError):
                exc = ValueError("arguments nest deeper than %d levels" % MAX_DEPTH)
            self.answer({"ok": False, "error": "malformed host call: %s" % exc})
            return
        call_id = req.get("call_id")
        if too_deep(req, MAX_DEPTH + 2):  # the request object and its args list are two levels
            self.answer(
                {"ok": False, "error": "host call arguments nest deeper than %d levels" % MAX_DEPTH},
                call_id,
            )
            return
        if self.calls > self.max_calls:
            self.answer({"ok": False, "error": "host call limit (%d) reached" % self.max_calls}, call_id)
            return
        if self.in_flight_bytes + len(raw) > self.budget:
            self.answer(
                {
                    "ok": False,
                    "error": "host call refused: its %d bytes of arguments would pass the job's "
                    "budget of %d bytes for calls in flight (Limits.host_call_bytes); "
                    "wait for replies or send less" % (len(raw), self.budget),
                },
                call_id,
            )
            return
        self.sizes[self.calls] = len(raw)
        self.in_flight_bytes += len(raw)
        head = '{"op":"hostcall","id":%s,"call":%d,"size":%d,"req":' % (
            json.dumps(self.job_id),
            self.calls,
            len(raw),
        )
        body = head.encode() + raw + b"}"
        self.chan.out.put(HEADER.pack(len(body)) + body, "hostcall")

    def stop(self):
        # type: () -> None
        """The job is over: forward nothing more of it (calls not yet sent to the host are dropped)."""
        self.reading = False
        self.chan.out.drop("hostcall")

    def refuse_oversized(self, n):
        # type: (int) -> None
        """Refuse a call whose frame is ``n`` bytes (over ``MAX_HOST_FRAME``) and shut the job's channel.

        The job gets an error reply; nothing more of it is read (its pending write fails, never hangs).
        """
        self.answer(
            {
                "ok": False,
                "error": "host call of %d bytes refused: the limit is %d bytes per call; "
                "this job's host-call channel is now closed" % (n, MAX_HOST_FRAME),
            }
        )
        self.reading = False
        self.inbuf = bytearray()
        try:
            self.sock.shutdown(socket.SHUT_RD)  # the job's pending write fails (EPIPE), never hangs
        except OSError:
            pass

    # host -> job
    def on_reply(self, msg):
        # type: (Dict[str, Any]) -> None
        """A ``hostcall_result`` from the host; replies to unknown or finished calls are dropped."""
        call = msg.get("call")
        if msg.get("id") != self.job_id or not isinstance(call, int) or call not in self.sizes:
            return
        if not self.writing:
            self.release(call)
            return
        raw = msg.get("raw")  # the job's frame, header included
        if raw is None:  # a reply the host encoded as one frame
            raw = frame({k: msg.get(k) for k in ("ok", "value", "error", "call_id")})
        self.to_job.put(raw, call)

    def answer(self, payload, call_id=None):
        # type: (Dict[str, Any], Any) -> None
        """A reply the supervisor gives itself (refusals); it holds no slot."""
        payload = dict(payload)
        payload["call_id"] = call_id
        self.to_job.put(frame(payload))

    def on_writable(self):
        # type: () -> None
        """Write replies to the job as far as its socket takes them; free the slots of those fully written.

        A job that closed its end gets nothing more (everything queued is dropped, its slots freed).
        """
        try:
            done = self.to_job.write(self.sock.send)
        except OSError:  # the job closed its end: nothing more can reach it
            self.writing = False
            done = self.to_job.clear()
        for call in done:
            self.release(call)
        if done and self.reading:
            self.parse()  # slots freed: requests already buffered may go now

    def release(self, call):
        # type: (object) -> None
        """Free the slot (and the bytes) of call number ``call``; no-op for None or a call not in flight."""
        if call is not None and call in self.sizes:
            self.in_flight_bytes -= self.sizes.pop(call)  # type: ignore[call-overload]

    def close(self):
        # type: () -> None
        """Close the supervisor's end of the job's host-call socket."""
        self.sock.close()


# One job, step by step --------------------------------------------------------------------------


class JobRun:
    """One job from fork to report.

    ``run`` calls the steps in order:

    spawn -> feed -> (drain, enforce)* -> end_io -> collect -> wipe -> report

    * ``spawn``: a pre-forked (or freshly forked) child of the zygote, privileges already dropped;
    * ``feed``: the job spec to the child, then its setup verdict;
    * ``drain``: one poll round: stdout/stderr into capped buffers, host calls relayed (``Relay``),
      frames to the host written as far as the host takes them; never blocks past the deadline;
    * ``enforce``: the main process's exit, the wall-clock deadline, output caps, stuck pipes;
      each ends in ``kill``;
    * ``kill``: SIGKILL every process of the job (``Supervisor.sweep``);
    * ``collect``: the requested files, read as the job's uid;
    * ``wipe``: empty every writable dir and restore its own metadata (``reset_top``);
    * ``report``: the status (decided from facts the job cannot forge) and the result frame.
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

    def run(self):
        # type: () -> Dict[str, Any]
        """Run the job through every step (``spawn`` ... ``report``); return the result frame for the host."""
        failed = self.spawn()
        if failed is not None:
            return failed
        self.feed()
        while True:
            self.enforce()
            if self.finished():
                break
            self.drain()
        self.end_io()
        files, file_errors, collected = self.collect()
        wiped = self.wipe() and collected
        return self.report(files, file_errors, wiped)

    # spawn / feed
    def spawn(self):
        # type: () -> Optional[Dict[str, Any]]
        """Take the pre-forked child (or fork one); a result frame when that is impossible."""
        sup = self.sup
        if sup.zpid is None:
            return gone("supervisor: the job forker is gone")
        child, sup.prespawned = sup.prespawned, None
        if child is None or child["pid"] in sup.exited:
            if child is not None:
                sup.discard(child)
            child = sup.spawn()
        self.marks["fork"] = time.monotonic()
        if child is None:
            return gone("supervisor: the job forker died")
        self.child = child
        self.pid = child["pid"]
        for key in ("out_r", "err_r"):
            fd = child[key]
            os.set_blocking(fd, False)
            self.streams[fd] = bytearray()
            self.truncated[fd] = False
            self.open_fds.add(fd)
        self.relay = Relay(child["host"], self.id, self.job, sup.chan)
        return None

    def feed(self):
        # type: () -> None
        """Write the spec to the child and read its setup verdict (kill it if setup failed)."""
        assert self.child is not None
        spec_w = self.child["spec_w"]
        try:
            view = memoryview(json.dumps(self.job).encode())
            while view:
                view = view[os.write(spec_w, view) :]
        except OSError:
            pass  # the child died before reading: its setup pipe says why
        finally:
            os.close(spec_w)
        self.setup_msg = self.sup.read_setup(self.child["setup_r"])
        os.close(self.child["setup_r"])
        self.marks["setup"] = time.monotonic()
        if self.setup_msg is not None:
            self.kill("setup")

    # the loop
    def finished(self):
        # type: () -> bool
        """True once the job has been killed and is over: every pipe closed and its exit status known.

        Also true 5 s after the kill whatever is left (a pipe held open after every kill).
        """
        if self.killed_at is None:
            return False
        if not self.open_fds and self.exit_status is not None:
            return True
        return time.monotonic() - self.killed_at > 5.0  # a pipe held open after every kill

    def enforce(self):
        # type: () -> None
        """Apply every rule that ends a job; each ends in ``kill``."""
        if self.exit_status is None:
            self.exit_status = self.sup.reap(self.pid, None)
            if self.exit_status is not None and self.killed_at is None:
                self.died_alone = True  # before any kill of ours (a lane's OOM verdict needs this)
                self.kill(None)  # main process finished: whatever it left behind dies now
        else:
            self.sup.reap_all()
        now = time.monotonic()
        if self.killed_at is None and now >= self.deadline:
            self.kill("timeout")
        if self.killed_at is None and any(self.truncated.values()):
            self.kill("output_limit")
        if self.killed_at is not None and now - self.killed_at > 2.0:
            self.kill("stuck")  # something holds a pipe open after every kill: taint the box

    def kill(self, reason):
        # type: (Optional[str]) -> None
        """SIGKILL every process of the job; the first reason given is the one reported."""
        if self.relay is not None:
            self.relay.stop()
        stray = self.sup.sweep(self.pid)
        self.stray = self.stray or stray
        if reason is None and stray:
            reason = "stray"
        self.kill_reason = self.kill_reason or reason
        if self.killed_at is None:
            self.killed_at = time.monotonic()

    def wait_ms(self):
        # type: () -> int
        """How long the next poll may wait, in ms: 500 after the kill, else to the deadline (at most 1 s)."""
        if self.killed_at is not None:
            return 500
        return int(max(0.0, min(self.deadline - time.monotonic(), 1.0)) * 1000) + 1

    def drain(self):
        # type: () -> None
        """One poll round over every descriptor of the job and the host channel."""
        sup, relay = self.sup, self.relay
        assert relay is not None
        poller = select.poll()
        for fd in self.open_fds:
            poller.register(fd, select.POLLIN)
        if sup.zsock is not None:
            poller.register(sup.zsock.fileno(), select.POLLIN)
        poller.register(sup.wake_r, select.POLLIN)
        poller.register(sup.chan.rfd, select.POLLIN)
        if sup.chan.out.items:
            poller.register(sup.chan.wfd, select.POLLOUT)
        sock_mask = (select.POLLIN if relay.wants_read() else 0) | (
            select.POLLOUT if relay.wants_write() else 0
        )
        if sock_mask:
            poller.register(relay.sock.fileno(), sock_mask)
        try:
            events = poller.poll(self.wait_ms())
        except InterruptedError:
            return
        for fd, ev in events:
            if sup.zsock is not None and fd == sup.zsock.fileno():
                sup.drain_zygote()
            elif fd == sup.wake_r:
                try:
                    os.read(sup.wake_r, 4096)
                except OSError:
                    pass
            elif fd in self.open_fds:
                self.read_output(fd)
            elif fd == sup.chan.rfd:
                self.from_host(ev)
            elif fd == sup.chan.wfd:
                sup.chan.flush()
            elif fd == relay.sock.fileno():
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and relay.wants_read():
                    relay.on_readable()
                if ev & (select.POLLOUT | select.POLLERR):
                    relay.on_writable()
        if sup.chan.out.items:
            sup.chan.flush()  # host-bound frames the relay queued this round
        if relay.wants_write():
            relay.on_writable()

    def read_output(self, fd):
        # type: (int) -> None
        """Read what the job wrote on ``fd`` (stdout or stderr) into its capped buffer.

        End of stream closes ``fd``; bytes past the cap are dropped, marked truncated, and kill the job
        (``output_limit``).
        """
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open_fds.discard(fd)
            os.close(fd)
            return
        buf = self.streams[fd]
        room = self.cap - len(buf)
        if room > 0:
            buf += chunk[:room]
        if len(chunk) > room:
            self.truncated[fd] = True
            if self.killed_at is None:
                self.kill("output_limit")

    def from_host(self, ev):
        # type: (int) -> None
        """Handle the host channel's poll events ``ev``: host-call replies go to the relay, other frames wait.

        Raises:
            SystemExit: the host closed the channel (the job is killed first).
        """
        sup = self.sup
        if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return
        for msg in sup.chan.feed():
            if msg.get("op") == "hostcall_result":
                assert self.relay is not None
                self.relay.on_reply(msg)  # stale answers (an earlier job's) are dropped there
            else:
                sup.pending.append(msg)
        if sup.chan.eof:
            self.kill("host gone")
            raise SystemExit(0)

    def end_io(self):
        # type: () -> None
        """Close the job's descriptors; make sure the main process is reaped and all is dead."""
        self.marks["end"] = time.monotonic()
        assert self.relay is not None
        self.relay.close()
        for fd in list(self.open_fds):
            os.close(fd)
        self.open_fds.clear()
        if self.exit_status is None:
            self.exit_status = self.sup.reap(self.pid, None, block=True)
        self.stray = self.sup.sweep(self.pid) or self.stray

    # after the job
    def collect(self):
        # type: () -> Tuple[Dict[str, str], List[str], bool]
        """Read the job's ``collect`` files; return them (base64), the per-file errors, and if it worked."""
        files, errors, ok = collect_files(self.sup, self.job)
        self.marks["collect"] = time.monotonic()
        return files, errors, ok

    def wipe(self):
        # type: () -> bool
        """Empty every writable top dir and restore its owner and mode; return True when all of it worked."""
        ok = True
        for top in self.sup.writable:
            ok = wipe_tree(top) and ok
            ok = reset_top(top, self.sup.tops.get(top)) and ok
        self.marks["wipe"] = time.monotonic()
        return ok

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
        taint = []
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
        out_r, err_r = self.child["out_r"], self.child["err_r"]  # type: ignore[index]
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


def run_source(source, args, env, work):  # pragma: no cover - runs in the child
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
    main.__builtins__ = builtins
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
        threading._shutdown()  # join non-daemon threads, as the interpreter does at exit
    except Exception:
        pass
    try:
        atexit._run_exitfuncs()
    except Exception:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code & 0xFF if code >= 0 else 1)


# After the job: collect, wipe, reset ------------------------------------------------------------


def collect_files(sup, job):
    # type: (Supervisor, Dict[str, Any]) -> Tuple[Dict[str, str], List[str], bool]
    """Read the collected files; all job processes are dead by now. Returns files, errors, ok.

    Collection runs in a child that drops to the job's uid, so a symlink the job left cannot make
    the supervisor read what the job could not.
    """
    collect = job.get("collect", [])
    if not collect:
        return {}, [], True
    limit = int(job.get("files_out_bytes", 8 << 20))
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return {}, ["cannot fork the collector"], False
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            if sup.container:
                os.setgroups([])
                os.setgid(sup.uid)
                os.setuid(sup.uid)
            payload = json.dumps(read_files(sup.work, collect, limit)).encode()
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view) :]
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        try:
            chunk = os.read(r, 1 << 20)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    while True:
        try:
            os.waitpid(pid, 0)  # the collector must be gone before the next job looks around
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    sup.reap_all()
    try:
        out = json.loads(b"".join(chunks).decode())
    except ValueError:
        return {}, ["collector failed"], False
    return out["files"], out["errors"], True


def read_files(work, collect, limit):  # pragma: no cover - runs in the collector
    # type: (str, List[str], int) -> Dict[str, Any]
    """Read the ``collect`` files (relative to ``work``) up to ``limit`` bytes in all.

    Returns ``{"files": {rel: base64}, "errors": [...]}``: symlinks and non-files are skipped silently,
    a file past the limit or unreadable is named in ``errors``.
    """
    files, errors, total = {}, [], 0
    for rel in collect:
        path = os.path.join(work, rel)
        try:
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            if total + size > limit:
                errors.append("%s: skipped, collected files passed %d bytes" % (rel, limit))
                continue
            with open(path, "rb") as fh:
                data = fh.read(limit - total + 1)
            total += len(data)
            files[rel] = b64(data)
        except OSError as exc:
            errors.append("%s: %s" % (rel, exc.strerror))
    return {"files": files, "errors": errors}


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_dir(name, dir_fd=None):
    # type: (str, Optional[int]) -> int
    """Open a directory without following a link; chmod it open first if the job closed it."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)  # we lstat'd it: a directory, and every job process is dead
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def wipe_tree(top):
    # type: (str) -> bool
    """Remove everything below ``top``; True when it is all gone.

    Iterative and relative to directory descriptors, holding one descriptor at a time, so no
    depth (a job may leave 10,000 nested directories), path length or open-files limit stops it;
    never follows a link. The caller has killed every process of the job.
    """
    try:
        fd = os.open(top, DIR_FLAGS)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    ok = True
    stack = []  # type: List[Tuple[str, List[str]]]  # (name of the dir we are in, entries left in its parent)
    todo = listdir(fd)
    try:
        while True:
            sub = None
            while todo:
                name = todo.pop()
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    sub = name
                    break
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError as exc:
                    ok = ok and exc.errno == errno.ENOENT
            if sub is not None:
                try:
                    child = open_dir(sub, fd)
                except OSError:
                    ok = False
                    continue
                os.close(fd)
                fd = child
                stack.append((sub, todo))
                todo = listdir(fd)
                continue
            if not stack:
                break
            name, todo = stack.pop()
            parent = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError as exc:
                ok = ok and exc.errno == errno.ENOENT
    except OSError:
        ok = False
    finally:
        os.close(fd)
    return ok


def listdir(fd):
    # type: (int) -> List[str]
    """The names in the directory open as ``fd``; ``[]`` when it cannot be read."""
    try:
        return os.listdir(fd)
    except OSError:
        return []


class TopDir:
    """What a writable top directory looked like when the container started."""

    def __init__(self, path):
        # type: (str) -> None
        st = os.lstat(path)
        self.mode = stat.S_IMODE(st.st_mode)
        self.uid = st.st_uid
        self.gid = st.st_gid
        self.times = (st.st_atime_ns, st.st_mtime_ns)
        self.xattrs = {}  # type: Dict[str, bytes]
        for name in list_xattrs(path):
            try:
                self.xattrs[name] = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                pass


def snapshot_tops(paths):
    # type: (Sequence[str]) -> Dict[str, TopDir]
    """A :class:`TopDir` for each of ``paths`` that can be ``lstat``-ed (the others are left out)."""
    tops = {}
    for path in paths:
        try:
            tops[path] = TopDir(path)
        except OSError:
            pass
    return tops


def list_xattrs(path):
    # type: (str) -> List[str]
    """The extended attribute names of ``path`` (symlinks not followed); ``[]`` when they cannot be read."""
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def reset_top(path, was):
    # type: (str, Optional[TopDir]) -> bool
    """Give ``path`` back its start-up owner, mode, extended attributes (ACLs too) and times.

    A job owns its work dir and may chmod it, set user xattrs or ACLs on it and choose its
    mtime; emptying the dir keeps all of that, so without this a job could break the slot for
    every later job (mode 0500) or pass them data. False when any of it could not be restored.
    """
    if was is None:
        return True
    ok = True
    try:
        st = os.lstat(path)
        if (st.st_uid, st.st_gid) != (was.uid, was.gid):
            os.chown(path, was.uid, was.gid)
        os.chmod(path, was.mode)
        for name in list_xattrs(path):
            if name not in was.xattrs:
                try:
                    os.removexattr(path, name, follow_symlinks=False)
                except OSError:
                    ok = False
        for name, value in was.xattrs.items():
            try:
                if os.getxattr(path, name, follow_symlinks=False) != value:
                    os.setxattr(path, name, value, follow_symlinks=False)
            except OSError:
                ok = False
        os.utime(path, ns=was.times, follow_symlinks=False)
    except OSError:
        ok = False
    return ok


def uid_pids(uid):
    # type: (int) -> List[int]
    """Processes (zombies too) whose real, effective or saved uid is ``uid``.

    Read from ``/proc/<pid>/status`` (readable even when a process made itself non-dumpable).
    """
    out = []
    for pid in all_pids():
        try:
            with open("/proc/%d/status" % pid) as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        if str(uid) in line.split()[1:4]:
                            out.append(pid)
                        break
        except OSError:
            pass
    return out


def kill_as(uid):
    # type: (int) -> None
    """SIGKILL every process of ``uid``.

    A child drops to ``uid`` and calls ``kill(-1)``, which an unprivileged process may only send to
    its own uid's processes (never to another lane's).
    """
    try:
        pid = os.fork()
    except OSError:
        return  # the caller's loop tries again
    if pid == 0:  # pragma: no cover - runs in the helper
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
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


def send_fds(sock, data, fds):
    """Send ``data`` with the descriptors ``fds`` (``SCM_RIGHTS``) on the unix socket ``sock``."""
    import array

    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def recv_msg(sock):
    """One JSON message from the zygote socket, or None at end of stream."""
    data = sock.recv(65536)
    return json.loads(data.decode()) if data else None


def start_zygote(sup):
    """Fork the zygote: a pristine copy of the warm interpreter that forks every job's process.

    It never receives job data (only "spawn" with the job's fds), so nothing of one job can be
    found in the memory of the next. It reports each child's pid and, later, its wait status.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the zygote
        code = 0
        try:
            ours.close()
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            zygote(sup, theirs)
        except BaseException:
            code = 1
        os._exit(code)
    theirs.close()
    return pid, ours


def zygote(sup, sock):  # pragma: no cover - runs in the zygote
    """The zygote's loop (never returns; exits when ``sock`` closes).

    Each ``spawn`` on ``sock`` brings a job's descriptors: it forks a child that runs ``sup.child`` on
    them and answers ``{"spawned": pid}``; each reaped child is reported as ``{"exited": pid,
    "status": status}``.
    """
    import array
    import gc

    gc.collect()
    gc.freeze()

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        try:
            events = poller.poll(1000)
        except InterruptedError:
            continue
        for fd, _ in events:
            if fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except OSError:
                    pass
                continue
            fds = array.array("i")
            data, ancdata, _, _ = sock.recvmsg(64, socket.CMSG_SPACE(8 * fds.itemsize))
            if not data:
                os._exit(0)
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
            child_fds = list(fds)
            pid = os.fork()
            if pid == 0:
                try:
                    sock.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    sup.child(*child_fds)
                finally:
                    os._exit(126)
            for cfd in child_fds:
                os.close(cfd)
            sock.send(json.dumps({"spawned": pid}).encode())
        while True:
            try:
                got, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if got == 0:
                break
            sock.send(json.dumps({"exited": got, "status": status}).encode())


# Several lanes in one container ---------------------------------------------------------------


LANE_BACKLOG = 8 << 20
"""Bytes queued for the host past which the multiplexer stops reading the lanes (they then queue
in their own never-blocking outboxes and keep enforcing their limits)."""


def lane_config(config, lane):
    # type: (Dict[str, Any], int) -> Dict[str, Any]
    """The single-job supervisor config of ``lane``: its own uid, work dir, tmp and top dir."""
    top = "%s/%d" % (config.get("lanes_root", "/lanes"), lane)
    out = dict(config)
    for key in ("helpers", "preload", "lanes"):
        out.pop(key, None)
    out.update(
        lane=lane,
        job_uid=int(config.get("job_uid", 65534)) + lane,
        work_dir=top + "/work",
        tmp_dir=top + "/tmp",
        writable=[top],
    )
    return out


class Multiplexer:
    """PID 1 of a container that runs ``lanes`` jobs at once.

    It runs one single-job ``Supervisor`` per lane, forked after the helpers and the preload are in
    place (so they are imported once).

    Frames from the host are ``{"op": "lane", "lane": i, "body": n}`` followed by one frame that
    holds lane ``i``'s own frames, passed on unread; frames from the lanes go to the host whole
    and unchanged (results and host calls carry the pool-wide unique job id). ``ping`` is answered
    here; ``shutdown`` or the host's end of stream ends every lane. A lane supervisor that dies
    ends the container (the host then fails that container's jobs and replaces it).
    """

    def __init__(self, chan, config):
        # type: (Channel, Dict[str, Any]) -> None
        self.chan = chan
        self.n = int(config["lanes"])
        helper_dir = config.get("helper_dir", "/sf")
        write_helpers(helper_dir, config.get("helpers", {}))
        error = preload(helper_dir, config.get("preload") or {})
        for shared in ("/tmp", "/dev/shm"):  # no lane may write where a neighbour can read
            try:
                os.chmod(shared, 0o755)
            except OSError:
                pass
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.lanes = []  # type: List[Channel]
        self.pids = []  # type: List[int]
        for lane in range(self.n):
            cfg = lane_config(config, lane)
            if error:
                cfg["preload_error"] = error
            self.fork_lane(cfg)

    def fork_lane(self, cfg):
        # type: (Dict[str, Any]) -> None
        """Fork the single-job supervisor of one lane (config ``cfg``) and keep its pid and channel."""
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        widen_pipes((to_r, from_w))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the lane supervisor
            code = 0
            try:
                signal.set_wakeup_fd(-1)
                os.dup2(to_r, 0)
                os.dup2(from_w, 1)
                keep = {0, 1, 2}
                for fd in [self.wake_r, self.wake_w, to_r, to_w, from_r, from_w] + [
                    fd for ch in self.lanes for fd in (ch.rfd, ch.wfd)
                ]:
                    if fd not in keep:
                        os.close(fd)
                sup = Supervisor(Channel(0, 1), cfg)
                sup.serve()
            except BaseException:
                code = 1
            os._exit(code)
        os.close(to_r)
        os.close(from_w)
        self.pids.append(pid)
        self.lanes.append(Channel(from_r, to_w))

    def serve(self):
        # type: () -> None
        """Serve the host until ``shutdown`` or its end of stream, then tell every lane to shut down.

        Sends one ``ready`` for all lanes first (with the first lane's error, if any), then relays frames.
        """
        hello = {"op": "ready", "pid": os.getpid(), "python": sys.version.split()[0], "lanes": self.n}
        for ch in self.lanes:
            msg, rest = ch.recv_blocking()
            if msg is None:
                hello.setdefault("error", "a lane supervisor did not start")
                continue
            if msg.get("error"):
                hello.setdefault("error", msg["error"])
            if rest:  # nothing else is sent before a job: keep it for the host all the same
                for extra in rest:
                    self.chan.queue(frame(extra))
        self.chan.send(hello)
        while self.round():
            pass
        for ch in self.lanes:
            ch.queue(frame({"op": "shutdown"}))
            ch.flush()

    def round(self):
        # type: () -> bool
        """One poll round; False when the container should end."""
        chan = self.chan
        poller = select.poll()
        poller.register(chan.rfd, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        if chan.out.items:
            poller.register(chan.wfd, select.POLLOUT)
        for ch in self.lanes:
            if chan.out.size < LANE_BACKLOG:
                poller.register(ch.rfd, select.POLLIN)
            if ch.out.items:
                poller.register(ch.wfd, select.POLLOUT)
        try:
            events = poller.poll(1000)
        except InterruptedError:
            return True
        by_rfd = {ch.rfd: ch for ch in self.lanes}
        by_wfd = {ch.wfd: ch for ch in self.lanes}
        for fd, _ in events:
            if fd == self.wake_r:
                if not self.reap():
                    return False
            elif fd == chan.rfd:
                if not self.from_host():
                    return False
            elif fd == chan.wfd:
                chan.flush()
            elif fd in by_rfd:
                if not self.from_lane(by_rfd[fd]):
                    return False
            elif fd in by_wfd:
                by_wfd[fd].flush()
        if chan.out.items:
            chan.flush()
        return True

    def from_host(self):
        # type: () -> bool
        """Handle the host's frames: ``lane`` ones go to that lane unread, ``ping`` is answered.

        Returns False on ``shutdown`` or the host's end of stream, else True.
        """
        for msg in self.chan.feed():
            op = msg.get("op")
            if op == "lane":
                lane = msg.get("lane")
                if isinstance(lane, int) and 0 <= lane < self.n:
                    ch = self.lanes[lane]
                    ch.queue(msg["raw"][4:])
                    ch.flush()
            elif op == "ping":
                self.chan.queue(frame({"op": "pong", "id": msg.get("id")}))
            elif op == "shutdown":
                return False
        return not self.chan.eof

    def from_lane(self, ch):
        # type: (Channel) -> bool
        """Pass the lane's complete frames to the host, unread; False if the lane is gone."""
        try:
            chunk = os.read(ch.rfd, 1 << 20)
        except (BlockingIOError, InterruptedError):
            return True
        if not chunk:
            return False
        ch.buf += chunk
        buf, pos = ch.buf, 0
        while len(buf) - pos >= 4:
            (n,) = HEADER.unpack_from(buf, pos)
            if len(buf) - pos < 4 + n:
                break
            pos += 4 + n
        if pos:
            self.chan.queue(bytes(buf[:pos]))
            del buf[:pos]
        return True

    def reap(self):
        # type: () -> bool
        """Reap children; False when a lane supervisor has died."""
        try:
            os.read(self.wake_r, 4096)
        except OSError:
            pass
        alive = True
        while True:
            try:
                got, _ = os.waitpid(-1, os.WNOHANG)
            except (ChildProcessError, InterruptedError):
                return alive
            if got == 0:
                return alive
            if got in self.pids:
                alive = False


def widen_pipes(fds, size=1 << 20):
    # type: (Sequence[int], int) -> None
    """Give the host channel's pipes 1 MiB (if they are pipes).

    A large host-call reply then crosses in a few wake-ups instead of one per 64 KiB.
    """
    for fd in fds:
        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
        except OSError:
            pass


def main():
    """The supervisor's entry point: read the config, then serve as a ``Multiplexer`` or a ``Supervisor``."""
    widen_pipes((0, 1))
    chan = Channel(0, 1)
    config, rest = chan.recv_blocking()
    if config is None:
        return
    if int(config.get("lanes", 1)) > 1:
        Multiplexer(chan, config).serve()  # the host sends nothing more before "ready"
        return
    sup = Supervisor(chan, config)
    sup.pending.extend(rest)
    sup.serve()


if __name__ in ("__main__", "__sf_supervisor__"):
    main()
