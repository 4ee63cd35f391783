"""The ASGI app (Starlette): routes, auth, body limits, disconnect handling.

Routes:

* ``POST /run_code``: SandboxFusion's request and reply (see :mod:`sf_sandbox.server.wire`).
* ``POST /v1/run``: one native job → :meth:`~sf_sandbox.Result.to_json`.
* ``POST /v1/batch``: ``{"jobs": [...]}`` → ``{"results": [...]}`` in input order.
* ``GET /health`` (the process answers), ``GET /ready`` (the pool is warm and taking jobs),
  ``GET /metrics`` (Prometheus text), ``GET /v1/info`` (languages, limits, capacity).

Errors are JSON ``{"error": "..."}`` with 400 (bad job), 401 (token), 404, 413 (body too
large), 429 (queue full, with ``Retry-After``), 503 (draining or not ready); ``/run_code``
validation errors are 422 with ``{"detail": [...]}`` as SandboxFusion's FastAPI gives.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from sf_sandbox._json import json_list, json_object
from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.job import Job
from sf_sandbox.languages import code_job, code_result, get_language
from sf_sandbox.result import Result, Status
from sf_sandbox.server.config import ServeConfig
from sf_sandbox.server.metrics import Metrics
from sf_sandbox.server.runner import Refused, Runner
from sf_sandbox.server.wire import (
    FusionRequestError,
    fetch_names,
    fusion_error,
    fusion_request,
    fusion_response,
    job_from_json,
)

Handler = Callable[[Request], Awaitable[Response]]


class BodyTooLarge(Exception):
    """The request body passed the server's limit."""


def error(status: int, message: str, **headers: str) -> JSONResponse:
    """A JSON error reply."""
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


