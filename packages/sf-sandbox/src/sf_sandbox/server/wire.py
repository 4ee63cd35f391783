"""JSON ↔ values for the service: the native Job/Result shape and SandboxFusion's ``run_code`` shape.

Native (``POST /v1/run``, one object; ``POST /v1/batch``, ``{"jobs": [...]}``) maps 1:1 to
:class:`~sf_sandbox.Job` and :meth:`~sf_sandbox.Result.to_json`::

    {"source": "print(1)" | "argv": ["sh", "-c", "..."], "stdin": "text" | "stdin_base64": "...",
     "files": {"rel/path": "<base64>"}, "collect": ["out.txt"], "env": {"K": "V"}, "args": [],
     "limits": {"timeout": 5, "output_bytes": 65536, "file_size_mb": 8, "files_out_bytes": 1048576,
                "host_calls": 0}, "id": "any label"}

SandboxFusion (``POST /run_code``) follows its documented request (``code``, ``language``,
``stdin``, ``run_timeout``, ``compile_timeout``, ``memory_limit_MB``, ``files``, ``fetch_files``)
and reply (``status`` Success/Failed/SandboxError, ``message``, ``compile_result``/``run_result``
with ``status`` Finished/TimeLimitExceeded/Error, ``execution_time``, ``return_code``, ``stdout``,
``stderr``, plus ``executor_pod_name`` and ``files``). Its ``memory_limit_MB`` is accepted and the
server's memory limit applies (containers are warm; their cgroup is fixed at start).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import fields, replace
from typing import Literal, TypedDict, cast

from sf_sandbox._json import json_list, json_object, json_strings
from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.job import Job
from sf_sandbox.languages import CodeRequest, CodeResult, Phase
from sf_sandbox.limits import Limits
from sf_sandbox.result import Status

PER_JOB_LIMITS = ("timeout", "output_bytes", "file_size_mb", "files_out_bytes", "host_calls")
"""Limits a request may set for its own job; memory, CPUs and pids are the pool's."""
JOB_KEYS = {"source", "argv", "stdin", "stdin_base64", "files", "collect", "env", "args", "limits", "id"}


