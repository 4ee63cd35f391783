# pyright: reportTypeCommentUsage=false
"""The ``Supervisor``: one slot's state, its job forker (the zygote) and the reaping of its children."""

import os
import socket
from typing import Any, Dict, List, Optional  # noqa: F401 (type comments)

from .child import SETUP_OK
from .frames import Channel  # noqa: F401 (type comments)
from .install import preload, sigchld_wakeup, write_helpers
from .procs import set_subreaper
from .slot import Slot
from .wipe import snapshot_tops
from .zygote import recv_msg, send_fds, start_zygote


class Supervisor(Slot):
    """Runs one job at a time for the host, over ``channel``, as ``config`` (the host's init frame) says.

    ``config`` gives the mode (``container`` drops privileges to ``job_uid``; ``local`` does not), the
    work, helper, tmp and writable dirs (``Slot``), the helpers and preload to install, and the lane
    (when the container holds several). Jobs are forked by a zygote; after each one every writable
    dir is wiped and restored, and a container left unclean is reported ``tainted``. The loop that
    serves the host is ``serve``; one job is a ``JobRun``.
    """

    def __init__(self, channel, config):
        # type: (Channel, Dict[str, Any]) -> None
        self.chan = channel
        Slot.__init__(self, config)
        self.wake_r, self.wake_w = sigchld_wakeup()
        if not self.container or self.lane is not None:
            set_subreaper()  # a lane's orphans come back to its supervisor, not to PID 1
        write_helpers(self.helper_dir, config.get("helpers", {}))
        if not self.container:
            for top in self.writable:
                os.makedirs(top, 0o700, exist_ok=True)
        self.tops = snapshot_tops(self.writable)  # restored after every job (reset_top)
        self.preload_error = config.get("preload_error") or preload(
            self.helper_dir, config.get("preload") or {}
        )  # type: Optional[str]
        self.exited = {}  # type: Dict[int, int]  # pid -> wait status, for children reaped while sweeping
        self.pending = []  # type: List[Dict[str, Any]]  # frames received while a job ran, for the main loop
        zpid, zsock = start_zygote(self)
        self.zpid = zpid  # type: Optional[int]
        self.zsock = zsock  # type: Optional[socket.socket]
        self.prespawned = None  # type: Optional[Dict[str, Any]]  # the next job's child (``spawn``)
        self.lane_clean = False  # the lane's last sweep left no process of its uid (``sweep_lane``)
        self.lane_collected = None  # type: Optional[bytes]  # the files its kill helper read then

    def spawn(self):
        # type: () -> Optional[Dict[str, Any]]
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
            assert self.zsock is not None  # set while zpid is (JobRun.spawn and serve check zpid)
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
        # type: (Dict[str, Any]) -> None
        """Close our ends of ``child``'s pipes and its host-call socket (errors ignored)."""
        for key in ("out_r", "err_r", "setup_r", "spec_w"):
            try:
                os.close(child[key])
            except OSError:
                pass
        child["host"].close()

    def read_setup(self, fd):
        # type: (int) -> Optional[str]
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
        # type: (int, Optional[int], bool) -> Optional[int]
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
        # type: () -> Optional[int]
        """Wait for the zygote's answer to a spawn: the child's pid, or None if the zygote died."""
        sock = self.zsock
        assert sock is not None  # spawn sent on it
        while True:
            msg = recv_msg(sock)
            if msg is None:
                self.zygote_died()
                return None
            if "spawned" in msg:
                return msg["spawned"]
            if "exited" in msg:
                self.exited[msg["exited"]] = msg["status"]

    def drain_zygote(self, block=False):
        # type: (bool) -> None
        """Read the zygote's messages, recording each ``exited`` status in ``self.exited``.

        Without ``block``, reads what has arrived and returns; with it, waits for one message. The zygote
        closing its socket calls ``zygote_died``. The socket is left blocking either way.
        """
        sock = self.zsock
        assert sock is not None  # callers check zpid or zsock first
        sock.setblocking(block)
        try:
            while True:
                try:
                    msg = recv_msg(sock)
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
        # type: () -> None
        """Forget the zygote: no pid, its socket closed (later spawns then fail as ``zygote gone``)."""
        self.zpid = None
        if self.zsock is not None:
            self.zsock.close()
            self.zsock = None

    def reap_all(self):
        # type: () -> None
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
