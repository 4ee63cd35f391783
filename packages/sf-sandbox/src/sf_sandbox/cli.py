"""``sf sandbox …``: run a program, build the image, diagnose, clean up, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sf_sandbox._cli_root import entry, main
from sf_sandbox.cli_options import sandbox_options
from sf_sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from sf_sandbox.languages import Phase

__all__ = ["sandbox", "main", "entry"]

UNSAFE_FLAG = "--unsafe-local-no-isolation"


@click.group()
def sandbox() -> None:
    """Run untrusted code in hardened Docker containers.

    \b
    First time:   sf sandbox build-image     (offline; cached)
    Check setup:  sf sandbox doctor
    Run a file:   sf sandbox run prog.py --stdin "1 2" --timeout 5 --json
    """  # noqa: D301 - "\b" is the backspace click reads as "do not rewrap"; r""" would break it


@sandbox.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stdin", "stdin_text", default=None, help="Text fed to the program's standard input.")
@click.option(
    "--stdin-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File whose bytes are fed to standard input.",
)
@click.option(
    "--language",
    default=None,
    help="python, bash, c, cpp, javascript, go, java, rust (default: FILE's suffix; image sf-sandbox:all).",
)
@click.option(
    "--compile-timeout", type=float, default=10.0, show_default=True, help="Compile phase, seconds."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (status, exit_code, stdout, ...)."
)
@click.option(UNSAFE_FLAG, "unsafe", is_flag=True, help="Run on the host with NO isolation (rlimits only).")
@sandbox_options(
    exclude=("pool_size", "jobs_per_container"),
    limits=("timeout", "memory_mb", "cpus", "pids", "output_bytes"),
    help={
        "image": "Any local image with python3 (default sf-sandbox:py3).",
        "runtime": "Docker runtime: runc (default) or runsc, which runs the job under gVisor "
        "(see `sf sandbox doctor`).",
    },
)
def run_cmd(
    file: Path,
    stdin_text: str | None,
    stdin_file: Path | None,
    language: str | None,
    compile_timeout: float,
    as_json: bool,
    unsafe: bool,
    sandbox: SandboxSettings,
) -> int:
    """Run the program FILE in the sandbox: Python, or --language (else FILE's suffix: .c .cpp .go ...).

    Compiled languages compile first (--compile-timeout), then run (--timeout); a rejected program
    is status `compile_error`, and --json then carries `compile` and `run` phases.

    The exit code of `sf` says whether the sandbox worked (0) or not (1), not whether the program
    did: read `status` and `exit_code`. With --json, stdout/stderr are UTF-8 text with invalid
    bytes replaced (U+FFFD); `stdout_lossy` is then true and `stdout_base64` holds the exact bytes.
    `exit_code` is the negative signal number when the program was killed (-9 after a timeout,
    memory or output-limit kill).
    """
    from sf_sandbox import Job, Sandbox, SandboxConfigError, Status
    from sf_sandbox.backends.registry import UNSAFE_BACKEND_NAME

    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxConfigError(f"cannot read {file}: {exc}") from None
    if stdin_text is not None and stdin_file is not None:
        raise SandboxConfigError("give --stdin or --stdin-file, not both")
    stdin = stdin_file.read_bytes() if stdin_file else (stdin_text or "").encode()
    from sf_sandbox.languages import EXTENSIONS, get_language

    unsafe = unsafe or sandbox.backend == UNSAFE_BACKEND_NAME
    lang = get_language(language or EXTENSIONS.get(file.suffix.lower(), "python")).name
    if lang != "python":
        if unsafe:
            raise SandboxConfigError(f"{UNSAFE_FLAG} runs Python only; drop it to run {lang}")
        return _run_code(source, lang, stdin, sandbox, compile_timeout, as_json)
    if unsafe:
        click.echo("WARNING: running on the host with NO isolation", err=True)
    if unsafe and sandbox.runtime:
        raise SandboxConfigError(f"--runtime applies to Docker containers; drop it or {UNSAFE_FLAG}")
    if unsafe:
        sandbox = sandbox.merge(backend=UNSAFE_BACKEND_NAME)
    if sandbox.runtime:
        from sf_sandbox.gvisor import require_runtime

        require_runtime(sandbox.runtime)
    with Sandbox.from_settings(sandbox) as sb:
        result = sb.run(Job(source=source, stdin=stdin))
    if as_json:
        data = result.to_json()
        data.pop("files", None)
        data.pop("id", None)
        click.echo(json.dumps(data))
    else:
        sys.stdout.buffer.write(result.stdout_bytes)
        sys.stdout.flush()
        sys.stderr.buffer.write(result.stderr_bytes)
        trunc = " (output truncated)" if result.stdout_truncated or result.stderr_truncated else ""
        reason = f": {result.error}" if result.error else ""
        click.echo(
            f"[sandbox] status={result.status} exit_code={result.exit_code} "
            f"duration={result.duration:.3f}s{trunc}{reason}",
            err=True,
        )
    return 1 if result.status is Status.SANDBOX_ERROR else 0


