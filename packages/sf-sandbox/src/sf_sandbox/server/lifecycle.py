"""The service's life on uvicorn: the warm pool it starts with, the drain on shutdown, the cleanup.

Imported by :func:`sf_sandbox.server.serve` only once the server extra is known to be installed
(it imports uvicorn and starlette at module level).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import Lifespan

from sf_sandbox.sandbox import Sandbox
from sf_sandbox.server.config import ServeConfig
from sf_sandbox.server.runner import Runner

__all__ = ["DrainingServer", "lifespan", "start_pool", "uvicorn_config"]


def start_pool(config: ServeConfig, say: Callable[[str], None]) -> tuple[Sandbox, tuple[str, ...]]:
    """Start the warm pool the service runs on; return it and the languages its image has.

    Raises:
        ImageNotFoundError: the image is not in the engine (the message says how to get it).
        SandboxConfigError, EngineUnavailableError: the pool cannot start (nothing is left running).
    """
    from sf_sandbox.image import image_languages

    image = config.image or "sf-sandbox:py3"
    if image_languages(image) is None:
        from sf_sandbox.errors import ImageNotFoundError
        from sf_sandbox.image import build_hint

        raise ImageNotFoundError(f"image {image!r} is not in the Docker engine: {build_hint(image)}")
    sandbox = Sandbox(image=image, limits=config.limits, pool_size=config.pool_size, runtime=config.runtime)
    runtime = f", runtime {config.runtime}" if config.runtime else ""
    say(f"sf sandbox serve: starting {config.pool_size} container(s) of {image}{runtime}")
    try:
        sandbox.start()
        languages = image_languages(image) or ("python",)
    except BaseException:
        sandbox.close()
        raise
    return sandbox, languages


def lifespan(runner: Runner, sandbox: Sandbox) -> Lifespan[Starlette]:
    """The app's lifespan: ready once serving; at shutdown, stop the runner and remove the pool."""

    @asynccontextmanager
    async def span(app: Starlette) -> AsyncGenerator[None]:
        runner.ready = True
        yield
        runner.close()
        await asyncio.get_running_loop().run_in_executor(None, sandbox.close)

    return span


class DrainingServer(uvicorn.Server):
    """The uvicorn server, with a drain before it stops.

    On SIGTERM/SIGINT new jobs are refused (503) and the jobs in flight get
    ``config.drain_timeout`` seconds before they are cancelled. The signals received are kept in
    :attr:`stop_signals`; the server exits with a code (see :func:`~sf_sandbox.server.serve`)
    instead of re-raising the signal as uvicorn would.
    """

    def __init__(
        self, uv_config: uvicorn.Config, config: ServeConfig, runner: Runner, say: Callable[[str], None]
    ) -> None:
        super().__init__(uv_config)
        self.drain_timeout = config.drain_timeout
        self.runner = runner
        self.say = say
        self.stop_signals: list[int] = []
        """The signals that asked it to stop, in order."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start the drain (once), then let uvicorn close the listener and finish."""
        self.stop_signals.append(sig)
        runner = self.runner
        if not runner.draining:
            runner.draining = True
            self.say(
                f"sf sandbox serve: shutting down; {runner.inflight} job(s) in flight get "
                f"{self.drain_timeout:g}s to finish"
            )
            try:
                loop = asyncio.get_running_loop()
                loop.call_later(self.drain_timeout, runner.cancel_all, "the service shut down")
            except RuntimeError:
                runner.cancel_all("the service shut down")
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # we exit with a code, not by re-raising the signal


def uvicorn_config(app: Any, drain_timeout: float) -> uvicorn.Config:
    """The uvicorn settings of the service: quiet, lifespan on, graceful shutdown past the drain."""
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(drain_timeout) + 10,
        lifespan="on",
    )
