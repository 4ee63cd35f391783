"""The executor: an async client for any OpenAI-compatible chat endpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sf_workflows.errors import ExecutorError, WorkflowConfigError
from sf_workflows.executor._attempts import attempt_error, backoff
from sf_workflows.executor.cache import ResponseCache, default_cache_dir, request_key
from sf_workflows.executor.cost import PriceTable
from sf_workflows.protocols import Completion, Message
from sf_workflows.types import Usage

log = logging.getLogger(__name__)

KEY_ENVS = ("SF_EXECUTOR_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENVS = ("SF_EXECUTOR_BASE_URL", "OPENAI_BASE_URL")
NO_KEY_PLACEHOLDER = "sk-no-key-required"
"""Sent as the key to a base URL given without one (local servers ignore it)."""

_ALLOWED_PARAMS = frozenset(
    {
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "response_format",
    }
)


def no_endpoint_message(key_envs: Sequence[str] = KEY_ENVS, what: str = "executor") -> str:
    """The one-line help shown when neither a key nor a base URL is configured."""
    return (
        f"no {what} endpoint: set {' or '.join(key_envs)} for the OpenAI API, "
        "or pass --base-url to use a local "
        "OpenAI-compatible server (vLLM: http://localhost:8000/v1, llama.cpp: http://localhost:8080/v1, "
        "Ollama: http://localhost:11434/v1)"
    )


def _checked_message(m: object) -> dict[str, str]:
    """``m`` as a plain ``{"role", "content"}`` dict (messages come from untrusted workflows).

    Raises:
        WorkflowConfigError: ``m`` is not a mapping with a known ``role`` and a str ``content``.
    """
    if isinstance(m, Mapping):
        fields = cast("Mapping[str, object]", m)  # only ever looked up by str keys
        role, content = fields.get("role"), fields.get("content")
        if isinstance(content, str) and isinstance(role, str) and role in ("system", "user", "assistant"):
            return {"role": role, "content": content}
    raise WorkflowConfigError("messages must be {'role': system|user|assistant, 'content': str} mappings")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorConfig:
    """How to reach the executor model. ``api_key``/``base_url`` default from the environment."""

    model: str = "gpt-4o-mini"
    """Model name as the endpoint knows it (ScoreFlow: gpt-4o-mini)."""
    base_url: str | None = None
    """OpenAI-compatible base URL (``http://localhost:8000/v1``); ``None`` = ``$SF_EXECUTOR_BASE_URL``,
    ``$OPENAI_BASE_URL``, else the OpenAI API."""
    api_key: str | None = field(default=None, repr=False)
    """Key; ``None`` = ``$SF_EXECUTOR_API_KEY`` or ``$OPENAI_API_KEY``."""
    temperature: float = 0.0
    """Default sampling temperature (ScoreFlow executes at 0); a call may override it."""
    max_tokens: int | None = None
    """Default completion cap; ``None`` leaves it to the server."""
    concurrency: int = 16
    """Most requests in flight at once."""
    max_retries: int = 6
    """Retries of a rate-limited (429), 5xx, timed-out, dropped, malformed or empty reply."""
    retry_base_delay: float = 1.0
    """First backoff in seconds (doubles each retry, with jitter; a Retry-After header wins)."""
    retry_max_delay: float = 60.0
    request_timeout: float = 60.0
    """Seconds one HTTP request may take, reply body included (a slow drip is cut off too); its
    own limit, apart from the workflow's timeout. Past it the request is retried."""
    cache_dir: str | None = None
    """Response cache directory (``None`` = ``$SF_WORKFLOWS_CACHE_DIR`` or ``~/.cache/sf-workflows``)."""
    use_cache: bool = True
    key_envs: tuple[str, ...] = KEY_ENVS
    """Environment variables searched for the key, in order."""
    base_url_envs: tuple[str, ...] = BASE_URL_ENVS

    def __post_init__(self) -> None:
        if not self.model:
            raise WorkflowConfigError("the executor needs a model name (--executor-model)")
        if self.concurrency < 1 or self.max_retries < 0 or self.request_timeout <= 0:
            raise WorkflowConfigError(
                "executor: concurrency >= 1, max_retries >= 0 and request_timeout > 0 are required"
            )

    def resolved(self) -> tuple[str | None, str]:
        """``(base_url, api_key)`` after the environment is consulted.

        Raises:
            WorkflowConfigError: neither a key nor a base URL is available (one clear line).
        """
        base_url = self.base_url or next(
            (os.environ[e] for e in self.base_url_envs if os.environ.get(e)), None
        )
        key = self.api_key or next((os.environ[e] for e in self.key_envs if os.environ.get(e)), None)
        if key:
            return base_url, key
        if base_url:
            return base_url, NO_KEY_PLACEHOLDER
        raise WorkflowConfigError(no_endpoint_message(self.key_envs))


KEEPALIVE = 100
"""Idle connections the openai client keeps by default (and ours for up to this concurrency)."""


def _http_client(openai: Any, concurrency: int) -> dict[str, Any]:
    """``http_client=`` for an ``AsyncOpenAI`` built for ``concurrency`` requests in flight.

    Up to :data:`KEEPALIVE`, nothing: the client's own defaults. Past it, the default pool
    would close and reopen connections with every burst (it keeps :data:`KEEPALIVE` idle ones),
    and its per-request bookkeeping grows with the number of connections: measured at 256
    requests in flight, 3.5 ms of CPU per request on the caller's event loop. So past it the
    client gets a pool that keeps ``concurrency`` connections alive, on aiohttp where it is
    installed (the openai SDK's advice for high concurrency: 1.7 ms per request in the same
    measurement), else on the SDK's default HTTP library.
    """
    if concurrency <= KEEPALIVE:
        return {}
    import importlib

    try:  # the openai client's HTTP library: httpx, or httpx2 in its later versions
        httpx: Any = importlib.import_module("httpx2")
    except ImportError:
        httpx = importlib.import_module("httpx")
    limits = httpx.Limits(max_connections=max(concurrency, 1000), max_keepalive_connections=concurrency)
    aiohttp_client = getattr(openai, "DefaultAioHttpClient", None)
    if aiohttp_client is not None:
        try:
            return {"http_client": aiohttp_client(limits=limits)}
        except (ImportError, RuntimeError):  # the SDK without its aiohttp extra
            pass
    return {"http_client": openai.DefaultAsyncHttpxClient(limits=limits)}


class _LoopState:
    """One event loop's HTTP client, concurrency limit and requests in flight.

    The client is closed when the loop shuts down (``asyncio.run`` finalises the loop's async
    generators, :func:`_close_at_shutdown` among them), so a caller that runs the executor in
    several ``asyncio.run`` calls without :meth:`Executor.aclose` leaks no connection or session.
    """

    def __init__(self, client: Any, concurrency: int):
        self.client = client
        self.semaphore = asyncio.Semaphore(concurrency)
        self.inflight: dict[str, asyncio.Future[Completion]] = {}
        self.closer = _close_at_shutdown(client)  # held here: the loop keeps it only weakly
        self.arm: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        await anext(self.closer)


async def _close_at_shutdown(client: Any) -> AsyncGenerator[None, None]:
    """Yield once; when the loop finalises this generator, close ``client`` on that loop."""
    try:
        yield
    finally:
        if not client.is_closed():
            await client.close()


def _record(completion: Completion) -> dict[str, Any]:
    """The cache's record of a fetched ``completion`` (everything but ``cached``)."""
    return {
        "text": completion.text,
        "model": completion.model,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "cost": completion.cost,
    }


def _from_record(record: Mapping[str, Any]) -> Completion:
    """The :class:`Completion` a cache ``record`` (:func:`_record`) stands for, marked ``cached``."""
    return Completion(
        text=record["text"],
        model=record.get("model", ""),
        prompt_tokens=record.get("prompt_tokens", 0),
        completion_tokens=record.get("completion_tokens", 0),
        cost=record.get("cost", 0.0),
        cached=True,
    )


class Executor:
    """Async OpenAI-compatible client implementing the :class:`~sf_workflows.protocols.LLM` protocol.

    It adds retries, a concurrency limit, cost accounting and an on-disk cache.

    The cache key is the full request (model, messages, every parameter after defaults) plus
    the caller's ``cache_tag``; the base URL and key are not part of it. A rerun of the same
    requests therefore sends nothing, costs nothing and returns the same replies. Identical
    requests in flight at the same time are sent once.

    One instance may be used from several event loops in turn (one OpenAI client per loop).
    """

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        prices: PriceTable | None = None,
        cache: ResponseCache | None = None,
    ):
        """Create the executor; resolves the endpoint at once.

        Raises:
            WorkflowConfigError: no key and no base URL (see :meth:`ExecutorConfig.resolved`).
        """
        self.config = config or ExecutorConfig()
        self.base_url, self._api_key = self.config.resolved()
        self.prices = prices or PriceTable.default()
        if cache is None and self.config.use_cache:
            directory = Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()
            cache = ResponseCache(directory / "responses.sqlite")
        self.cache = cache if self.config.use_cache else None
        self._usage = Usage()
        self.failed_attempts = 0
        """HTTP attempts that failed for our reasons so far (retried, or given up on)."""
        self.failed_calls = 0
        """Calls that failed for good after their retries (an :class:`ExecutorError` each)."""
        self._loops: dict[int, tuple[asyncio.AbstractEventLoop, _LoopState]] = {}
        self._warned_unpriced: set[str] = set()

    @property
    def model(self) -> str:
        """The model requests are sent to."""
        return self.config.model

    @property
    def usage(self) -> Usage:
        """Totals of every call made through this executor so far."""
        return self._usage

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        entry = self._loops.get(id(loop))
        if entry is None or entry[0] is not loop:
            import openai  # heavy; only when a request is made

            client = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self.config.request_timeout,
                **_http_client(openai, self.config.concurrency),
            )
            self._loops = {k: v for k, v in self._loops.items() if not v[0].is_closed()}
            entry = (loop, _LoopState(client, self.config.concurrency))
            self._loops[id(loop)] = entry
        return entry[1]

    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> dict[str, Any]:
        """The exact chat-completions request for ``messages`` and ``params`` (defaults applied).

        Raises:
            WorkflowConfigError: ``messages`` is malformed or a parameter is not supported.
        """
        msgs = [_checked_message(m) for m in messages]
        if not msgs:
            raise WorkflowConfigError("messages is empty")
        unknown = set(params) - _ALLOWED_PARAMS
        if unknown:
            raise WorkflowConfigError(f"unsupported chat parameters: {', '.join(sorted(unknown))}")
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": msgs,
            "temperature": self.config.temperature,
        }
        if self.config.max_tokens is not None:
            request["max_tokens"] = self.config.max_tokens
        request.update({k: v for k, v in params.items() if v is not None})
        return request

    async def complete(
        self, messages: Sequence[Message], *, cache_tag: str = "", **params: Any
    ) -> Completion:
        """Send one chat completion (or answer it from the cache).

        Args:
            messages: Chat messages.
            cache_tag: Distinguishes otherwise identical requests in the cache (for example the
                n-th identical call of a workflow run); not sent.
            **params: Chat parameters overriding the config's defaults (``temperature``, ...).

        Returns:
            The reply with tokens and cost.

        A reply is cached only once it is a well-formed completion: a failed, malformed or
        empty reply is never stored, so a rerun asks again.

        Raises:
            ExecutorError: the endpoint failed (after retries for retryable failures); its
                message names the endpoint, and ``infrastructure`` is ``"endpoint"`` for our
                failures (see :mod:`sf_workflows.failures`).
            WorkflowConfigError: malformed ``messages`` or ``params``.
        """
        request = self.build_request(messages, params)
        key = request_key({"request": request, "tag": cache_tag})
        record = self.cache.get(key) if self.cache is not None else None
        if record is not None:
            return self._counted(_from_record(record))
        state = self._state()
        pending = state.inflight.get(key)
        if pending is None:
            return self._counted(await self._send(state, key, request))
        try:  # the same request is on its way: share its reply
            first = await asyncio.shield(pending)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if pending.cancelled() and task is not None and not task.cancelling():
                return await self.complete(
                    messages, cache_tag=cache_tag, **params
                )  # its sender was cancelled
            raise
        return self._counted(dataclasses.replace(first, cached=True))

    def _counted(self, completion: Completion) -> Completion:
        """``completion``, added to :attr:`usage`."""
        self._usage = self._usage + Usage.of(completion)
        return completion

    async def _send(self, state: _LoopState, key: str, request: dict[str, Any]) -> Completion:
        """Fetch ``request`` as the one sender of ``key``; cache the reply once it is well formed.

        Callers that ask for ``key`` meanwhile wait on ``state.inflight[key]``, which gets this
        call's result, its exception, or its cancellation.

        Raises:
            ExecutorError: as :meth:`_fetch`.
        """
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        state.inflight[key] = future
        try:
            completion = await self._fetch(state, request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            state.inflight.pop(key, None)
        future.set_result(completion)
        if self.cache is not None:
            self.cache.put(key, _record(completion))
        return completion

    async def _fetch(self, state: _LoopState, request: dict[str, Any]) -> Completion:
        """Send ``request`` and return its completion, retrying our failures.

        :func:`~sf_workflows.executor._attempts.attempt_error` says which failures are ours; the
        wait is exponential backoff with jitter, or the endpoint's ``Retry-After``
        (:func:`~sf_workflows.executor._attempts.backoff`); tenacity runs the loop.

        Raises:
            ExecutorError: the last attempt's error; a retryable one says how many attempts
                were made (``gave up after N attempts``).
        """
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        cfg = self.config
        attempts = 0

        def before_sleep(retry_state: Any) -> None:
            self.failed_attempts += 1
            exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
            log.info(
                "executor: %s; retry %d in %.2fs",
                exc,
                retry_state.attempt_number,
                retry_state.next_action.sleep if retry_state.next_action else 0.0,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(cfg.max_retries + 1),
            wait=lambda retry_state: backoff(retry_state, cfg.retry_base_delay, cfg.retry_max_delay),
            retry=retry_if_exception(lambda exc: isinstance(exc, ExecutorError) and exc.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._attempt(state, request)
        except ExecutorError as exc:
            if exc.retryable:
                self.failed_attempts += 1
            self.failed_calls += 1
            if exc.retryable and attempts > 1:
                raise ExecutorError(
                    f"{exc} (gave up after {attempts} attempts)",
                    status_code=exc.status_code,
                    retryable=True,
                    retry_after=exc.retry_after,
                ) from exc.__cause__
            raise
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def _attempt(self, state: _LoopState, request: dict[str, Any]) -> Completion:
        """One HTTP request within ``request_timeout`` (the whole call, body included).

        Raises:
            ExecutorError: the endpoint failed; ``retryable`` for our failures (5xx, 429,
                connection, timeout, malformed or empty reply).
        """
        import openai

        cfg = self.config
        where = self.base_url or "the OpenAI API"
        async with state.semaphore:
            try:
                async with asyncio.timeout(cfg.request_timeout):
                    response = await state.client.chat.completions.create(**request)
            except TimeoutError as exc:
                raise ExecutorError(
                    f"the executor endpoint {where} did not answer within {cfg.request_timeout:g} s "
                    "(the request's own timeout, request_timeout)",
                    retryable=True,
                ) from exc
            except (openai.APIConnectionError, openai.APIStatusError) as exc:  # incl. its timeouts
                raise attempt_error(exc, self.base_url, cfg.model) from exc
            except (ValueError, openai.APIResponseValidationError) as exc:  # a body that is not JSON
                raise ExecutorError(
                    f"the executor endpoint {where} sent a reply that is not JSON "
                    f"({type(exc).__name__}: {str(exc)[:200]})",
                    retryable=True,
                ) from exc
        return self._completion(response, request, where)

    def _completion(self, response: Any, request: dict[str, Any], where: str) -> Completion:
        """The :class:`Completion` of a parsed reply.

        Raises:
            ExecutorError: (retryable) the reply is not a chat completion, has no choices, or
                its first choice has no message content.
        """
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            shown = str(response)[:120] if isinstance(response, str) else type(response).__name__
            raise ExecutorError(
                f"the executor endpoint {where} sent a reply that is not a chat completion: {shown!r}",
                retryable=True,
            )
        if not choices:
            raise ExecutorError(f"the executor endpoint {where} sent a reply with no choices", retryable=True)
        message = getattr(cast("list[object]", choices)[0], "message", None)  # checked: a list
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise ExecutorError(
                f"the executor endpoint {where} sent a reply whose first choice has no message content",
                retryable=True,
            )
        usage = getattr(response, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        model = str(getattr(response, "model", "") or request["model"])
        if self.prices.lookup(request["model"]) is None and request["model"] not in self._warned_unpriced:
            self._warned_unpriced.add(request["model"])
            log.warning(
                "no price for model %r: its calls count as $0 (extend the price table)", request["model"]
            )
        cost = self.prices.cost(request["model"], pt, ct)
        return Completion(text=text, model=model, prompt_tokens=pt, completion_tokens=ct, cost=cost)

    async def aclose(self) -> None:
        """Close the HTTP client of the current loop and the cache."""
        loop = asyncio.get_running_loop()
        entry = self._loops.pop(id(loop), None)
        if entry is not None:
            await entry[1].closer.aclose()  # ends the shutdown hook (it closes the client if it ran)
            await entry[1].client.close()  # and when it never started; closing twice is harmless
        self.close_cache()

    def close_cache(self) -> None:
        """Close the on-disk cache (further calls then skip it)."""
        if self.cache is not None:
            self.cache.close()
            self.cache = None
