"""gVisor (``runsc``) as the sandbox's Docker runtime: is it there, and how to turn it on.

``Sandbox(runtime="runsc")``, ``sf sandbox run --runtime runsc`` and ``sf sandbox serve
--runtime runsc`` start the pool's containers under gVisor's user-space kernel instead of runc.
Every Docker limit still applies. The engine must know the runtime: Debian's ``runsc`` package
installs the binary, and ``/etc/docker/daemon.json`` registers it (:data:`RUNSC_RUNTIME`) —
``--network=none`` because sandbox containers never have a network and gVisor otherwise refuses
to start a ``--network none`` container from an engine in the root network namespace.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNSC = "runsc"
RUNSC_RUNTIME: dict[str, Any] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
"""The ``runtimes.runsc`` entry of daemon.json that sf-sandbox needs."""
DAEMON_JSON = Path("/etc/docker/daemon.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeCheck:
    """Whether a Docker runtime can be used, and what to do if not."""

    name: str
    installed: bool
    """The runtime's binary is on this machine."""
    registered: bool
    """The engine lists the runtime (``docker info`` → Runtimes)."""
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """Usable now."""
        return self.installed and self.registered


def enable_hint(path: Path = DAEMON_JSON) -> str:
    """The steps that make runsc usable on this machine's engine."""
    entry = json.dumps({"runtimes": {RUNSC: RUNSC_RUNTIME}})
    return (
        f"apt-get install runsc; merge {entry} into {path}; restart dockerd "
        "(systemctl restart docker); then use --runtime runsc"
    )


def check_runtime(client: Any, name: str = RUNSC) -> RuntimeCheck:
    """Check ``name`` against the engine ``client`` talks to (``client.info()['Runtimes']``)."""
    # the Engine API's /info JSON, through the untyped docker SDK
    info: dict[str, Any] = client.info() or {}
    runtimes: dict[str, Any] = info.get("Runtimes") or {}
    binary = shutil.which(name) if name == RUNSC else name
    installed = bool(binary) or name in runtimes
    registered = name in runtimes
    if registered:
        args: list[str] = runtimes[name].get("runtimeArgs") or [] if isinstance(runtimes[name], dict) else []
        detail = f"registered in the engine ({runtimes[name].get('path', '?')} {' '.join(args)})".rstrip()
        if name == RUNSC and "--network=none" not in args:
            return RuntimeCheck(
                name=name,
                installed=installed,
                registered=False,
                detail=detail + " but without --network=none (containers would fail to start)",
                fix=enable_hint(),
            )
        return RuntimeCheck(name=name, installed=installed, registered=True, detail=detail)
    if not installed:
        return RuntimeCheck(
            name=name, installed=False, registered=False, detail="not installed", fix=enable_hint()
        )
    return RuntimeCheck(
        name=name,
        installed=True,
        registered=False,
        detail=f"{binary} is installed but the engine does not list it",
        fix=enable_hint(),
    )


def merged_daemon_config(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` daemon.json with the runsc runtime registered (other settings kept)."""
    config = dict(current)
    runtimes = dict(config.get("runtimes") or {})
    runtimes[RUNSC] = RUNSC_RUNTIME
    config["runtimes"] = runtimes
    return config


def require_runtime(runtime: str | None) -> None:
    """Fail fast, with the fix, when ``runtime`` is not usable on the engine ``DOCKER_HOST`` names.

    Raises:
        SandboxConfigError: the engine does not list the runtime.
        EngineUnavailableError: no engine answers.
    """
    if not runtime:
        return
    from sf_sandbox.backends.docker import docker_client
    from sf_sandbox.errors import SandboxConfigError

    client = docker_client(timeout=30)
    try:
        check = check_runtime(client, runtime)
    finally:
        client.close()
    if not check.ok:
        fix = check.fix or "register it in /etc/docker/daemon.json and restart dockerd"
        raise SandboxConfigError(
            f"Docker runtime {runtime!r} is not usable: {check.detail}. To enable: {fix}"
        )