class Service:
    """The routes over one :class:`Runner`; :meth:`app` builds the Starlette application."""

    def __init__(
        self, config: ServeConfig, runner: Runner, metrics: Metrics, languages: tuple[str, ...]
    ) -> None:
        self.config = config
        self.runner = runner
        self.metrics = metrics
        self.languages = languages
        """Languages the pool's image has (its ``sf-sandbox.languages`` label)."""
        self.started = time.time()
        m = metrics
        m.describe("sf_sandbox_requests_total", "counter", "HTTP requests by endpoint and status code.")
        m.describe("sf_sandbox_jobs_total", "counter", "Jobs finished, by endpoint and sandbox status.")
        m.describe(
            "sf_sandbox_jobs_cancelled_total", "counter", "Jobs killed because their client went away."
        )
        m.describe("sf_sandbox_rejected_total", "counter", "Requests refused, by reason.")
        m.describe("sf_sandbox_job_latency_seconds", "histogram", "Admission to result, seconds.")
        m.describe(
            "sf_sandbox_job_duration_seconds", "histogram", "Job run time inside the sandbox, seconds."
        )
        m.describe("sf_sandbox_queue_depth", "gauge", "Jobs waiting for a container.")
        m.describe("sf_sandbox_jobs_running", "gauge", "Jobs holding a container.")
        m.describe("sf_sandbox_jobs_inflight", "gauge", "Jobs admitted and not finished.")
        m.describe("sf_sandbox_capacity", "gauge", "Most jobs in flight before 429.")
        m.describe(
            "sf_sandbox_pool_replaced_total", "gauge", "Containers replaced because they may be tainted."
        )
        m.gauge("sf_sandbox_queue_depth", lambda: runner.waiting)
        m.gauge("sf_sandbox_jobs_running", lambda: runner.running)
        m.gauge("sf_sandbox_jobs_inflight", lambda: runner.inflight)
        m.gauge("sf_sandbox_capacity", lambda: runner.capacity)
        m.gauge("sf_sandbox_containers_replaced", lambda: runner.sandbox.replaced)

    # plumbing
    def _wrap(self, endpoint: str, handler: Handler, *, auth: bool = True) -> Handler:
        async def wrapped(request: Request) -> Response:
            if auth and not self._authorised(request):
                self.metrics.inc("sf_sandbox_rejected_total", reason="unauthorized")
                response: Response = error(
                    401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"}
                )
            else:
                try:
                    response = await handler(request)
                except BodyTooLarge:
                    self.metrics.inc("sf_sandbox_rejected_total", reason="too_large")
                    response = error(
                        413,
                        f"request body is larger than this server's limit of "
                        f"{self.config.max_body_bytes} bytes",
                    )
                except Refused as exc:
                    reason = "queue_full" if exc.http_status == 429 else "draining"
                    self.metrics.inc("sf_sandbox_rejected_total", reason=reason)
                    response = error(exc.http_status, str(exc), **{"Retry-After": "1"})
            self.metrics.inc("sf_sandbox_requests_total", endpoint=endpoint, code=str(response.status_code))
            return response

        return wrapped

    def _count(self, endpoint: str, statuses: list[Status]) -> None:
        for status in statuses:
            self.metrics.inc("sf_sandbox_jobs_total", endpoint=endpoint, status=str(status))

    def _authorised(self, request: Request) -> bool:
        token = self.config.token
        if token is None:
            return True
        got = request.headers.get("authorization", "")
        scheme, _, value = got.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    async def _json(self, request: Request) -> object:
        """The body as decoded JSON, reading no more than the limit.

        Raises:
            BodyTooLarge: past ``max_body_bytes`` (checked on Content-Length first).
            SandboxConfigError: not JSON.
        """
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SandboxConfigError(f"the body is not JSON: {exc}") from None

    async def _until_disconnect(self, request: Request) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    async def _run_watched(self, request: Request, jobs: list[Job], endpoint: str) -> list[Result] | None:
        """Run ``jobs`` while watching the client; None (every job killed) when it disconnects."""
        work = asyncio.ensure_future(asyncio.gather(*(self.runner.run(j, endpoint) for j in jobs)))
        watch = asyncio.ensure_future(self._until_disconnect(request))
        try:
            await asyncio.wait([work, watch], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is shutting down past its drain timeout
            work.cancel()
            watch.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise
        if work.done():
            watch.cancel()
            return list(work.result())
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return None

    # routes
    async def health(self, request: Request) -> Response:
        """``GET /health``: the process answers (with its uptime)."""
        return JSONResponse({"status": "ok", "uptime_s": round(time.time() - self.started, 3)})

    async def ready(self, request: Request) -> Response:
        """``GET /ready``: 200 when the pool is warm and taking jobs, else 503 (starting or draining)."""
        if self.runner.ready and not self.runner.draining:
            return JSONResponse({"status": "ready", "pool_size": self.config.pool_size})
        return error(503, "draining" if self.runner.draining else "starting")

    async def metrics_route(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus text."""
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def info(self, request: Request) -> Response:
        """``GET /v1/info``: languages, limits and capacity."""
        lim = self.config.limits
        return JSONResponse(
            {
                "languages": list(self.languages),
                "pool_size": self.config.pool_size,
                "capacity": self.config.capacity,
                "runtime": self.config.runtime or "default",
                "max_timeout": self.config.max_timeout,
                "max_body_bytes": self.config.max_body_bytes,
                "max_batch": self.config.max_batch,
                "limits": {
                    "timeout": lim.timeout,
                    "memory_mb": lim.memory_mb,
                    "cpus": lim.cpus,
                    "pids": lim.pids,
                    "output_bytes": lim.output_bytes,
                    "file_size_mb": lim.file_size_mb,
                },
            }
        )

    async def run_code(self, request: Request) -> Response:
        """``POST /run_code``: SandboxFusion's request and reply (422 for a body that does not validate)."""
        try:
            data = await self._json(request)
            code_request = fusion_request(data, self.config.max_timeout)
            lang = get_language(code_request.language)
        except FusionRequestError as exc:
            return JSONResponse(
                {"detail": [{"loc": ["body", exc.loc], "msg": exc.msg, "type": "value_error"}]},
                status_code=422,
            )
        except SandboxConfigError as exc:
            detail = [{"loc": ["body", "language"], "msg": str(exc), "type": "value_error"}]
            if "not JSON" in str(exc):
                detail = [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]
            return JSONResponse({"detail": detail}, status_code=422)
        if lang.name not in self.languages:
            return JSONResponse(
                fusion_error(
                    f"language {lang.name!r} is not in this server's image "
                    f"(it has {', '.join(self.languages)}): "
                    "build it with `sf sandbox build-image --languages all` and serve with --languages all"
                )
            )
        try:
            job = code_job(code_request, self.config.limits)
        except SandboxConfigError as exc:
            return JSONResponse(fusion_error(str(exc)))
        with self.runner.admit():
            results = await self._run_watched(request, [job], "run_code")
        if results is None:
            return Response(status_code=499)
        outcome = code_result(code_request, results[0])
        self._count("run_code", [outcome.status])
        return JSONResponse(fusion_response(outcome, fetch_names(data)))

    async def run_native(self, request: Request) -> Response:
        """``POST /v1/run``: one native job → its result (400 for a bad job)."""
        try:
            job = job_from_json(await self._json(request), self.config.limits, self.config.max_timeout)
        except SandboxConfigError as exc:
            return error(400, str(exc))
        with self.runner.admit():
            results = await self._run_watched(request, [job], "run")
        if results is None:
            return Response(status_code=499)
        self._count("run", [results[0].status])
        return JSONResponse(results[0].to_json())

    async def batch(self, request: Request) -> Response:
        """``POST /v1/batch``: ``{"jobs": [...]}`` → ``{"results": [...]}``, in input order (400: bad job)."""
        try:
            body = json_object(await self._json(request))
            items = json_list(body.get("jobs")) if body is not None else None
            if items is None:
                raise SandboxConfigError('a batch is {"jobs": [job, ...]}')
            if not items:
                raise SandboxConfigError("a batch needs at least one job")
            if len(items) > min(self.config.max_batch, self.config.capacity):
                if len(items) <= self.config.max_batch:
                    raise SandboxConfigError(
                        f"{len(items)} jobs can never fit this server's {self.config.capacity} places "
                        "(pool + queue); split the batch"
                    )
                raise SandboxConfigError(
                    f"{len(items)} jobs in one batch; this server takes at most {self.config.max_batch}"
                )
            jobs: list[Job] = []
            for i, item in enumerate(items):
                try:
                    jobs.append(job_from_json(item, self.config.limits, self.config.max_timeout))
                except SandboxConfigError as exc:
                    raise SandboxConfigError(f"jobs[{i}]: {exc}") from None
        except SandboxConfigError as exc:
            return error(400, str(exc))
        with self.runner.admit(len(jobs)):
            results = await self._run_watched(request, jobs, "batch")
        if results is None:
            return Response(status_code=499)
        self._count("batch", [r.status for r in results])
        return JSONResponse({"results": [r.to_json() for r in results]})

    def app(self, lifespan: Lifespan[Starlette] | None = None) -> Starlette:
        """The Starlette application."""
        w = self._wrap
        routes = [
            Route("/health", w("health", self.health, auth=False), methods=["GET"]),
            Route("/ready", w("ready", self.ready, auth=False), methods=["GET"]),
            Route("/metrics", w("metrics", self.metrics_route), methods=["GET"]),
            Route("/v1/info", w("info", self.info), methods=["GET"]),
            Route("/run_code", w("run_code", self.run_code), methods=["POST"]),
            Route("/v1/run", w("run", self.run_native), methods=["POST"]),
            Route("/v1/batch", w("batch", self.batch), methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)


__all__ = ["Service"]
