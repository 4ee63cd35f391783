"""``sf sandbox …``: run a program, build the image, diagnose, clean up, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sf_sandbox._cli_root import entry, main

__all__ = ["sandbox", "main", "entry"]

UNSAFE_FLAG = "--unsafe-local-no-isolation"


@click.group()
def sandbox() -> None:
    """Run untrusted code in hardened Docker containers.

    \b
    First time:   sf sandbox build-image     (offline; cached)
    Check setup:  sf sandbox doctor
    Run a file:   sf sandbox run prog.py --stdin "1 2" --timeout 5 --json
    """


@sandbox.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stdin", "stdin_text", default=None, help="Text fed to the program's standard input.")
@click.option(
    "--stdin-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File whose bytes are fed to standard input.",
)
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Wall-clock seconds.")
@click.option("--memory", type=int, default=512, show_default=True, help="Memory limit in MiB (no swap).")
@click.option("--cpus", type=float, default=1.0, show_default=True)
@click.option("--pids", type=int, default=128, show_default=True, help="Process/thread limit.")
@click.option("--output-bytes", type=int, default=1 << 20, show_default=True, help="Cap per stream.")
@click.option("--image", default=None, help="Any local image with python3 (default sf-sandbox:py3).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (status, exit_code, stdout, ...)."
)
@click.option(UNSAFE_FLAG, "unsafe", is_flag=True, help="Run on the host with NO isolation (rlimits only).")
def run_cmd(
    file: Path,
    stdin_text: str | None,
    stdin_file: Path | None,
    timeout: float,
    memory: int,
    cpus: float,
    pids: int,
    output_bytes: int,
    image: str | None,
    as_json: bool,
    unsafe: bool,
) -> int:
    """Run the Python program FILE in the sandbox.

    The exit code of `sf` says whether the sandbox worked (0) or not (1), not whether the program
    did: read `status` and `exit_code`. With --json, stdout/stderr are UTF-8 text with invalid
    bytes replaced (U+FFFD); `stdout_lossy` is then true and `stdout_base64` holds the exact bytes.
    `exit_code` is the negative signal number when the program was killed (-9 after a timeout,
    memory or output-limit kill).
    """
    from sf_sandbox import Job, Limits, Sandbox, SandboxConfigError, Status
    from sf_sandbox.backends.local_unsafe import UNSAFE_BACKEND_NAME

    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxConfigError(f"cannot read {file}: {exc}") from None
    if stdin_text is not None and stdin_file is not None:
        raise SandboxConfigError("give --stdin or --stdin-file, not both")
    stdin = stdin_file.read_bytes() if stdin_file else (stdin_text or "").encode()
    limits = Limits(timeout=timeout, memory_mb=memory, cpus=cpus, pids=pids, output_bytes=output_bytes)
    if unsafe:
        click.echo("WARNING: running on the host with NO isolation", err=True)
    with Sandbox(image=image, limits=limits, backend=UNSAFE_BACKEND_NAME if unsafe else "docker") as sb:
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


@sandbox.command("build-image")
@click.option("--image", default="sf-sandbox:py3", show_default=True, help="Name of the image to build.")
@click.option("--force", is_flag=True, help="Rebuild even if the image exists.")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite for debootstrap.")
@click.option("--mirror", default=None, help="Debian mirror (default: the one apt uses here).")
@click.option("--base", default=None, help="Build FROM this local image (must have python3) instead.")
def build_image_cmd(image: str, force: bool, suite: str, mirror: str | None, base: str | None) -> int:
    """Build the default sandbox image locally, with no registry (debootstrap + docker import).

    Idempotent: an existing image is reused. Needs root and `debootstrap` (apt-get install
    debootstrap), or --base with an image you already have.
    """
    from sf_sandbox.image import build_image

    build_image(
        image, force=force, suite=suite, mirror=mirror, base=base, log=lambda m: click.echo(m, err=True)
    )
    return 0


@sandbox.command("doctor")
@click.option("--image", default="sf-sandbox:py3", show_default=True)
def doctor_cmd(image: str) -> int:
    """Check everything the sandbox needs and say how to fix what is missing."""
    from sf_sandbox.doctor import diagnose

    ok = True
    for check in diagnose(image):
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
@click.option("--image", default=None, help="Image to use (default sf-sandbox:py3).")
def demo_cmd(image: str | None) -> int:
    """Score a few real programs, well-behaved and hostile, and print what happened to each."""
    from sf_sandbox.demo import run_demo

    return run_demo(image, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
