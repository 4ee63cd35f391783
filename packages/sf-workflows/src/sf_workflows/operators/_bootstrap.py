"""Entry point of a workflow job *inside the sandbox* (stdlib only).

The host sends, as files of the job: this package zipped (``sfw_runtime.zip``) and the job
description (``sfw_job.json``: workflow source, problem, task type, entry point, public tests,
timeouts, the operator style, the run token). The job's source puts the zip on ``sys.path``
and calls :func:`main`,
which runs the workflow and writes ``sfw_result.json`` (collected by the host). LLM calls go to
the host as host calls ``sf_workflows_llm(token, rid, messages, params)`` (see ``_channel.py``);
the container has no network and no key.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from ._channel import Channel
from ._context import RunContext, activate
from ._runner import run_harness
from ._style import OperatorStyle
from ._workflow import execute

HOST_CALL = "sf_workflows_llm"
"""Name of the host call that answers LLM requests."""


class _Reply:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class HostLLMError(RuntimeError):
    """An LLM call failed on the host (executor down, call limit reached, bad messages)."""


class HostLLM:
    """The executor as seen from inside the sandbox: each ``complete`` is one host call.

    With a pipelined :class:`~._channel.Channel` (the default) concurrent operators
    (``asyncio.gather``) overlap on the host; otherwise calls go through ``sf_host.call`` in
    worker threads, one at a time.
    """

    def __init__(self, token: str, channel: Channel | None, call: Any = None, max_parallel: int = 16):
        self._token = token
        self._channel = channel
        self._call = call
        self._pool = (
            None if channel is not None else ThreadPoolExecutor(max_parallel, thread_name_prefix="sf-host")
        )
        self._rids = itertools.count(1)
        self._refused: str | None = None

    async def complete(self, messages: list[dict[str, str]], **params: Any) -> _Reply:
        """One LLM call answered by the host: the reply's ``text``.

        Raises:
            HostLLMError: the host refused or failed the call (after a ``final`` refusal every
                later call fails at once, without a round trip).
        """
        if self._refused is not None:  # the host stopped serving this run: fail fast, no round trip
            raise HostLLMError(self._refused)
        if self._channel is not None:
            reply = await asyncio.wrap_future(self._channel.submit(HOST_CALL, self._token, messages, params))
        else:
            rid = next(self._rids)
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(
                self._pool, lambda: self._call(HOST_CALL, self._token, rid, messages, params)
            )
        # the host call's value: a JSON object (str keys) or, from a broken host, anything
        fields = cast("dict[str, object]", reply) if isinstance(reply, dict) else None
        if fields is None or "error" in fields:
            error = fields.get("error") if fields is not None else f"bad reply {reply!r}"
            if fields is not None and fields.get("final"):
                self._refused = f"LLM call failed: {error}"
            raise HostLLMError(f"LLM call failed: {error}")
        text = fields.get("text")
        return _Reply(text if isinstance(text, str) else str(text))


def main(job_path: str = "sfw_job.json", result_path: str = "sfw_result.json") -> None:
    """Run the job described in ``job_path``; write the result dict to ``result_path``; exit.

    Exits with ``os._exit`` right after writing, so threads still blocked in host calls or code
    runs cannot delay the end of the job.
    """
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    operator_module = sys.modules[__package__ or "sf_workflows.operators"]
    channel = Channel.from_env() if job.get("pipelined", True) else None
    if channel is not None:
        llm = HostLLM(job["token"], channel)
    else:
        # sf_host exists only inside a sandbox job (the supervisor provides it), so pyright cannot see it
        from sf_host import call  # pyright: ignore[reportMissingImports, reportUnknownVariableType]

        llm = HostLLM(job["token"], None, call)
    ctx = RunContext(
        llm=llm,
        problem=job["problem"],
        task_type=job.get("task_type", ""),
        entry_point=job.get("entry_point"),
        public_tests=tuple(job.get("public_tests", ())),
        run_code=run_harness,
        code_timeout=float(job.get("code_timeout", 10.0)),
        style=OperatorStyle.from_json(job.get("operator_style")),
    )

    async def _main() -> dict[str, Any]:
        activate(ctx)
        return await execute(job["source"], llm, job["problem"], float(job["timeout"]), operator_module)

    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(_main())
    except SystemExit as exc:  # raised in a task the workflow started; asyncio re-raises it here
        result = {"status": "error", "answer": None, "error": f"the workflow called exit({exc.code!r})"}
    except BaseException as exc:  # noqa: BLE001 - last resort; execute() catches the workflow's errors
        result = {"status": "error", "answer": None, "error": f"runner failed: {type(exc).__name__}: {exc}"}
    answer = result.get("answer")
    cap = int(job.get("max_answer_bytes", 1 << 20))
    if isinstance(answer, str) and len(answer.encode("utf-8", "replace")) > cap:
        size = len(answer.encode("utf-8", "replace"))
        result = {
            "status": "bad_return",
            "answer": None,
            "error": f"the answer is {size} bytes, over the {cap}-byte limit",
        }
    data = json.dumps(result, ensure_ascii=False).encode("utf-8", "replace")
    with open(result_path, "wb") as fh:
        fh.write(data)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
