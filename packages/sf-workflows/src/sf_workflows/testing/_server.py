"""A real OpenAI-compatible HTTP server with scripted replies and fault injection."""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sf_workflows.testing._script import Responder, Script, as_responder, count_tokens

__all__ = ["Fault", "ScriptedServer"]


class Fault(StrEnum):
    """A way the scripted server misbehaves on one chat request."""

    STATUS = "status"
    """An HTTP error status (500 by default; 429 with or without ``Retry-After``)."""
    RESET = "reset"
    """Headers and half of the body, then the connection is reset (TCP RST)."""
    HANG = "hang"
    """Never answers (until ``hang_seconds`` pass or the server stops), then closes."""
    EMPTY_CHOICES = "empty_choices"
    """A 200 JSON reply whose ``choices`` list is empty."""
    NON_JSON = "non_json"
    """A 200 reply whose body is an HTML page."""
    DRIP = "drip"
    """The right reply, sent a few bytes at a time over ``drip_seconds``."""


@dataclass
class _Failure:
    fault: Fault
    status: int = 500
    retry_after: float | None = None


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with a listen backlog a real endpoint has.

    The stdlib's is 5: hundreds of clients connecting at once then overflow it, and each dropped
    SYN costs its client a 1 s retransmit, which no real OpenAI-compatible endpoint charges.
    """

    request_queue_size = 1024


class ScriptedServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1`` with scripted replies.

    Serves ``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models``. Usage counts
    words (:func:`count_tokens`). Use as a context manager::

        with ScriptedServer(Script([("step by step", "42")]), latency=0.05) as server:
            executor = Executor(ExecutorConfig(base_url=server.base_url, model="m"))

    Faults queued with :meth:`fail`/:meth:`inject` answer the next requests; with
    ``failure_rate`` every other request fails with that probability (seeded: ``seed``) by one
    of ``random_faults``, drawn uniformly.

    Attributes:
        requests: Every chat request received (parsed JSON), including failed ones.
        latency: Seconds each successful reply is delayed (simulates the model).
        faults_served: How many requests each :class:`Fault` answered (statuses as
            ``status:<code>``).
    """

    def __init__(
        self,
        script: Script | Responder | str | Sequence[str] = "OK",
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        failure_rate: float = 0.0,
        random_faults: Sequence[Fault | str] = (Fault.STATUS,),
        seed: int = 0,
        hang_seconds: float = 30.0,
        drip_seconds: float = 2.0,
    ):
        self.responder = as_responder(script)
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self.failure_rate = failure_rate
        self.random_faults = tuple(Fault(f) for f in random_faults)
        self.hang_seconds = hang_seconds
        self.drip_seconds = drip_seconds
        self.faults_served: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._released = threading.Event()
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._server = _Server((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail(self, status: int, times: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next ``times`` chat requests with HTTP ``status`` (e.g. 429, 500)."""
        self.inject(Fault.STATUS, times, status=status, retry_after=retry_after)

    def inject(
        self, fault: Fault | str, times: int = 1, *, status: int = 500, retry_after: float | None = None
    ) -> None:
        """Answer the next ``times`` chat requests with ``fault``.

        ``status``/``retry_after`` apply to :attr:`Fault.STATUS`.
        """
        with self._lock:
            self._failures.extend(_Failure(Fault(fault), status, retry_after) for _ in range(times))

    @property
    def failed_requests(self) -> int:
        """Chat requests answered with a fault so far."""
        with self._lock:
            return sum(self.faults_served.values())

    @property
    def chat_requests(self) -> int:
        """Number of chat requests received so far."""
        with self._lock:
            return len(self.requests)

    def start(self) -> ScriptedServer:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="scripted-openai",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (hung requests are let go)."""
        self._released.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_failure(self, body: dict[str, Any]) -> _Failure | None:
        with self._lock:
            self.requests.append(body)
            failure = self._failures.popleft() if self._failures else None
            if failure is None and self.failure_rate and self._rng.random() < self.failure_rate:
                failure = _Failure(self._rng.choice(self.random_faults))
            if failure is not None:
                name = f"status:{failure.status}" if failure.fault is Fault.STATUS else str(failure.fault)
                self.faults_served[name] += 1
        return failure

    def _handle_chat(
        self, body: dict[str, Any], failure: _Failure | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if failure is not None and failure.fault is Fault.STATUS:
            headers = {"retry-after": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
            kind = "rate_limit_exceeded" if failure.status == 429 else "server_error"
            return (
                failure.status,
                {"error": {"message": f"scripted failure {failure.status}", "type": kind}},
                headers,
            )
        if self.latency:
            time.sleep(self.latency)
        try:
            text = self.responder(body)
        except Exception as exc:  # noqa: BLE001 - reported to the client as a 500
            return (
                500,
                {"error": {"message": f"script error: {type(exc).__name__}: {exc}", "type": "script"}},
                {},
            )
        pt = sum(count_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
        ct = count_tokens(text)
        reply = {
            "id": f"chatcmpl-scripted-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
        }
        if failure is not None and failure.fault is Fault.EMPTY_CHOICES:
            reply["choices"] = []
        return 200, reply, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _send(
                self,
                status: int,
                payload: dict[str, Any],
                headers: Mapping[str, str] = {},
                fault: Fault | None = None,
            ) -> None:
                data = json.dumps(payload).encode()
                kind = "application/json"
                if fault is Fault.NON_JSON:
                    data, kind = b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if fault is Fault.RESET:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self._reset()
                elif fault is Fault.DRIP:
                    self._drip(data)
                else:
                    self.wfile.write(data)

            def _reset(self) -> None:
                """Close with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

            def _drip(self, data: bytes) -> None:
                pieces = max(1, min(len(data), 20))
                step = -(-len(data) // pieces)
                pause = server.drip_seconds / pieces
                for at in range(0, len(data), step):
                    if server._released.wait(pause):
                        break
                    self.wfile.write(data[at : at + step])
                    self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                failure = server._next_failure(body)
                if failure is not None and failure.fault is Fault.HANG:
                    server._released.wait(server.hang_seconds)  # bounded: stop() lets it go
                    self.close_connection = True
                    return
                status, payload, headers = server._handle_chat(body, failure)
                self._send(status, payload, headers, failure.fault if failure is not None else None)

        return Handler
