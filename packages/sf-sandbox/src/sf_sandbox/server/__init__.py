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

from sf_sandbox.errors import MissingDependencyError
from sf_sandbox.server.config import ServeConfig, is_loopback

__all__ = ["MissingDependencyError", "ServeConfig", "is_loopback", "serve"]


def _require_server_deps() -> None:
    """Return when starlette and uvicorn import.

    Raises:
        MissingDependencyError: one is missing (the message says ``pip install "sf-sandbox[server]"``).
    """
    import importlib

    try:
        for name in ("starlette", "uvicorn"):
            importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"`sf sandbox serve` needs the server extra ({exc.name} is missing): "
            'pip install "sf-sandbox[server]"'
        ) from None


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (inheritable, so uvicorn serves it as given).

    Raises:
        SandboxConfigError: the address cannot be bound.
    """
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


def _say_on_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def serve(config: ServeConfig, log: Callable[[str], None] | None = None) -> int:
    """Run the service until SIGTERM/SIGINT; return the exit code (0 after SIGTERM, 130 after Ctrl-C).

    ``log`` gets the service's few progress lines (default: stderr).

    Raises:
        MissingDependencyError: starlette/uvicorn are not installed.
        SandboxConfigError: the address cannot be bound, the image lacks python3.
        EngineUnavailableError, ImageNotFoundError: the pool cannot start.
    """
    _require_server_deps()
    from sf_sandbox.gvisor import require_runtime
    from sf_sandbox.server.app import Service
    from sf_sandbox.server.lifecycle import DrainingServer, lifespan, start_pool, uvicorn_config
    from sf_sandbox.server.metrics import Metrics
    from sf_sandbox.server.runner import Runner

    say = log or _say_on_stderr
    require_runtime(config.runtime)
    sock = _bind(config.host, config.port)
    try:
        sandbox, languages = start_pool(config, say)
    except BaseException:
        sock.close()
        raise
    metrics = Metrics()
    runner = Runner(sandbox, pool_size=config.pool_size, capacity=config.capacity, metrics=metrics)
    app = Service(config, runner, metrics, languages).app(lifespan=lifespan(runner, sandbox))
    server = DrainingServer(uvicorn_config(app, config.drain_timeout), config, runner, say)
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
    return 130 if signal.SIGINT in server.stop_signals else 0
