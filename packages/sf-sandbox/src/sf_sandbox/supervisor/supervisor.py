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
  setsid'd and double-forked processes too), reaps them, collects the requested files and wipes
  every writable place (work dir, /tmp, /dev/shm) as the job's uid;
* reports ``tainted`` when something may have survived (stray processes, SysV IPC objects, a
  failed wipe), and the host then replaces the container;
* relays host calls: the job writes frames on fd 3 (``SF_HOST_FD``) and the supervisor forwards
  them to the host and the answers back. Nothing else crosses.

In ``local`` mode (the opt-in unsafe backend) there is no uid switch and the kill walks the
supervisor's descendants instead, using PR_SET_CHILD_SUBREAPER so orphans are found.
"""

import atexit
import base64
import builtins
import errno
import fcntl
import io
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import types

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
WRITABLE_DIRS = ("/work", "/tmp", "/dev/shm")
SETUP_OK = b"\x00ok"

# Frame I/O on the host channel ------------------------------------------------------------------


class Channel:
    """Blocking writer / incremental reader of length-prefixed JSON frames on two fds."""

    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        self.buf = b""
        self.eof = False

    def send(self, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        data = HEADER.pack(len(data)) + data
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.wfd, view)
            except InterruptedError:
                continue
            view = view[n:]

    def feed(self):
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
        frames = []
        while len(self.buf) >= 4:
            (n,) = HEADER.unpack_from(self.buf)
            if n > MAX_FRAME:
                raise ValueError("frame too large")
            if len(self.buf) < 4 + n:
                break
            frames.append(json.loads(self.buf[4 : 4 + n].decode()))
            self.buf = self.buf[4 + n :]
        return frames

    def recv_blocking(self):
        while True:
            frames = self._parse()
            if frames:
                return frames[0], frames[1:]
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                return None, []
            self.buf += chunk


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text.encode()) if text else b""


# Helpers ------------------------------------------------------------------------------------------


def read_counter(path, key):
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def oom_kills():
    """The container cgroup's OOM-kill counter (cgroup v2, then v1), or None if unreadable."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        value = read_counter(path, "oom_kill")
        if value is not None:
            return value
    return None


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def ipc_objects():
    """Count SysV IPC objects and POSIX message queues: state that survives the processes."""
    count = 0
    for name in ("shm", "msg", "sem"):
        try:
            with open("/proc/sysvipc/" + name) as fh:
                count += max(0, len(fh.read().splitlines()) - 1)
        except OSError:
            pass
    try:
        count += len(os.listdir("/dev/mqueue"))
    except OSError:
        pass
    return count


def set_subreaper():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


# The supervisor -----------------------------------------------------------------------------------


