"""What a :class:`~sf_sandbox.ray_pool.RayPool` did: per-node figures, lost nodes, retried jobs.

Re-exported by :mod:`sf_sandbox.ray_pool`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["NodeReport", "RayReport", "Retry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """One job that ran again on another node because its first node was lost."""

    index: int
    """The job's position in its ``run_many`` call."""
    job_id: str | None
    """The job's ``id``."""
    node: str
    """Short id of the node it was taken from."""
    reason: str
    """Why that node was given up (``raylet or actor died: ...``, ``docker engine gone``)."""


@dataclass(slots=True, kw_only=True)
class NodeReport:
    """What one node did for the pool."""

    node_id: str
    """Ray node id (hex)."""
    address: str = ""
    """The node's IP address as Ray knows it."""
    hostname: str = ""
    docker_host: str = ""
    """The engine the node's pool talks to (``default``: the local socket)."""
    pool_size: int = 0
    jobs: int = 0
    """Results this node delivered (retried jobs count where they finally ran)."""
    batches: int = 0
    removed_at_start: int = 0
    """Leftover containers of dead owners removed when the pool started."""
    removed_at_stop: int = 0
    lost: str | None = None
    """Why the node was given up; ``None`` while it is in use."""

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the node id."""
        return self.node_id[:8]


@dataclass(slots=True, kw_only=True)
class RayReport:
    """What a :class:`RayPool` did: per-node figures, lost nodes and every retried job."""

    nodes: list[NodeReport] = field(default_factory=list[NodeReport])
    retried: list[Retry] = field(default_factory=list[Retry])
    failed_over: int = 0
    """Jobs that got ``sandbox_error`` because no node was left to run them."""
    skipped: dict[str, str] = field(default_factory=dict[str, str])
    """Nodes whose pool could not start (node id → reason); they get no work."""

    @property
    def lost(self) -> list[NodeReport]:
        """The nodes given up during the run."""
        return [n for n in self.nodes if n.lost]

    def format(self) -> str:
        """A few human-readable lines: nodes and their jobs, lost nodes, retried jobs."""
        used = self.nodes
        lines = [
            f"ray: {len(used)} node(s), {sum(n.jobs for n in used)} job(s): "
            + ", ".join(
                f"{n.short_id} ({n.address or '?'}, pool {n.pool_size}) {n.jobs}"
                + (" LOST" if n.lost else "")
                for n in used
            )
        ]
        for node_id, why in self.skipped.items():
            lines.append(f"ray: node {node_id[:8]} not used: {why}")
        for n in self.lost:
            moved = [r for r in self.retried if r.node == n.short_id]
            names = ", ".join(r.job_id or f"#{r.index}" for r in moved[:10])
            more = f" and {len(moved) - 10} more" if len(moved) > 10 else ""
            lines.append(
                f"ray: node {n.short_id} lost ({n.lost}); {len(moved)} unfinished job(s) retried "
                f"on other nodes" + (f": {names}{more}" if moved else "")
            )
        if self.failed_over:
            lines.append(f"ray: {self.failed_over} job(s) got sandbox_error: no node was left to run them")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        from dataclasses import asdict

        return {
            "nodes": [asdict(n) for n in self.nodes],
            "retried": [asdict(r) for r in self.retried],
            "failed_over": self.failed_over,
            "skipped": dict(self.skipped),
        }