def _run_code(
    source: str,
    language: str,
    stdin: bytes,
    settings: SandboxSettings,
    compile_timeout: float,
    as_json: bool,
) -> int:
    """``sf sandbox run`` for a language other than Python: compile, run, print both phases."""
    from sf_sandbox import Sandbox, Status
    from sf_sandbox.errors import ImageNotFoundError
    from sf_sandbox.image import build_hint, image_for_languages, image_languages
    from sf_sandbox.languages import CodeRequest, run_code

    if settings.runtime:
        from sf_sandbox.gvisor import require_runtime

        require_runtime(settings.runtime)
    image = settings.image
    if image is None:
        image = (
            "sf-sandbox:all"
            if image_languages("sf-sandbox:all")
            else image_for_languages(("python", language))
        )
    has = image_languages(image)
    if has is None:
        raise ImageNotFoundError(f"image {image!r} is not in the Docker engine: {build_hint(image)}")
    if language not in has:
        raise ImageNotFoundError(
            f"image {image!r} has no {language} toolchain: sf sandbox build-image --languages all"
        )
    request = CodeRequest(
        code=source,
        language=language,
        stdin=stdin,
        compile_timeout=compile_timeout,
        run_timeout=settings.limits.timeout,
    )
    with Sandbox.from_settings(settings.merge(image=image)) as sb:
        result = run_code(sb, request)

    def phase(p: Phase | None) -> dict[str, object] | None:
        if p is None:
            return None
        return {
            "status": str(p.status),
            "exit_code": p.exit_code,
            "stdout": p.stdout,
            "stderr": p.stderr,
            "duration": p.duration,
        }

    if as_json:
        click.echo(
            json.dumps(
                {
                    "status": str(result.status),
                    "language": result.language,
                    "error": result.error,
                    "compile": phase(result.compile),
                    "run": phase(result.run),
                }
            )
        )
    else:
        if result.compile is not None and result.compile.status is not Status.OK:
            sys.stderr.buffer.write(result.compile.stdout_bytes + result.compile.stderr_bytes)
        if result.run is not None:
            sys.stdout.buffer.write(result.run.stdout_bytes)
            sys.stdout.flush()
            sys.stderr.buffer.write(result.run.stderr_bytes)
        code = result.run.exit_code if result.run else (result.compile.exit_code if result.compile else None)
        reason = f": {result.error}" if result.error else ""
        click.echo(f"[sandbox] {language} status={result.status} exit_code={code}{reason}", err=True)
    return 1 if result.status is Status.SANDBOX_ERROR else 0


