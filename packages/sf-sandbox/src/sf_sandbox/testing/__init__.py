"""Helpers for tests that need the real sandbox (used by every sf package's test suite).

``require_sandbox()`` returns nothing when Docker and the image are ready; otherwise it skips the
test, or fails it when ``SF_REQUIRE_DOCKER=1`` (CI sets this, so a missing engine is a failure).

The modules, one job each (import the names from here):

* :mod:`~sf_sandbox.testing.requires`: can the sandbox (or a local Ray cluster) run here; the
  ``docker`` marker;
* :mod:`~sf_sandbox.testing.procs`: process trees and listening sockets, read from ``/proc``;
* :mod:`~sf_sandbox.testing.dockerd`: :class:`LocalDockerd`, a Docker engine of the test's own;
* :mod:`~sf_sandbox.testing.ray_cluster`: :class:`LocalRayCluster`, N Ray nodes on loopback;
* :mod:`~sf_sandbox.testing.canary`: :class:`Canary`, the neighbour a hostile job must not disturb.

Importing this package loads none of Ray, pytest or the docker SDK; each helper imports what it
needs when called.
"""

from __future__ import annotations

from sf_sandbox.testing.canary import CANARY, Canary
from sf_sandbox.testing.dockerd import LocalDockerd, save_image
from sf_sandbox.testing.procs import descendants, listeners
from sf_sandbox.testing.ray_cluster import (
    RAY_LOOPBACK_ENV,
    LocalRayCluster,
    shared_ray_cluster,
    use_loopback_ray,
)
from sf_sandbox.testing.requires import (
    DOCKER_FIXTURES,
    mark_docker_tests,
    ray_cluster_problem,
    require_ray_cluster,
    require_sandbox,
    sandbox_problem,
)

__all__ = [
    "CANARY",
    "DOCKER_FIXTURES",
    "RAY_LOOPBACK_ENV",
    "Canary",
    "LocalDockerd",
    "LocalRayCluster",
    "descendants",
    "listeners",
    "mark_docker_tests",
    "ray_cluster_problem",
    "require_ray_cluster",
    "require_sandbox",
    "sandbox_problem",
    "save_image",
    "shared_ray_cluster",
    "use_loopback_ray",
]
