"""``sf sandbox doctor``: each thing the sandbox needs, checked, with the fix when it is missing."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


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
    checks: list[Check] = []
    try:
        import docker  # noqa: F401
    except ImportError:
        return [
            Check(
                name="docker SDK",
                ok=False,
                detail="the 'docker' package is missing",
                fix="pip install docker",
            )
        ]
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    sock = "/var/run/docker.sock"
    if not os.environ.get("DOCKER_HOST") and os.path.exists(sock) and not os.access(sock, os.R_OK | os.W_OK):
        checks.append(
            Check(
                name="permissions",
                ok=False,
                detail=f"no read/write access to {sock}",
                fix="add yourself to the 'docker' group (then log in again), or run as root",
            )
        )
    from sf_sandbox.backends.docker import docker_client
    from sf_sandbox.errors import SandboxError

    try:
        client = docker_client(timeout=10)
    except SandboxError as exc:
        checks.append(
            Check(
                name="engine",
                ok=False,
                detail=str(exc).split(". ")[0],
                fix="start it: `sudo systemctl start docker` or `sudo dockerd &`; or set DOCKER_HOST",
            )
        )
        return checks
    info = client.info()
    checks.append(
        Check(
            name="engine",
            ok=True,
            detail=(
                f"{where}: Docker {info.get('ServerVersion')}, cgroup v{info.get('CgroupVersion', '1')} "
                f"({info.get('CgroupDriver')}), {info.get('NCPU')} CPUs"
            ),
        )
    )
    from sf_sandbox.image import image_status

    status = image_status(image)
    if status != "current":
        fix = "sf sandbox build-image" + (" --force" if status == "outdated" else "")
        if image != "sf-sandbox:py3":
            fix = "build or load it (it needs python3), or use the default image"
        checks.append(Check(name="image", ok=False, detail=f"{image} is {status}", fix=fix))
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
    from sf_sandbox.gvisor import check_runtime
    from sf_sandbox.image import image_languages

    gvisor = check_runtime(client)
    checks.append(
        Check(
            name="gvisor (runsc)",
            ok=gvisor.ok or runtime != "runsc",
            detail=("usable: --runtime runsc; " if gvisor.ok else "optional, off: ")
            + gvisor.detail
            + ("" if gvisor.ok else f"; to enable: {gvisor.fix}"),
            fix=gvisor.fix,
        )
    )
    if runtime == "runsc" and not gvisor.ok:
        return checks
    langs = image_languages(image) or ("python",)
    checks.append(Check(name="image", ok=True, detail=f"{image} present (languages: {', '.join(langs)})"))
    from sf_sandbox import Job, Limits, Sandbox

    try:
        with Sandbox(image=image, limits=Limits(timeout=10), runtime=runtime) as sb:
            r = sb.run(
                Job(
                    source="import os, socket\nprint(os.getuid())\n"
                    "s = socket.socket()\ns.settimeout(1)\n"
                    "try:\n    s.connect(('1.1.1.1', 53)); print('net')\nexcept OSError: print('nonet')"
                )
            )
    except SandboxError as exc:
        checks.append(Check(name="job", ok=False, detail=str(exc), fix="see the message; `sf sandbox gc`"))
        return checks
    lines = r.stdout.split()
    good = r.ok and len(lines) == 2 and lines[0] != "0" and lines[1] == "nonet"
    checks.append(
        Check(
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
    )
    return checks
