# pyright: reportTypeCommentUsage=false
"""What the supervisor puts in place before it forks: the helper modules, the preload, wide pipes."""

import fcntl
import os
import signal
import sys
import types  # noqa: F401 (type comments)
from typing import Any, Dict, Optional, Sequence, Tuple  # noqa: F401 (type comments)

from .frames import unb64


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


def sigchld_wakeup():
    # type: () -> Tuple[int, int]
    """A non-blocking pipe that the signal machinery writes to on each signal, SIGCHLD included.

    Returns its ``(read end, write end)``: polling the read end wakes a loop when a child exits.
    """
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _ignore)
    return wake_r, wake_w


def _ignore(signum, frame):
    # type: (int, Optional[types.FrameType]) -> None
    """A SIGCHLD handler that does nothing: it exists so that the signal writes to the wake-up pipe."""
