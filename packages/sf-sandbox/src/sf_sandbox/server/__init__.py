"""``sf sandbox serve``: the sandbox as an HTTP service (the extra ``sf-sandbox[server]``).

:func:`serve` warms a :class:`~sf_sandbox.Sandbox` pool, then serves it with uvicorn:
SandboxFusion's ``POST /run_code``, the native ``POST /v1/run`` and ``POST /v1/batch``,
``/health``, ``/ready`` and ``/metrics`` (see :mod:`sf_sandbox.server.app`).

Shutdown (SIGTERM or Ctrl-C) is graceful: the listener closes and new requests get 503, jobs in
flight get up to ``drain_timeout`` seconds to finish, then are killed and answered with
``sandbox_error``; then every container is removed. A client that disconnects has its job's
container killed at once. A server killed with SIGKILL leaves containers that
``sf sandbox gc`` removes (their owner process is gone), and that exit by themselves when their
attach stream closes.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from sf_sandbox.errors import SandboxError
from sf_sandbox.server.config import ServeConfig, is_loopback

__all__ = ["ServeConfig", "is_loopback", "serve", "MissingDependencyError"]


class MissingDependencyError(SandboxError):
    """The server extra is not installed."""


def _require_server_deps() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"`sf sandbox serve` needs the server extra ({exc.name} is missing): "
            'pip install "sf-sandbox[server]"'
        ) from None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from sf_sandbox.errors import SandboxConfigError

        raise SandboxConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: ServeConfig, log: Callable[[str], None] | None = None) -> int:
    """Run the service until SIGTERM/SIGINT; return the exit code (0 after SIGTERM, 130 after Ctrl-C).

    Raises:
        MissingDependencyError: starlette/uvicorn are not installed.
        SandboxConfigError: the address cannot be bound, the image lacks python3.
        EngineUnavailableError, ImageNotFoundError: the pool cannot start.
    """
    _require_server_deps()
    import asyncio

    import uvicorn

    from sf_sandbox.gvisor import require_runtime
    from sf_sandbox.image import image_languages
    from sf_sandbox.sandbox import Sandbox
    from sf_sandbox.server.app import Service
    from sf_sandbox.server.metrics import Metrics
    from sf_sandbox.server.runner import Runner

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    require_runtime(config.runtime)
    sock = _bind(config.host, config.port)
    image = config.image or "sf-sandbox:py3"
    if image_languages(image) is None:
        from sf_sandbox.errors import ImageNotFoundError
        from sf_sandbox.image import build_hint

        sock.close()
        raise ImageNotFoundError(f"image {image!r} is not in the Docker engine: {build_hint(image)}")
    sandbox = Sandbox(image=image, limits=config.limits, pool_size=config.pool_size, runtime=config.runtime)
    runtime = f", runtime {config.runtime}" if config.runtime else ""
    say(f"sf sandbox serve: starting {config.pool_size} container(s) of {image}{runtime}")
    try:
        sandbox.start()
        languages = image_languages(image) or ("python",)
    except BaseException:
        sandbox.close()
        sock.close()
        raise
    metrics = Metrics()
    runner = Runner(sandbox, pool_size=config.pool_size, capacity=config.capacity, metrics=metrics)
    service = Service(config, runner, metrics, languages)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        runner.ready = True
        yield
        runner.close()
        await asyncio.get_running_loop().run_in_executor(None, sandbox.close)

    stop_signals: list[int] = []

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stop_signals.append(sig)
            if not runner.draining:
                runner.draining = True
                say(
                    f"sf sandbox serve: shutting down; {runner.inflight} job(s) in flight get "
                    f"{config.drain_timeout:g}s to finish"
                )
                try:
                    loop = asyncio.get_running_loop()
                    loop.call_later(config.drain_timeout, runner.cancel_all, "the service shut down")
                except RuntimeError:
                    runner.cancel_all("the service shut down")
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # we exit with a code, not by re-raising the signal

    uv_config = uvicorn.Config(
        service.app(lifespan=lifespan),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(config.drain_timeout) + 10,
        lifespan="on",
    )
    server = DrainingServer(uv_config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    say(
        f"sf sandbox serve: listening on http://{shown}:{port} (pool {config.pool_size}, queue "
        f"{config.max_queue}, languages {','.join(languages)}{', token required' if config.token else ''})"
    )
    try:
        server.run(sockets=[sock])
    finally:
        runner.close()
        sandbox.close()
        sock.close()
    say("sf sandbox serve: stopped; containers removed")
    return 130 if signal.SIGINT in stop_signals else 0
