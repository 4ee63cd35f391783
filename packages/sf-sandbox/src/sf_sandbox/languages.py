"""Programs in languages other than Python: compile, then run, each phase with its own limit and status.

:func:`run_code` (and :func:`arun_code`) run one :class:`CodeRequest` on a :class:`~sf_sandbox.Sandbox`
whose image has the language's toolchain (``sf sandbox build-image --languages all`` builds
``sf-sandbox:all``) and return a :class:`CodeResult`:

* Python runs as a plain ``source`` job (the warm interpreter); bash and JavaScript run as
  ``argv`` jobs. Their one phase is ``run``.
* C, C++, Go, Java and Rust run a small stdlib-only driver (``_lang_driver.py``) as the job: it
  compiles (stdin from /dev/null, output captured and capped, killed at ``compile_timeout``),
  then runs the program on the job's own stdin/stdout/stderr (killed at ``run_timeout``). A
  failed compile is :attr:`~sf_sandbox.Status.COMPILE_ERROR`, never ``error``.

Everything else is the sandbox's: the same container isolation, warm pool, supervisor, output
caps and end-of-job kill of every process.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib.resources import files as _resources
from typing import TYPE_CHECKING

from sf_sandbox._json import json_object
from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.job import Job
from sf_sandbox.limits import Limits
from sf_sandbox.result import Result, Status

if TYPE_CHECKING:
    from sf_sandbox.sandbox import Sandbox

REPORT = ".sf-phases.json"
"""Where the driver leaves its report, relative to the work dir (reserved: jobs cannot use it)."""
DRIVER_SLACK = 2.0
"""Seconds the job's wall clock gets on top of compile + run timeouts (the driver's own work)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    """How one language is compiled and run inside the sandbox image."""

    name: str
    """Canonical name (``c``, ``cpp``, ``go``, …)."""
    aliases: tuple[str, ...] = ()
    """Other names accepted in requests (SandboxFusion's ``nodejs`` for JavaScript, …)."""
    packages: tuple[str, ...] = ()
    """Debian packages the image needs for it (python3 is always there)."""
    source: str
    """File name the code is written to in the work dir; ``{cls}`` is Java's public class name."""
    compile: tuple[str, ...] | None = None
    """Compiler argv (``{src}`` = source file, ``{cls}`` = Java class), or None when interpreted."""
    run: tuple[str, ...] = ()
    """Program argv (same placeholders); empty for Python (a warm ``source`` job)."""
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    """Extra environment for both phases."""
    probe: str = ""
    """A program on PATH that proves the toolchain is in the image."""

    def file_name(self, code: str) -> str:
        """The source file name for ``code``."""
        return self.source.format(cls=_java_class(code))

    def argv(self, template: tuple[str, ...], code: str) -> list[str]:
        """``template`` with its placeholders filled for ``code``."""
        return [a.format(src=self.file_name(code), cls=_java_class(code)) for a in template]


def _java_class(code: str) -> str:
    match = re.search(r"\bpublic\s+(?:(?:final|abstract|strictfp)\s+)*class\s+([A-Za-z_$][\w$]*)", code)
    return match.group(1) if match else "Main"


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language(name="python", aliases=("python3", "py"), source="main.py", probe="python3"),
        Language(name="bash", aliases=("sh", "shell"), source="main.sh", run=("bash", "{src}"), probe="bash"),
        Language(
            name="c",
            packages=("gcc", "libc6-dev"),
            source="main.c",
            compile=("gcc", "-O2", "-std=gnu11", "-o", "main", "{src}", "-lm"),
            run=("./main",),
            probe="gcc",
        ),
        Language(
            name="cpp",
            aliases=("c++", "cxx"),
            packages=("g++",),
            source="main.cpp",
            compile=("g++", "-O2", "-std=gnu++17", "-o", "main", "{src}"),
            run=("./main",),
            probe="g++",
        ),
        Language(
            name="javascript",
            aliases=("nodejs", "node", "js"),
            packages=("nodejs",),
            source="main.js",
            run=("node", "{src}"),
            probe="node",
        ),
        Language(
            name="go",
            aliases=("golang",),
            packages=("golang-go",),
            source="main.go",
            compile=("go", "build", "-o", "main", "{src}"),
            run=("./main",),
            # GOCACHE must be writable; the image ships std prebuilt, so a build stays small
            env={"GOCACHE": "/tmp/go-cache", "GOPATH": "/tmp/go", "GO111MODULE": "off", "CGO_ENABLED": "0"},
            probe="go",
        ),
        Language(
            name="java",
            packages=("openjdk-17-jdk-headless",),
            source="{cls}.java",
            compile=(
                "javac",
                "-J-XX:+UseSerialGC",
                "-J-XX:TieredStopAtLevel=1",
                "-J-XX:-UsePerfData",
                "-J-Xshare:auto",
                "{src}",
            ),
            run=("java", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xshare:auto", "{cls}"),
            probe="javac",
        ),
        Language(
            name="rust",
            aliases=("rs",),
            packages=("rustc",),
            source="main.rs",
            compile=("rustc", "-O", "--edition", "2021", "-o", "main", "{src}"),
            run=("./main",),
            probe="rustc",
        ),
    )
}
"""Every supported language by canonical name."""

