"""Helpers for tests of the HTTP service: the real server as a subprocess, plain-HTTP requests.

Used by sf-sandbox's own tests and reusable by any package that needs a running service.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any


class ServerProcess:
    """``sf sandbox serve`` started as a subprocess; its URL is read from its "listening on" line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sf_sandbox", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = ""
        while True:
            try:
                line = self.lines.get(timeout=120)
            except queue.Empty:
                self.kill()
                raise RuntimeError("the server did not start in 120 s: " + "".join(self.log)) from None
            if line is None:
                raise RuntimeError(f"the server exited ({self.proc.wait()}): " + "".join(self.log))
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    @property
    def pid(self) -> int:
        """The server process's pid (also when it has exited)."""
        return self.proc.pid

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, dict[str, str], Any]:
        """One plain HTTP request (urllib).

        Returns status, headers (names lower-cased) and the JSON (or text) body.
        """
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, hdrs, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, hdrs, raw = exc.code, exc.headers, exc.read()
        hdrs = {k.lower(): v for k, v in hdrs.items()}
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw.decode()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one series on /metrics (0 when absent)."""
        _, _, text = self.request("GET", "/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        key = f"{name}{{{want}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the server if it still runs, and wait for it; a no-op once it has exited."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def owned_containers(pid: int) -> list[str]:
    """Ids of the sandbox containers (any state) whose owner label is process ``pid``."""
    from sf_sandbox.backends.docker import LABEL, docker_client

    client = docker_client()
    try:
        infos = client.api.containers(all=True, filters={"label": [f"{LABEL}=1", f"{LABEL}.owner-pid={pid}"]})
    finally:
        client.close()
    return [i["Id"][:12] for i in infos]
