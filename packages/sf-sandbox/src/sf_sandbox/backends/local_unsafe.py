"""UNSAFE: the supervisor as a plain host process. No isolation at all; opt-in only.

It exists for machines without Docker, for debugging, and as a baseline. Jobs run as *your* user
with your files and network in reach; only the timeout, output caps, file-size rlimit and the
process-tree kill (via PR_SET_CHILD_SUBREAPER) apply. Memory, CPU and pids are not limited.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import IO, cast

from sf_sandbox.backends.base import Backend, Connection
from sf_sandbox.backends.names import UNSAFE_BACKEND_NAME
from sf_sandbox.limits import Limits
from sf_sandbox.supervisor import BOOTSTRAP, bootstrap_payload, helper_sources

__all__ = ["UNSAFE_BACKEND_NAME", "LocalConnection", "LocalUnsafeBackend"]


def _buffered(pipe: IO[bytes] | None) -> io.BufferedReader:
    """A pipe of the subprocess as the ``BufferedReader`` that ``Popen`` (``bufsize=-1``) makes of it.

    ``read1`` returns what one read of the pipe gives, so output reaches the host as it comes.
    """
    assert isinstance(pipe, io.BufferedReader), "the supervisor's pipes are opened buffered"
    return cast("io.BufferedReader", pipe)  # isinstance leaves the raw stream's type unknown


class LocalConnection(Connection):
    """The pipes of one supervisor host subprocess (``LocalUnsafeBackend``); ``root`` is its scratch dir.

    Two daemon threads read the subprocess: stdout goes to ``on_data`` (``on_close`` is called when it
    ends), the last 64 KiB of stderr are kept for :meth:`diagnostics`.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        root: str,
        on_data: Callable[[bytes], None],
        on_close: Callable[[], None],
    ) -> None:
        self.proc = proc
        self.root = root
        self.label = f"pid {proc.pid}"
        self._stderr = bytearray()
        self._lock = threading.Lock()
        self._on_data = on_data
        self._on_close = on_close
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _read(self) -> None:
        stdout = _buffered(self.proc.stdout)
        try:
            while chunk := stdout.read1(1 << 20):
                self._on_data(chunk)
        except (OSError, ValueError):
            pass
        finally:
            self._on_close()

    def _drain_stderr(self) -> None:
        stderr = _buffered(self.proc.stderr)
        try:
            while chunk := stderr.read1(65536):
                self._stderr += chunk
                del self._stderr[:-65536]
        except (OSError, ValueError):
            pass

    def send(self, data: bytes) -> None:
        """Write ``data`` to the supervisor's stdin and flush it (one writer at a time).

        Raises:
            OSError: the pipe is closed (the supervisor exited).
        """
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL the supervisor subprocess now; never raises (one already gone is fine)."""
        try:
            self.proc.kill()
        except OSError:
            pass

    def close(self) -> None:
        """Kill the subprocess, wait for it up to 5 s, remove ``root``; never raises."""
        self.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def diagnostics(self) -> str:
        """The last 4000 characters of what the supervisor printed on stderr (bad UTF-8 replaced)."""
        return bytes(self._stderr).decode("utf-8", "replace")[-4000:]


class LocalUnsafeBackend(Backend):
    """Runs the supervisor as a host subprocess. NOT A SANDBOX."""

    name = UNSAFE_BACKEND_NAME
    in_container = False

    def check(self) -> None:
        """Nothing to check (the host's own Python runs the supervisor); never raises."""
        return None

    def start(
        self, limits: Limits, on_data: Callable[[bytes], None], on_close: Callable[[], None]
    ) -> tuple[Connection, dict[str, object]]:
        """Start one supervisor as a host subprocess in a fresh temporary dir; NOT A SANDBOX.

        Returns:
            Its connection (the bootstrap payload already sent) and the supervisor's init config
            (``mode`` ``local``, with work, helper and tmp dirs under the temporary dir).
        """
        root = tempfile.mkdtemp(prefix="sf-sandbox-unsafe-")
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=root,
            start_new_session=True,
        )
        conn = LocalConnection(proc, root, on_data, on_close)
        conn.send(bootstrap_payload())
        config: dict[str, object] = {
            "mode": "local",
            "work_dir": f"{root}/work",
            "helper_dir": f"{root}/sf",
            "writable": [f"{root}/work"],
            "tmp_dir": f"{root}/work/.tmp",
            "helpers": helper_sources(),
        }
        return conn, config
