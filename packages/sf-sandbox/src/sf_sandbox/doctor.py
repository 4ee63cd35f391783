"""``sf sandbox doctor``: each thing the sandbox needs, checked, with the fix when it is missing."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """The outcome of one check.

    Its ``name``, whether it passed (``ok``), a ``detail`` line, and the ``fix`` to apply when it
    failed (empty when there is none or nothing to fix).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


def diagnose(image: str, runtime: str | None = None) -> list[Check]:
    """Run every check in order; later checks are skipped when an earlier one makes them moot.

    ``runtime`` (e.g. ``runsc``) runs the test job under that Docker runtime; gVisor's
    availability is reported either way (informational unless asked for).
    """
    sdk = _sdk_check()
    if sdk is not None:
        return [sdk]
    checks = _permission_checks()
    client, engine = _engine_check()
    checks.append(engine)
    if client is None:
        return checks
    missing = _missing_image_checks(image)
    if missing:
        return checks + missing
    gvisor = _gvisor_check(client, runtime)
    checks.append(gvisor)
    if not gvisor.ok:  # runsc was asked for and is not there: the job check would only repeat it
        return checks
    from sf_sandbox.image import image_languages

    langs = image_languages(image) or ("python",)
    checks.append(Check(name="image", ok=True, detail=f"{image} present (languages: {', '.join(langs)})"))
    checks.append(_job_check(image, runtime))
    return checks


def _sdk_check() -> Check | None:
    """A failed check when the docker SDK cannot be imported, else None."""
    import importlib

    try:
        importlib.import_module("docker")
    except ImportError:
        return Check(
            name="docker SDK",
            ok=False,
            detail="the 'docker' package is missing",
            fix="pip install docker",
        )
    return None


def _permission_checks() -> list[Check]:
    """A failed check when the default socket exists but this user may not use it (no DOCKER_HOST)."""
    sock = "/var/run/docker.sock"
    if not os.environ.get("DOCKER_HOST") and os.path.exists(sock) and not os.access(sock, os.R_OK | os.W_OK):
        return [
            Check(
                name="permissions",
                ok=False,
                detail=f"no read/write access to {sock}",
                fix="add yourself to the 'docker' group (then log in again), or run as root",
            )
        ]
    return []


def _engine_check() -> tuple[Any, Check]:
    """The engine's client (None when no engine answers) and the check saying which engine it is."""
    from sf_sandbox.backends.docker import docker_client
    from sf_sandbox.errors import SandboxError

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker_client(timeout=10)
    except SandboxError as exc:
        return None, Check(
            name="engine",
            ok=False,
            detail=str(exc).split(". ")[0],
            fix="start it: `sudo systemctl start docker` or `sudo dockerd &`; or set DOCKER_HOST",
        )
    info = client.info()
    detail = (
        f"{where}: Docker {info.get('ServerVersion')}, cgroup v{info.get('CgroupVersion', '1')} "
        f"({info.get('CgroupDriver')}), {info.get('NCPU')} CPUs"
    )
    return client, Check(name="engine", ok=True, detail=detail)


def _missing_image_checks(image: str) -> list[Check]:
    """Failed checks when ``image`` is missing or outdated (with debootstrap's when build-image needs it)."""
    from sf_sandbox.image import image_status

    status = image_status(image)
    if status == "current":
        return []
    fix = "sf sandbox build-image" + (" --force" if status == "outdated" else "")
    if image != "sf-sandbox:py3":
        fix = "build or load it (it needs python3), or use the default image"
    checks = [Check(name="image", ok=False, detail=f"{image} is {status}", fix=fix)]
    if shutil.which("debootstrap") is None:
        checks.append(
            Check(
                name="debootstrap",
                ok=False,
                detail="needed by build-image",
                fix="apt-get install debootstrap (or build-image --base IMAGE)",
            )
        )
    return checks


def _gvisor_check(client: Any, runtime: str | None) -> Check:
    """Whether gVisor's ``runsc`` is usable; a failure only when ``runtime`` asks for it."""
    from sf_sandbox.gvisor import check_runtime

    gvisor = check_runtime(client)
    return Check(
        name="gvisor (runsc)",
        ok=gvisor.ok or runtime != "runsc",
        detail=("usable: --runtime runsc; " if gvisor.ok else "optional, off: ")
        + gvisor.detail
        + ("" if gvisor.ok else f"; to enable: {gvisor.fix}"),
        fix=gvisor.fix,
    )


_PROBE = (
    "import os, socket\nprint(os.getuid())\n"
    "s = socket.socket()\ns.settimeout(1)\n"
    "try:\n    s.connect(('1.1.1.1', 53)); print('net')\nexcept OSError: print('nonet')"
)
"""The test job: prints its uid, then whether it reached the network (it must not)."""


def _job_check(image: str, runtime: str | None) -> Check:
    """Run :data:`_PROBE` in a one-container sandbox: it must run, not as root, with no network."""
    from sf_sandbox import Job, Limits, Sandbox
    from sf_sandbox.errors import SandboxError

    try:
        with Sandbox(image=image, limits=Limits(timeout=10), runtime=runtime) as sb:
            r = sb.run(Job(source=_PROBE))
    except SandboxError as exc:
        return Check(name="job", ok=False, detail=str(exc), fix="see the message; `sf sandbox gc`")
    lines = r.stdout.split()
    good = r.ok and len(lines) == 2 and lines[0] != "0" and lines[1] == "nonet"
    return Check(
        name="job",
        ok=good,
        detail=(
            f"ran as uid {lines[0]}, network {'blocked' if lines[-1] == 'nonet' else 'REACHABLE'}"
            + (f", runtime {runtime}" if runtime else "")
            if r.ok
            else f"{r.status}: {r.error or r.stderr[-300:]}"
        ),
        fix="" if good else "report this as a bug",
    )