@sandbox.command("build-image")
@click.option(
    "--image",
    default=None,
    help="Name of the image to build (default sf-sandbox:py3; sf-sandbox:all with --languages all).",
)
@click.option(
    "--languages",
    default="python",
    show_default=True,
    help="Toolchains to add: 'all' (bash, c, cpp, javascript, go, java, rust) or a comma list.",
)
@click.option("--force", is_flag=True, help="Rebuild even if the image exists.")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite for debootstrap.")
@click.option("--mirror", default=None, help="Debian mirror (default: the one apt uses here).")
@click.option("--base", default=None, help="Build FROM this local image (must have python3) instead.")
def build_image_cmd(
    image: str | None, languages: str, force: bool, suite: str, mirror: str | None, base: str | None
) -> int:
    """Build a sandbox image locally, with no registry (debootstrap + docker import).

    \b
    sf sandbox build-image                    Python only: sf-sandbox:py3 (small, the default)
    sf sandbox build-image --languages all    + bash, C, C++, Node, Go, Java, Rust: sf-sandbox:all
    sf sandbox build-image --languages c,go   a subset: sf-sandbox:c-go

    Idempotent: an existing image is reused, and the rootfs is cached under ~/.cache/sf-sandbox.
    Needs root and `debootstrap` (apt-get install debootstrap), or --base with an image you
    already have (Python only).
    """  # noqa: D301 - "\b" is the backspace click reads as "do not rewrap"; r""" would break it
    from sf_sandbox.image import build_image

    build_image(
        image,
        force=force,
        suite=suite,
        mirror=mirror,
        base=base,
        languages=languages,
        log=lambda m: click.echo(m, err=True),
    )
    return 0


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=int, default=8080, show_default=True, help="TCP port (0: any free port).")
@click.option("--pool-size", type=int, default=2, show_default=True, help="Warm containers = jobs at once.")
@click.option(
    "--max-queue", type=int, default=64, show_default=True, help="Jobs that may wait; past it: HTTP 429."
)
@click.option(
    "--languages",
    default=None,
    help="Serve the image built with these languages ('all' → sf-sandbox:all); default Python only.",
)
@sandbox_options(
    exclude=("pool_size", "backend", "jobs_per_container"),
    limits=("timeout", "memory_mb", "cpus", "pids", "output_bytes"),
    help={
        "image": "Image to serve (overrides --languages).",
        "runtime": "Docker runtime: runc (default) or runsc (gVisor); see `sf sandbox doctor`.",
        "timeout": "Default job timeout (s).",
        "memory_mb": "Memory per container (MiB).",
        "cpus": "CPUs per container.",
        "pids": "Processes/threads per job.",
    },
)
@click.option(
    "--max-timeout", type=float, default=60.0, show_default=True, help="Largest timeout a request may ask."
)
@click.option(
    "--max-body-bytes", type=int, default=16 << 20, show_default=True, help="Largest request body (413)."
)
@click.option("--max-batch", type=int, default=256, show_default=True, help="Most jobs per /v1/batch.")
@click.option("--token", default=None, help="Bearer token clients must send (env SF_SANDBOX_SERVE_TOKEN).")
@click.option(
    "--insecure-no-token", "insecure", is_flag=True, help="Allow a non-loopback --host without a token."
)
@click.option(
    "--drain-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="On SIGTERM, seconds in-flight jobs get before they are killed.",
)
def serve_cmd(
    host: str,
    port: int,
    pool_size: int,
    max_queue: int,
    languages: str | None,
    max_timeout: float,
    max_body_bytes: int,
    max_batch: int,
    token: str | None,
    insecure: bool,
    drain_timeout: float,
    sandbox: SandboxSettings,
) -> int:
    """Serve the sandbox over HTTP (needs the extra: pip install "sf-sandbox[server]").

    \b
    Endpoints:
      POST /run_code    SandboxFusion's request/reply: code, language, stdin, run_timeout,
                        compile_timeout, files, fetch_files -> status, run_result, compile_result
      POST /v1/run      one native job (source|argv, stdin, files, collect, env, limits) -> Result
      POST /v1/batch    {"jobs": [...]} -> {"results": [...]} in order
      GET  /health  /ready  /metrics (Prometheus)  /v1/info
    \b
    Example:
      sf sandbox build-image --languages all
      sf sandbox serve --languages all --pool-size 4 --port 8080
      curl -s localhost:8080/run_code -d '{"code": "print(1)", "language": "python"}'

    A full queue answers 429, a draining server 503, a body above --max-body-bytes 413. A client
    that disconnects has its job killed. SIGTERM drains: in-flight jobs get --drain-timeout
    seconds, then every container is removed.
    """  # noqa: D301 - "\b" is the backspace click reads as "do not rewrap"; r""" would break it
    from sf_sandbox.server import ServeConfig, serve

    image, timeout = sandbox.image, sandbox.limits.timeout
    if image is None and languages:
        from sf_sandbox.image import image_for_languages
        from sf_sandbox.languages import resolve_languages

        image = image_for_languages(resolve_languages(languages))
    if timeout > max_timeout:
        from sf_sandbox import SandboxConfigError

        raise SandboxConfigError(f"--timeout {timeout:g} is above --max-timeout {max_timeout:g}")
    config = ServeConfig(
        host=host,
        port=port,
        pool_size=pool_size,
        max_queue=max_queue,
        image=image,
        runtime=sandbox.runtime,
        limits=sandbox.limits,
        max_timeout=max_timeout,
        max_body_bytes=max_body_bytes,
        max_batch=max_batch,
        token=token,
        insecure=insecure,
        drain_timeout=drain_timeout,
    )
    return serve(config, log=lambda m: click.echo(m, err=True))


@sandbox.command("doctor")
@sandbox_options(
    exclude=("pool_size", "backend", "jobs_per_container"),
    defaults=SandboxSettings(image="sf-sandbox:py3"),
    help={"image": "Image to check.", "runtime": "Also run the test job under this Docker runtime (runsc)."},
)
def doctor_cmd(sandbox: SandboxSettings) -> int:
    """Check everything the sandbox needs and say how to fix what is missing.

    Also says whether gVisor (runsc) is available and, if not, how to enable it.
    """
    from sf_sandbox.doctor import diagnose

    ok = True
    for check in diagnose(sandbox.image or "sf-sandbox:py3", sandbox.runtime):
        mark = "ok " if check.ok else "FAIL"
        click.echo(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok:
            ok = False
            if check.fix:
                click.echo(f"       fix: {check.fix}")
    return 0 if ok else 1


@sandbox.command("gc")
@click.option("--all", "remove_all", is_flag=True, help="Remove every sf-sandbox container, live pools too.")
def gc_cmd(remove_all: bool) -> int:
    """Remove leftover sandbox containers (exited, or owned by a process that is gone)."""
    from sf_sandbox.backends.docker import docker_client
    from sf_sandbox.gc import collect_garbage

    removed = collect_garbage(docker_client(), only_dead_owners=not remove_all)
    click.echo(f"removed {len(removed)} container(s)" + (f": {' '.join(removed)}" if removed else ""))
    return 0


@sandbox.command("demo")
@sandbox_options(
    exclude=("pool_size", "backend", "jobs_per_container"), defaults=SandboxSettings(pool_size=2)
)
def demo_cmd(sandbox: SandboxSettings) -> int:
    """Score a few real programs, well-behaved and hostile, and print what happened to each."""
    from sf_sandbox.demo import run_demo

    return run_demo(sandbox, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
