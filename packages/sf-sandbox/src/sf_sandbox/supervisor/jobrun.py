# pyright: reportTypeCommentUsage=false
"""One job, step by step: spawn, feed, drain and enforce, kill, collect, wipe (``JobState`` reports)."""

import json
import os
import select
import time
from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

from .collect import collect_files, lane_collector, parse_collected
from .jobstate import JobState, gone
from .procs import write_all
from .relay import Relay
from .sweep import sweep
from .wipe import reset_top, wipe_tree


class JobRun(JobState):
    """One job from fork to report.

    ``run`` calls the steps in order:

    spawn -> feed -> (drain, enforce)* -> end_io -> collect -> wipe -> report

    * ``spawn``: a pre-forked (or freshly forked) child of the zygote, privileges already dropped;
    * ``feed``: the job spec to the child, then its setup verdict;
    * ``drain``: one poll round: stdout/stderr into capped buffers, host calls relayed (``Relay``),
      frames to the host written as far as the host takes them; never blocks past the deadline;
    * ``enforce``: the main process's exit, the wall-clock deadline, output caps, stuck pipes;
      each ends in ``kill``;
    * ``kill``: SIGKILL every process of the job (``sweep``);
    * ``collect``: the requested files, read as the job's uid;
    * ``wipe``: empty every writable dir and restore its own metadata (``reset_top``);
    * ``report``: the status (decided from facts the job cannot forge) and the result frame (``JobState``).
    """

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
        sup.lane_clean = False
        sup.lane_collected = None
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
            write_all(spec_w, json.dumps(self.job).encode())
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
        stray = sweep(self.sup, self.pid, lane_collector(self.sup, self.job))
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
        if not (self.sup.lane is not None and self.sup.lane_clean):
            # a lane's last sweep that left nothing needs no second: its uid has no process and
            # gets none before the next spawn (the other modes' kill is not atomic: sweep again)
            self.stray = sweep(self.sup, self.pid) or self.stray

    # after the job
    def collect(self):
        # type: () -> Tuple[Dict[str, str], List[str], bool]
        """Read the job's ``collect`` files; return them (base64), the per-file errors, and if it worked."""
        sup = self.sup
        if sup.lane is not None and sup.lane_clean and sup.lane_collected is not None:
            files, errors, ok = parse_collected(sup.lane_collected)  # read by the last kill's helper
        else:
            files, errors, ok = collect_files(sup, self.job)
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
