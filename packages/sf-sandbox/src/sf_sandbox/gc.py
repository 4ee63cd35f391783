"""Removing leftover sandbox containers (after a crash or a killed host process)."""

from __future__ import annotations

import socket
from typing import Any

from sf_sandbox.backends.docker import LABEL, process_start_time


def _owner_alive(labels: dict[str, str]) -> bool:
    if labels.get(f"{LABEL}.owner-host") != socket.gethostname():
        return True  # another machine's pool: not ours to judge
    try:
        pid = int(labels.get(f"{LABEL}.owner-pid", ""))
    except ValueError:
        return False
    start = process_start_time(pid)
    return start is not None and str(start) == labels.get(f"{LABEL}.owner-start", "")


# client: a docker.DockerClient (the docker SDK has no type annotations)
def collect_garbage(client: Any, *, only_dead_owners: bool = True) -> list[str]:
    """Remove labelled containers; return their short ids.

    With ``only_dead_owners`` (the default) a container is removed when it has stopped or the
    process on this host that created it is gone; containers owned by live processes or other
    hosts are kept. With ``False`` every ``sf-sandbox`` container on the engine is removed.
    """
    removed: list[str] = []
    # one list call (the high-level API inspects each container and races with other processes)
    for info in client.api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        labels: dict[str, str] = info.get("Labels") or {}
        # "created" (not yet started) containers of a live owner are pools starting right now
        if only_dead_owners and info.get("State") in ("running", "created") and _owner_alive(labels):
            continue
        try:
            client.api.remove_container(info["Id"], force=True)
            removed.append(info["Id"][:12])
        except Exception:  # already gone
            pass
    return removed
