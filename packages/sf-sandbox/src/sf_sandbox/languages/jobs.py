"""A :class:`~sf_sandbox.languages.CodeRequest` as a sandbox job, and that job's result read back.

:func:`code_job` builds the job, :func:`code_result` turns its :class:`~sf_sandbox.Result` into a
:class:`~sf_sandbox.languages.CodeResult`; :func:`run_code` / :func:`arun_code` do both on a sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from importlib.resources import files as _resources
from typing import TYPE_CHECKING

from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.job import Job
from sf_sandbox.languages.code import REPORT, CodeRequest, CodeResult, Phase
from sf_sandbox.languages.report import (
    read_report,
    report_compile_phase,
    report_int,
    report_seconds,
    report_status,
    report_str,
)
from sf_sandbox.languages.table import get_language
from sf_sandbox.limits import Limits
from sf_sandbox.result import Result, Status

if TYPE_CHECKING:
    from sf_sandbox.sandbox import Sandbox

__all__ = ["DRIVER_SLACK", "arun_code", "code_job", "code_result", "run_code"]

DRIVER_SLACK = 2.0
"""Seconds the job's wall clock gets on top of compile + run timeouts (the driver's own work)."""


def code_job(request: CodeRequest, limits: Limits) -> Job:
    """The sandbox :class:`~sf_sandbox.Job` that runs ``request`` under ``limits``.

    Raises:
        SandboxConfigError: unknown language, bad file paths.
    """
    lang = get_language(request.language)
    job_files = dict(request.files)
    if lang.compile is None and not lang.run:  # Python: the warm interpreter
        return Job(
            source=request.code,
            stdin=request.stdin,
            files=job_files,
            collect=request.fetch_files,
            args=request.args,
            limits=replace(limits, timeout=request.run_timeout),
        )
    name = lang.file_name(request.code)
    if name in job_files:
        raise SandboxConfigError(f"files: {name!r} is where the {lang.name} code goes; rename that file")
    job_files[name] = request.code.encode()
    if lang.compile is None:
        return Job(
            argv=(*lang.argv(lang.run, request.code), *request.args),
            stdin=request.stdin,
            files=job_files,
            collect=request.fetch_files,
            env=dict(lang.env),
            limits=replace(limits, timeout=request.run_timeout),
        )
    spec = {
        "compile": lang.argv(lang.compile, request.code),
        "run": [*lang.argv(lang.run, request.code), *request.args],
        "compile_timeout": request.compile_timeout,
        "run_timeout": request.run_timeout,
        "compile_output_bytes": limits.output_bytes,
        "env": dict(lang.env),
        "report": REPORT,
    }
    timeout = request.compile_timeout + request.run_timeout + DRIVER_SLACK
    return Job(
        source=_driver_source(),
        args=(json.dumps(spec),),
        stdin=request.stdin,
        files=job_files,
        collect=(REPORT, *request.fetch_files),
        limits=replace(limits, timeout=timeout),
    )


_AUTHORITATIVE = frozenset({Status.TIMEOUT, Status.MEMORY, Status.OUTPUT_LIMIT, Status.SANDBOX_ERROR})
"""Job statuses the sandbox itself established: they override what the driver reported."""


def code_result(request: CodeRequest, result: Result) -> CodeResult:
    """Read the :class:`CodeResult` of ``request`` out of its job's ``result``."""
    lang = get_language(request.language)
    files = {k: v for k, v in result.files.items() if k != REPORT}
    whole = _whole_job_phase(result)
    if lang.compile is None:
        return CodeResult(
            status=result.status,
            language=lang.name,
            run=whole,
            files=files,
            error=result.error,
            result=result,
        )
    compile_entry, run_entry = read_report(result.files.get(REPORT))
    if compile_entry is None:
        compiled = _unreported_compile(whole, result)
        return CodeResult(
            status=compiled.status,
            language=lang.name,
            compile=compiled,
            files=files,
            error=compiled.error,
            result=result,
        )
    compiled = report_compile_phase(compile_entry)
    if compiled.status is not Status.OK:
        if result.status in _AUTHORITATIVE and result.status is not Status.OUTPUT_LIMIT:
            compiled = replace(compiled, status=result.status, error=result.error)
        return CodeResult(
            status=compiled.status,
            language=lang.name,
            compile=compiled,
            files=files,
            error=compiled.error
            or (f"compilation failed (exit {compiled.exit_code})" if compiled.exit_code else None),
            result=result,
        )
    ran = _run_phase(whole, result, run_entry, compiled.duration)
    return CodeResult(
        status=ran.status,
        language=lang.name,
        compile=compiled,
        run=ran,
        files=files,
        error=ran.error,
        result=result,
    )


def _whole_job_phase(result: Result) -> Phase:
    """The job's result as one phase (an interpreted language's only phase; the base of the others)."""
    return Phase(
        status=result.status,
        exit_code=result.exit_code,
        stdout_bytes=result.stdout_bytes,
        stderr_bytes=result.stderr_bytes,
        truncated=result.stdout_truncated or result.stderr_truncated,
        duration=result.duration,
        error=result.error,
    )


def _unreported_compile(whole: Phase, result: Result) -> Phase:
    """The compile phase when the driver never reported: what stopped the job stopped it compiling."""
    status = result.status if result.status is not Status.OK else Status.SANDBOX_ERROR
    error = result.error or "the compile-and-run driver did not report (was it killed?)"
    return replace(whole, status=status, error=error, stdout_bytes=b"", stderr_bytes=b"")


def _run_phase(
    whole: Phase, result: Result, run_entry: Mapping[str, object] | None, compile_duration: float
) -> Phase:
    """The run phase after a good compile: the driver's report, unless the sandbox's status overrides it."""
    authoritative = result.status in _AUTHORITATIVE
    if run_entry is not None:
        status = result.status if authoritative else report_status(run_entry.get("status"))
        exit_code = report_int(run_entry.get("exit_code"))
        duration = report_seconds(run_entry.get("duration"))
        error = result.error if authoritative else report_str(run_entry.get("error"))
    else:  # killed while running (output cap, memory, the overall wall clock), or it ended its driver
        status = result.status if authoritative else Status.ERROR  # the program's doing, never ours
        exit_code = result.exit_code
        duration = max(0.0, result.duration - compile_duration)
        error = result.error or "the program's phase did not report (did the program kill its driver?)"
    return replace(whole, status=status, exit_code=exit_code, duration=duration, error=error)


_DRIVER: list[str] = []


def _driver_source() -> str:
    """The compile-and-run driver's source (``sf_sandbox/_lang_driver.py``), read once."""
    if not _DRIVER:
        _DRIVER.append(_resources("sf_sandbox").joinpath("_lang_driver.py").read_text())
    return _DRIVER[0]


def run_code(sandbox: Sandbox, request: CodeRequest) -> CodeResult:
    """Run ``request`` on ``sandbox`` (its image must have the language); never raises for the program.

    Raises:
        SandboxConfigError: unknown language or bad file paths.
    """
    return code_result(request, sandbox.run(code_job(request, sandbox.limits)))


async def arun_code(sandbox: Sandbox, request: CodeRequest) -> CodeResult:
    """Async :func:`run_code`."""
    job = code_job(request, sandbox.limits)
    return code_result(request, await sandbox.arun(job))