PROFILES: dict[str, tuple[str, ...]] = {
    "python": ("python",),
    "all": tuple(LANGUAGES),
}
"""Named language sets for ``sf sandbox build-image --languages``."""


EXTENSIONS = {
    ".py": "python",
    ".sh": "bash",
    ".bash": "bash",
    ".c": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".js": "javascript",
    ".mjs": "javascript",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
}
"""File name suffix → language, for ``sf sandbox run FILE`` without ``--language``."""


def get_language(name: str) -> Language:
    """The language called ``name`` (canonical or alias, case-insensitive).

    Raises:
        SandboxConfigError: unknown language (the message lists the known ones).
    """
    key = name.strip().lower()
    for lang in LANGUAGES.values():
        if key == lang.name or key in lang.aliases:
            return lang
    raise SandboxConfigError(f"unknown language {name!r}: use one of {', '.join(LANGUAGES)}")


def resolve_languages(spec: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Canonical, sorted language names for a profile name or a comma list (``all``, ``c,go``).

    Python is always included (the supervisor needs it).

    Raises:
        SandboxConfigError: an unknown name.
    """
    items = [s for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    names = {"python"}
    for item in items:
        if item.strip().lower() in PROFILES:
            names.update(PROFILES[item.strip().lower()])
        else:
            names.add(get_language(item).name)
    return tuple(sorted(names, key=list(LANGUAGES).index))


def debian_packages(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The Debian packages an image with ``languages`` needs, python3 first."""
    pkgs = ["python3"]
    for name in languages:
        for pkg in LANGUAGES[name].packages:
            if pkg not in pkgs:
                pkgs.append(pkg)
    return tuple(pkgs)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRequest:
    """One program in some language, with its input files and the files to fetch back."""

    code: str
    """The program's source."""
    language: str = "python"
    """Any name :func:`get_language` knows."""
    stdin: bytes = b""
    """Bytes fed to the program (the run phase); the compiler reads /dev/null."""
    compile_timeout: float = 10.0
    """Wall-clock seconds for the compile phase (compiled languages only)."""
    run_timeout: float = 10.0
    """Wall-clock seconds for the run phase."""
    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    """Files to create in the work dir before compiling, relative path → content."""
    fetch_files: tuple[str, ...] = ()
    """Relative paths to return after the run (missing ones are absent)."""
    args: tuple[str, ...] = ()
    """Extra command-line arguments for the program."""

    def __post_init__(self) -> None:
        if isinstance(self.stdin, str):
            object.__setattr__(self, "stdin", self.stdin.encode())
        if not (self.compile_timeout > 0 and self.run_timeout > 0):
            raise SandboxConfigError("compile_timeout and run_timeout must be > 0 seconds")
        object.__setattr__(self, "fetch_files", tuple(self.fetch_files))
        object.__setattr__(self, "args", tuple(self.args))
        if REPORT in self.files or REPORT in self.fetch_files:
            raise SandboxConfigError(f"{REPORT!r} is reserved for the sandbox's own use")


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """What one phase (compile or run) did."""

    status: Status
    """``ok``, ``compile_error`` (compile phase only), ``error``, ``timeout``, ``memory``,
    ``output_limit`` or ``sandbox_error``."""
    exit_code: int | None = None
    """Exit status, or the negative signal number when killed; None when it never started."""
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    truncated: bool = False
    """Output passed its cap (the compile phase keeps the start of its output)."""
    duration: float = 0.0
    """Seconds the phase took, measured inside the sandbox."""
    error: str | None = None

    @property
    def stdout(self) -> str:
        """The phase's stdout decoded as UTF-8, invalid bytes replaced."""
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        """The phase's stderr decoded as UTF-8, invalid bytes replaced."""
        return self.stderr_bytes.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeResult:
    """The outcome of a :class:`CodeRequest`.

    ``status`` is the compile phase's when it did not succeed (``compile_error``, ``timeout``,
    ``memory``, …), else the run phase's. ``run`` is None when the program never ran.
    """

    status: Status
    language: str
    compile: Phase | None = None
    """None for interpreted languages."""
    run: Phase | None = None
    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    """Fetched files that existed after the run."""
    error: str | None = None
    """Why the status is not ``ok``, when known."""
    result: Result | None = None
    """The sandbox job's own :class:`~sf_sandbox.Result` (both phases together)."""

    @property
    def ok(self) -> bool:
        """True when the status is ``ok``."""
        return self.status is Status.OK


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


def code_result(request: CodeRequest, result: Result) -> CodeResult:
    """Read the :class:`CodeResult` of ``request`` out of its job's ``result``."""
    lang = get_language(request.language)
    files = {k: v for k, v in result.files.items() if k != REPORT}
    whole = Phase(
        status=result.status,
        exit_code=result.exit_code,
        stdout_bytes=result.stdout_bytes,
        stderr_bytes=result.stderr_bytes,
        truncated=result.stdout_truncated or result.stderr_truncated,
        duration=result.duration,
        error=result.error,
    )
    if lang.compile is None:
        return CodeResult(
            status=result.status,
            language=lang.name,
            run=whole,
            files=files,
            error=result.error,
            result=result,
        )
    report = _read_report(result.files.get(REPORT))
    compile_entry, run_entry = json_object(report.get("compile")), json_object(report.get("run"))
    authoritative = result.status in (
        Status.TIMEOUT,
        Status.MEMORY,
        Status.OUTPUT_LIMIT,
        Status.SANDBOX_ERROR,
    )
    compile_phase = _compile_phase(compile_entry) if compile_entry is not None else None
    if compile_phase is None:
        # the driver never reported: whatever stopped the job stopped it while compiling
        status = result.status if result.status is not Status.OK else Status.SANDBOX_ERROR
        error = result.error or "the compile-and-run driver did not report (was it killed?)"
        compile_phase = replace(whole, status=status, error=error, stdout_bytes=b"", stderr_bytes=b"")
        return CodeResult(
            status=status, language=lang.name, compile=compile_phase, files=files, error=error, result=result
        )
    if compile_phase.status is not Status.OK:
        if authoritative and result.status is not Status.OUTPUT_LIMIT:
            compile_phase = replace(compile_phase, status=result.status, error=result.error)
        return CodeResult(
            status=compile_phase.status,
            language=lang.name,
            compile=compile_phase,
            files=files,
            error=compile_phase.error
            or (f"compilation failed (exit {compile_phase.exit_code})" if compile_phase.exit_code else None),
            result=result,
        )
    if run_entry is not None:
        status = result.status if authoritative else _status(run_entry.get("status"))
        exit_code = _int_or_none(run_entry.get("exit_code"))
        duration = _seconds(run_entry.get("duration"))
        error = result.error if authoritative else _str_or_none(run_entry.get("error"))
    else:  # killed while running (output cap, memory, the overall wall clock), or it ended its driver
        status = result.status if authoritative else Status.ERROR  # the program's doing, never ours
        exit_code = result.exit_code
        duration = max(0.0, result.duration - compile_phase.duration)
        error = result.error or "the program's phase did not report (did the program kill its driver?)"
    run_phase = replace(whole, status=status, exit_code=exit_code, duration=duration, error=error)
    return CodeResult(
        status=status,
        language=lang.name,
        compile=compile_phase,
        run=run_phase,
        files=files,
        error=error,
        result=result,
    )


# The driver's report is JSON in the work dir: a program that ends its driver can leave one of its own,
# so every field is read for what it is, and anything else counts as absent.


def _status(value: object) -> Status:
    try:
        return Status(value)
    except ValueError:
        return Status.SANDBOX_ERROR


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _seconds(value: object) -> float:
    """A duration field: a number (or its decimal string); 0.0 when absent or not a number."""
    if isinstance(value, int | float | str):
        try:
            return float(value or 0.0)
        except ValueError:
            return 0.0
    return 0.0


def _compile_phase(entry: Mapping[str, object]) -> Phase:
    try:
        out = base64.b64decode(_str_or_none(entry.get("stdout")) or "")
        err = base64.b64decode(_str_or_none(entry.get("stderr")) or "")
    except (binascii.Error, ValueError):
        out = err = b""
    return Phase(
        status=_status(entry.get("status")),
        exit_code=_int_or_none(entry.get("exit_code")),
        stdout_bytes=out,
        stderr_bytes=err,
        truncated=bool(entry.get("truncated")),
        duration=_seconds(entry.get("duration")),
        error=_str_or_none(entry.get("error")),
    )


def _read_report(data: bytes | None) -> dict[str, object]:
    if not data:
        return {}
    try:
        report: object = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return {}
    return json_object(report) or {}


_DRIVER: list[str] = []


def _driver_source() -> str:
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


__all__ = [
    "EXTENSIONS",
    "LANGUAGES",
    "PROFILES",
    "CodeRequest",
    "CodeResult",
    "Language",
    "Phase",
    "arun_code",
    "code_job",
    "code_result",
    "debian_packages",
    "get_language",
    "resolve_languages",
    "run_code",
]