class Supervisor:
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
        if not self.container:
            set_subreaper()
        for name, source in config.get("helpers", {}).items():
            os.makedirs(self.helper_dir, exist_ok=True)
            with open(os.path.join(self.helper_dir, name), "w") as fh:
                fh.write(source)
            os.chmod(os.path.join(self.helper_dir, name), 0o644)
        self.preload_error = self.preload(config.get("preload") or {})
        self.exited = {}  # pid -> wait status, for children reaped while sweeping
        self.pending = []  # frames received while a job ran that belong to the main loop
        self.zpid, self.zsock = start_zygote(self)
        self.prespawned = None

    def preload(self, spec):
        """Write the pool's preload files into the helper dir and import its modules (before the
        zygote is forked, so every job inherits them). Returns an error text, or None."""
        try:
            os.makedirs(self.helper_dir, exist_ok=True)
            for name, data in spec.get("files", {}).items():
                path = os.path.join(self.helper_dir, os.path.basename(name))
                with open(path, "wb") as fh:
                    fh.write(unb64(data))
                os.chmod(path, 0o644)
            for name in reversed(spec.get("path", [])):
                sys.path.insert(0, os.path.join(self.helper_dir, os.path.basename(name)))
            for module in spec.get("modules", []):
                __import__(module)
        except BaseException as exc:  # reported in the ready frame: the host refuses the pool
            return "preload failed: %s: %s" % (type(exc).__name__, exc)
        return None

    # main loop
    def serve(self):
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
        return child

    def discard(self, child):
        for key in ("out_r", "err_r", "setup_r", "spec_w"):
            try:
                os.close(child[key])
            except OSError:
                pass
        child["host"].close()

    # one job
    def run_job(self, msg):
        job = msg["job"]
        timeout = float(job.get("timeout", 10))
        cap = int(job.get("output_bytes", 1 << 20))
        max_calls = int(job.get("host_calls", 0))
        oom_before = oom_kills() if self.container else None

        if self.zpid is None:
            return {
                "status": "sandbox_error",
                "error": "supervisor: the job forker is gone",
                "tainted": True,
                "taint": "zygote gone",
            }
        start = time.monotonic()
        child = self.prespawned
        self.prespawned = None
        if child is None or child["pid"] in self.exited:
            if child is not None:
                self.discard(child)
            child = self.spawn()
        t_fork = time.monotonic() - start
        setup_msg = None
        if child is None:
            return {
                "status": "sandbox_error",
                "error": "supervisor: the job forker died",
                "tainted": True,
                "taint": "zygote gone",
            }
        pid, out_r, err_r, setup_r, host_sup = (
            child[k] for k in ("pid", "out_r", "err_r", "setup_r", "host")
        )
        spec_w = child["spec_w"]
        try:
            view = memoryview(json.dumps(job).encode())
            while view:
                view = view[os.write(spec_w, view) :]
        except OSError:
            pass  # the child died before reading: its setup pipe says why
        finally:
            os.close(spec_w)
        setup_msg = setup_msg or self.read_setup(setup_r)
        t_setup = time.monotonic() - start
        os.close(setup_r)

        streams = {out_r: bytearray(), err_r: bytearray()}
        truncated = {out_r: False, err_r: False}
        open_fds = {out_r, err_r}
        for fd in open_fds:
            os.set_blocking(fd, False)
        host_in = b""
        host_out = b""
        host_open = True
        calls = 0
        status = None
        kill_reason = None
        exit_status = None
        deadline = start + timeout
        killed_at = None
        main_done_at = None

        poller = select.poll()
        poller.register(out_r, select.POLLIN)
        poller.register(err_r, select.POLLIN)
        poller.register(host_sup.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        poller.register(self.chan.rfd, select.POLLIN)
        if self.zsock is not None:
            poller.register(self.zsock.fileno(), select.POLLIN)

        if setup_msg is not None:
            kill_reason = "setup"
            self.sweep(pid)
            killed_at = time.monotonic()

        while True:
            # reap
            exit_status = self.reap(pid, exit_status)
            now = time.monotonic()
            if exit_status is not None and main_done_at is None:
                main_done_at = now
                if killed_at is None:
                    # main process finished: whatever it left behind is killed now
                    stray = self.sweep(pid)
                    if stray:
                        kill_reason = kill_reason or "stray"
                    killed_at = now
            if killed_at is None and now >= deadline:
                kill_reason = "timeout"
                self.sweep(pid)
                killed_at = now
            if killed_at is not None and not open_fds and exit_status is not None:
                break
            if killed_at is not None and now - killed_at > 2.0:
                # something holds a pipe open after every kill: give up on it, taint the box
                kill_reason = kill_reason or "stuck"
                self.sweep(pid)
                if now - killed_at > 5.0:
                    break
            wait = 0.5 if killed_at is not None else max(0.0, min(deadline - now, 1.0))
            try:
                events = poller.poll(int(wait * 1000) + 1)
            except InterruptedError:
                continue
            for fd, _ev in events:
                if self.zsock is not None and fd == self.zsock.fileno():
                    self.drain_zygote()
                    continue
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 4096)
                    except OSError:
                        pass
                elif fd in streams:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                        os.close(fd)
                        continue
                    buf = streams[fd]
                    room = cap - len(buf)
                    if room > 0:
                        buf += chunk[:room]
                    if len(chunk) > room:
                        truncated[fd] = True
                        if killed_at is None:
                            kill_reason = "output_limit"
                            self.sweep(pid)
                            killed_at = time.monotonic()
                elif fd == self.chan.rfd:
                    for frame in self.chan.feed():
                        if frame.get("op") == "hostcall_result" and frame.get("id") == msg.get("id"):
                            payload = {k: frame.get(k) for k in ("ok", "value", "error", "call_id")}
                            data = json.dumps(payload).encode()
                            host_out += HEADER.pack(len(data)) + data
                        elif frame.get("op") == "hostcall_result":
                            pass
                        else:
                            self.pending.append(frame)
                    if self.chan.eof:
                        self.sweep(pid)
                        raise SystemExit(0)
                elif host_open and fd == host_sup.fileno():
                    try:
                        chunk = host_sup.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        host_open = False
                        poller.unregister(fd)
                        continue
                    host_in += chunk
                    while len(host_in) >= 4:
                        (n,) = HEADER.unpack_from(host_in)
                        if n > MAX_HOST_FRAME:
                            host_open = False
                            poller.unregister(fd)
                            host_in = b""
                            break
                        if len(host_in) < 4 + n:
                            break
                        raw, host_in = host_in[4 : 4 + n], host_in[4 + n :]
                        calls += 1
                        try:
                            req = json.loads(raw.decode())
                            name = req["name"]
                            args = req.get("args", [])
                            kwargs = req.get("kwargs", {})
                            if (
                                not isinstance(name, str)
                                or not isinstance(args, list)
                                or not isinstance(kwargs, dict)
                            ):
                                raise ValueError("bad request shape")
                        except Exception as exc:
                            err = json.dumps({"ok": False, "error": "malformed host call: %s" % exc}).encode()
                            host_out += HEADER.pack(len(err)) + err
                            continue
                        if calls > max_calls:
                            err = json.dumps(
                                {
                                    "ok": False,
                                    "error": "host call limit (%d) reached" % max_calls,
                                    "call_id": req.get("call_id"),
                                }
                            ).encode()
                            host_out += HEADER.pack(len(err)) + err
                            continue
                        self.chan.send(
                            {
                                "op": "hostcall",
                                "id": msg.get("id"),
                                "call": calls,
                                "name": name,
                                "args": args,
                                "kwargs": kwargs,
                                "call_id": req.get("call_id"),
                            }
                        )
            if host_out and host_open:
                try:
                    sent = host_sup.send(host_out)
                    host_out = host_out[sent:]
                except BlockingIOError:
                    pass
                except OSError:
                    host_out = b""
        duration = time.monotonic() - start
        t_end = time.monotonic()
        host_sup.close()
        for fd in list(open_fds):
            os.close(fd)
        if exit_status is None:
            exit_status = self.reap(pid, None, block=True)
        stray = self.sweep(pid)

        code = None
        if exit_status is not None:
            code = (
                os.waitstatus_to_exitcode(exit_status)
                if hasattr(os, "waitstatus_to_exitcode")
                else (
                    -os.WTERMSIG(exit_status) if os.WIFSIGNALED(exit_status) else os.WEXITSTATUS(exit_status)
                )
            )
        stderr = bytes(streams[err_r])
        memory = False
        if self.container:
            oom_after = oom_kills()
            if oom_before is not None and oom_after is not None and oom_after > oom_before:
                memory = True
            elif oom_before is None and code == -9 and kill_reason is None:
                memory = True
        tail = stderr.rstrip().rsplit(b"\n", 1)[-1]
        if code == 1 and tail.startswith(b"MemoryError"):
            memory = True

        if setup_msg is not None:
            status, error = "sandbox_error", setup_msg
        elif kill_reason == "timeout":
            status, error = "timeout", "wall-clock limit of %gs reached" % timeout
        elif kill_reason == "output_limit" or truncated[out_r] or truncated[err_r]:
            status, error = "output_limit", "output passed the %d-byte cap" % cap
        elif memory:
            status, error = "memory", "memory limit reached"
        elif code == 0:
            status, error = "ok", None
        else:
            status, error = "error", None
            if code is not None and code < 0:
                error = "killed by signal %d" % -code

        t_pre = time.monotonic()
        files, file_errors, wiped = self.collect_and_wipe(job)
        t_wipe = time.monotonic()
        taint = []
        if memory:
            taint.append("memory")
        if stray or kill_reason in ("stray", "stuck", "timeout", "output_limit"):
            taint.append(kill_reason or "stray processes")
        if not wiped:
            taint.append("wipe failed")
        if self.container and ipc_objects():
            taint.append("ipc objects left")
        return {
            "status": status,
            "exit_code": code,
            "stdout": b64(bytes(streams[out_r])),
            "stderr": b64(stderr),
            "stdout_truncated": truncated[out_r],
            "stderr_truncated": truncated[err_r],
            "duration": duration,
            "files": files,
            "file_errors": file_errors,
            "error": error,
            "tainted": bool(taint),
            "taint": ", ".join(t for t in taint if t),
            "phases_ms": [
                round(t_fork * 1000, 3),
                round(t_setup * 1000, 3),
                round((t_pre - t_end) * 1000, 3),
                round((t_wipe - t_pre) * 1000, 3),
                round((time.monotonic() - t_wipe) * 1000, 3),
            ],
        }

    def read_setup(self, fd):
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
        self.zpid = None
        if self.zsock is not None:
            self.zsock.close()
            self.zsock = None

    def sweep(self, pid):
        """Kill every process the job started; return True if any besides the main one existed."""
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

    def reap_all(self):
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
            chunks = []
            while True:
                chunk = os.read(spec_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(spec_fd)
            job = json.loads(b"".join(chunks).decode())
            os.umask(0o022)
            work = self.work
            os.makedirs(work, exist_ok=True)
            os.chdir(work)
            fsize = int(job.get("file_size", 64 << 20))
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
            if self.tmp != "/tmp":
                os.makedirs(self.tmp, exist_ok=True)
            stdin = unb64(job.get("stdin", ""))
            mfd = os.memfd_create("stdin", 0) if hasattr(os, "memfd_create") else None
            if mfd is None:
                rfd, wfd = os.pipe()
                os.write(wfd, stdin)
                os.close(wfd)
                mfd = rfd
            else:
                os.write(mfd, stdin)
                os.lseek(mfd, 0, os.SEEK_SET)
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


def collect_and_wipe(self, job):
    """Read the collected files, then wipe every writable dir; all job processes are dead by now.

    Collection runs in a child that drops to the job's uid, so a symlink the job left cannot make
    the supervisor read what the job could not. Wiping needs no such care (it never follows links)
    and is done by the supervisor itself (CAP_DAC_OVERRIDE/CAP_FOWNER), saving a fork per job.
    """
    collect = job.get("collect", [])
    if not collect:
        ok = True
        for top in self.writable:
            ok = wipe(top, any_owner=True) and ok
        return {}, [], ok
    limit = int(job.get("files_out_bytes", 8 << 20))
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return {}, ["cannot fork the cleaner"], False
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            if self.container:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
            files, errors, total = {}, [], 0
            for rel in collect:
                path = os.path.join(self.work, rel)
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
            ok = True
            for top in self.writable:
                ok = wipe(top) and ok
            payload = json.dumps({"files": files, "errors": errors, "ok": ok}).encode()
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view) :]
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        try:
            chunk = os.read(r, 1 << 20)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    os.close(r)
    while True:
        try:
            os.waitpid(pid, 0)  # the cleaner must be gone before the next job looks around
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    self.reap_all()
    try:
        out = json.loads(data.decode())
    except ValueError:
        return {}, ["cleaner failed"], False
    return out["files"], out["errors"], out["ok"]


Supervisor.collect_and_wipe = collect_and_wipe


def wipe(top, any_owner=False):
    """Remove everything below ``top`` (never following links); True when it is all gone.

    ``any_owner`` False keeps entries owned by another uid (what Docker placed there)."""
    try:
        entries = os.listdir(top)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    ok = True
    me = os.getuid()
    for name in entries:
        path = os.path.join(top, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid != me and not any_owner:
            continue  # not the job's (e.g. files Docker placed); the job could not have changed them
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                if not any_owner:
                    os.chmod(path, 0o700)
                ok = wipe(path, any_owner) and ok
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                ok = False
    return ok


def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def send_fds(sock, data, fds):
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


def main():
    chan = Channel(0, 1)
    config, rest = chan.recv_blocking()
    if config is None:
        return
    sup = Supervisor(chan, config)
    sup.pending.extend(rest)
    sup.serve()


if __name__ in ("__main__", "__sf_supervisor__"):
    main()