def _b64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise SandboxConfigError(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise SandboxConfigError(f"{where} is not valid base64") from None


def _str_list(value: object, where: str) -> tuple[str, ...]:
    strings = json_strings(value)
    if strings is None:
        raise SandboxConfigError(f"{where} must be a list of strings")
    return tuple(strings)


def job_from_json(data: object, base: Limits, max_timeout: float) -> Job:
    """The :class:`~sf_sandbox.Job` a native request (decoded JSON) describes.

    Raises:
        SandboxConfigError: a malformed request (the message names the field).
    """
    data = json_object(data)
    if data is None:
        raise SandboxConfigError("a job must be a JSON object")
    unknown = set(data) - JOB_KEYS
    if unknown:
        raise SandboxConfigError(f"unknown job field(s): {', '.join(sorted(unknown))}")
    if "stdin" in data and "stdin_base64" in data:
        raise SandboxConfigError("give stdin or stdin_base64, not both")
    if "stdin_base64" in data:
        stdin = _b64(data["stdin_base64"], "stdin_base64")
    else:
        text = data.get("stdin", "")
        if not isinstance(text, str):
            raise SandboxConfigError("stdin must be a string (or use stdin_base64)")
        stdin = text.encode()
    files = json_object(data.get("files", {}))
    if files is None:
        raise SandboxConfigError("files must be an object of path → base64 content")
    env = json_object(data.get("env", {}))
    if env is None:
        raise SandboxConfigError("env must be an object of name → value")
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise SandboxConfigError("source must be a string")
    argv = data.get("argv")
    job_id = data.get("id")
    if job_id is not None and not isinstance(job_id, str):
        raise SandboxConfigError("id must be a string")
    return Job(
        source=source,
        argv=_str_list(argv, "argv") if argv is not None else None,
        stdin=stdin,
        files={path: _b64(content, f"files[{path!r}]") for path, content in files.items()},
        collect=_str_list(data.get("collect", []), "collect"),
        env=cast("dict[str, str]", env),  # Job checks every entry (SandboxConfigError)
        args=_str_list(data.get("args", []), "args"),
        limits=limits_from_json(data.get("limits"), base, max_timeout),
        id=job_id,
    )


def limits_from_json(data: object, base: Limits, max_timeout: float) -> Limits:
    """``base`` with the per-job limits of ``data`` (decoded JSON) applied (never above the server's own).

    Raises:
        SandboxConfigError: unknown or pool-wide limits, or values above the server's.
    """
    if data is None:
        return base
    request = json_object(data)
    if request is None:
        raise SandboxConfigError("limits must be an object")
    pool_wide = set(request) & ({f.name for f in fields(Limits)} - set(PER_JOB_LIMITS))
    if pool_wide:
        raise SandboxConfigError(
            f"limits {', '.join(sorted(pool_wide))} belong to the server's containers and cannot be set "
            "per job (start the server with --memory/--cpus/--pids)"
        )
    unknown = set(request) - set(PER_JOB_LIMITS)
    if unknown:
        raise SandboxConfigError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    numbers: dict[str, float] = {}  # an int stays an int (the messages print it as given)
    for name, value in request.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SandboxConfigError(f"limits.{name} must be a number")
        numbers[name] = value
    timeout = numbers.get("timeout", base.timeout)
    if timeout > max_timeout:
        raise SandboxConfigError(
            f"limits.timeout {timeout:g}s is above the server's maximum of {max_timeout:g}s"
        )
    for name in PER_JOB_LIMITS[1:]:
        if name in numbers and numbers[name] > getattr(base, name):
            raise SandboxConfigError(
                f"limits.{name} {numbers[name]} is above the server's {getattr(base, name)}; ask for less"
            )
    return replace(base, **{k: (float(v) if k == "timeout" else int(v)) for k, v in numbers.items()})


# SandboxFusion --------------------------------------------------------------------------------

FUSION_KEYS = {
    "code",
    "language",
    "stdin",
    "run_timeout",
    "compile_timeout",
    "memory_limit_MB",
    "files",
    "fetch_files",
    "args",
}


class FusionRequestError(SandboxConfigError):
    """A ``run_code`` body that does not validate (HTTP 422, as SandboxFusion's FastAPI gives)."""

    def __init__(self, loc: str, msg: str) -> None:
        super().__init__(f"{loc}: {msg}")
        self.loc = loc
        self.msg = msg


def fusion_request(data: object, max_timeout: float) -> CodeRequest:
    """The :class:`~sf_sandbox.languages.CodeRequest` of a SandboxFusion ``run_code`` body (decoded JSON).

    Unknown fields are ignored (as pydantic does by default).

    Raises:
        FusionRequestError: a missing or mistyped field, a timeout above ``max_timeout``.
    """
    data = json_object(data)
    if data is None:
        raise FusionRequestError("body", "must be a JSON object")
    code = data.get("code")
    if not isinstance(code, str):
        raise FusionRequestError("code", "field required (a string)")
    language = data.get("language")
    if not isinstance(language, str):
        raise FusionRequestError("language", "field required (a string such as 'python' or 'cpp')")
    stdin = data.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise FusionRequestError("stdin", "must be a string or null")
    timeouts: dict[str, float] = {}
    for name in ("run_timeout", "compile_timeout"):
        value = data.get(name, 10)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise FusionRequestError(name, "must be a positive number of seconds")
        if value > max_timeout:
            raise FusionRequestError(name, f"{value:g}s is above this server's maximum of {max_timeout:g}s")
        timeouts[name] = float(value)
    files_in = json_object(data.get("files") or {})
    if files_in is None:
        raise FusionRequestError("files", "must be an object of path → base64 content")
    files: dict[str, bytes] = {}
    for path, content in files_in.items():
        rel = _relative(path, "files")
        try:
            files[rel] = b"" if content is None else _b64(content, f"files[{path!r}]")
        except SandboxConfigError as exc:
            raise FusionRequestError("files", str(exc)) from None
    fetch = json_strings(data.get("fetch_files") or [])
    if fetch is None:
        raise FusionRequestError("fetch_files", "must be a list of paths")
    try:
        return CodeRequest(
            code=code,
            language=language,
            stdin=(stdin or "").encode(),
            compile_timeout=timeouts["compile_timeout"],
            run_timeout=timeouts["run_timeout"],
            files=files,
            fetch_files=tuple(_relative(p, "fetch_files") for p in fetch),
        )
    except SandboxConfigError as exc:
        raise FusionRequestError("body", str(exc)) from None


def _relative(path: object, where: str) -> str:
    """A work-dir-relative path (``/work/x`` and ``./x`` are accepted as ``x``)."""
    if not isinstance(path, str):
        raise FusionRequestError(where, "paths must be strings")
    rel = path
    for prefix in ("/work/", "./"):
        if rel.startswith(prefix):
            rel = rel[len(prefix) :]
    if rel.startswith("/") or not rel or ".." in rel.split("/"):
        raise FusionRequestError(where, f"{path!r} must be relative to the working directory, without '..'")
    return rel


FusionStatus = Literal["Success", "Failed", "SandboxError"]
"""A ``RunCodeResponse``'s ``status``."""
CommandStatus = Literal["Finished", "TimeLimitExceeded", "Error"]
"""A ``CommandRunResult``'s ``status``."""


class FusionCommandResult(TypedDict):
    """SandboxFusion's ``CommandRunResult``: what one phase (compile or run) did."""

    status: CommandStatus
    execution_time: float
    """Seconds, measured inside the sandbox (rounded to microseconds)."""
    return_code: int | None
    """Exit status, or the negative signal number; None when the phase never started."""
    stdout: str
    stderr: str


class FusionResponse(TypedDict):
    """SandboxFusion's ``RunCodeResponse``."""

    status: FusionStatus
    message: str
    compile_result: FusionCommandResult | None
    run_result: FusionCommandResult | None
    executor_pod_name: None
    files: dict[str, str]
    """Fetched files, path as the request named it → base64 content."""


_FUSION_STATUS: dict[Status, CommandStatus] = {
    Status.OK: "Finished",
    Status.ERROR: "Finished",
    Status.COMPILE_ERROR: "Finished",
    Status.MEMORY: "Finished",
    Status.OUTPUT_LIMIT: "Finished",
    Status.TIMEOUT: "TimeLimitExceeded",
    Status.SANDBOX_ERROR: "Error",
}


def _command_result(phase: Phase | None) -> FusionCommandResult | None:
    if phase is None:
        return None
    return {
        "status": _FUSION_STATUS[phase.status],
        "execution_time": round(phase.duration, 6),
        "return_code": phase.exit_code,
        "stdout": phase.stdout,
        "stderr": phase.stderr,
    }


def fetch_names(data: object) -> dict[str, str]:
    """Work-dir-relative path → the spelling the request used in ``fetch_files`` (``/work/x`` stays so).

    ``data`` is a body (decoded JSON) that :func:`fusion_request` accepted.
    """
    fetch = json_list((json_object(data) or {}).get("fetch_files") or []) or []
    return {_relative(p, "fetch_files"): p for p in fetch if isinstance(p, str)}


def fusion_response(result: CodeResult, names: dict[str, str] | None = None) -> FusionResponse:
    """SandboxFusion's ``RunCodeResponse`` for ``result``.

    ``files`` are keyed as the request named them (``names``, from :func:`fetch_names`).
    ``status`` is ``Success`` when every phase finished with return code 0, ``SandboxError`` when
    a phase could not run (ours, not the program's), else ``Failed``. ``message`` names our finer
    status (``memory``, ``output_limit``, ``compile_error``, …) when it is not ``ok``.
    """
    phases = [p for p in (result.compile, result.run) if p is not None]
    status: FusionStatus
    if any(p.status is Status.SANDBOX_ERROR for p in phases) or not phases:
        status = "SandboxError"
    elif result.status is Status.OK:
        status = "Success"
    else:
        status = "Failed"
    quiet = result.status in (Status.OK, Status.ERROR)  # SandboxFusion leaves the message empty
    message = "" if quiet else f"{result.status}: {result.error or ''}".rstrip(": ")
    return {
        "status": status,
        "message": message,
        "compile_result": _command_result(result.compile),
        "run_result": _command_result(result.run),
        "executor_pod_name": None,
        "files": {(names or {}).get(k, k): base64.b64encode(v).decode() for k, v in result.files.items()},
    }


def fusion_error(message: str) -> FusionResponse:
    """A ``SandboxError`` reply that carries ``message`` (nothing ran)."""
    return {
        "status": "SandboxError",
        "message": message,
        "compile_result": None,
        "run_result": None,
        "executor_pod_name": None,
        "files": {},
    }
