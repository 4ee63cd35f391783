# pyright: reportTypeCommentUsage=false
"""Several lanes in one container: the ``Multiplexer`` (PID 1) and one single-job supervisor per lane."""

import os
import select
import signal
import sys
from typing import Any, Dict, List  # noqa: F401 (type comments)

from .frames import HEADER, Channel, frame
from .install import preload, sigchld_wakeup, widen_pipes, write_helpers
from .serve import serve
from .supervisor import Supervisor

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
        self.wake_r, self.wake_w = sigchld_wakeup()
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
                serve(sup)
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
