# pyright: reportTypeCommentUsage=false
"""The zygote: a pristine fork of the warm interpreter that forks every job's process, and its messages."""

import json
import os
import select
import signal
import socket
from typing import Any, Dict, List, NoReturn, Optional, Tuple  # noqa: F401 (type comments)

from .child import become_job, listen_filter
from .slot import Slot  # noqa: F401 (type comments)


def send_fds(sock, data, fds):
    # type: (socket.socket, bytes, List[int]) -> None
    """Send ``data`` with the descriptors ``fds`` (``SCM_RIGHTS``) on the unix socket ``sock``."""
    import array

    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def recv_msg(sock):
    # type: (socket.socket) -> Optional[Dict[str, Any]]
    """One JSON message from the zygote socket, or None at end of stream."""
    data = sock.recv(65536)
    return json.loads(data.decode()) if data else None


def start_zygote(slot):
    # type: (Slot) -> Tuple[int, socket.socket]
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
            zygote(slot, theirs)
        except BaseException:
            code = 1
        os._exit(code)
    theirs.close()
    return pid, ours


def zygote(slot, sock):  # pragma: no cover - runs in the zygote
    # type: (Slot, socket.socket) -> NoReturn
    """The zygote's loop (never returns; exits when ``sock`` closes).

    Each ``spawn`` on ``sock`` brings a job's descriptors: it forks a child that runs ``become_job`` on
    them and answers ``{"spawned": pid}``; each reaped child is reported as ``{"exited": pid,
    "status": status}``.
    """
    import array
    import gc

    if slot.lane is not None:
        try:
            listen_filter()  # built once here: every job of the lane only loads it
        except Exception:
            pass  # each job then builds it itself, and fails set-up if it cannot

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
                    become_job(slot, *child_fds)
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
