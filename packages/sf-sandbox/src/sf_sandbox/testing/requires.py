"""Whether a test can run here: the real sandbox, a local Ray cluster, and the ``docker`` marker.

``require_sandbox()`` returns nothing when Docker and the image are ready; otherwise it skips the
test, or fails it when ``SF_REQUIRE_DOCKER=1`` (CI sets this, so a missing engine is a failure).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sf_sandbox.backends.docker import DEFAULT_IMAGE

if TYPE_CHECKING:
    import pytest

__all__ = [
    "DOCKER_FIXTURES",
    "mark_docker_tests",
    "ray_cluster_problem",
    "require_ray_cluster",
    "require_sandbox",
    "sandbox_problem",
]


def sandbox_problem(image: str = DEFAULT_IMAGE) -> str | None:
    """Why the real sandbox cannot run here, or None when it can."""
    from sf_sandbox.errors import SandboxError
    from sf_sandbox.image import image_status

    try:
        status = image_status(image)
    except SandboxError as exc:
        return str(exc)
    if status != "current":
        return f"image {image} is {status}: run `sf sandbox build-image`"
    return None


def _skip_or_fail(problem: str | None, *, cannot_run: str, unavailable: str) -> None:
    """Return when ``problem`` is None; else skip the calling test, or fail it under ``SF_REQUIRE_DOCKER=1``.

    The failure reads ``SF_REQUIRE_DOCKER=1 but {cannot_run}: {problem}``, the skip
    ``{unavailable}: {problem}``.
    """
    import pytest

    if problem is None:
        return
    if os.environ.get("SF_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SF_REQUIRE_DOCKER=1 but {cannot_run}: {problem}", pytrace=False)
    pytest.skip(f"{unavailable}: {problem}")


def require_sandbox(image: str = DEFAULT_IMAGE) -> None:
    """Skip (or, with SF_REQUIRE_DOCKER=1, fail) the calling test when the sandbox cannot run."""
    _skip_or_fail(
        sandbox_problem(image), cannot_run="the sandbox cannot run", unavailable="sandbox unavailable"
    )


def ray_cluster_problem(image: str = DEFAULT_IMAGE) -> str | None:
    """Why a local multi-node Ray cluster with one dockerd per node cannot run here, or None."""
    import importlib.util
    import shutil

    problem = sandbox_problem(image)
    if problem is not None:
        return problem
    if importlib.util.find_spec("ray") is None:
        return 'Ray is not installed: pip install "sf-sandbox[ray]"'
    if shutil.which("dockerd") is None:
        return "dockerd is not on PATH (install docker.io / docker-ce)"
    if shutil.which("unshare") is None:
        return "unshare is not on PATH (util-linux)"
    if os.geteuid() != 0:
        return "starting a dockerd per node needs root"
    return None


def require_ray_cluster(image: str = DEFAULT_IMAGE) -> None:
    """Skip (or, with SF_REQUIRE_DOCKER=1, fail) when a local Ray cluster cannot run here."""
    _skip_or_fail(
        ray_cluster_problem(image),
        cannot_run="a local Ray cluster cannot run",
        unavailable="local Ray cluster unavailable",
    )


DOCKER_FIXTURES = frozenset(
    {"docker_ready", "sandbox", "fresh_sandbox", "start_server", "runsc_engine", "code_scorer"}
    | {"require_docker", "ray_cluster"}
)
"""Fixture names of the sf test suites that start or need the Docker engine."""


def mark_docker_tests(items: list[pytest.Item], fixtures: frozenset[str] = DOCKER_FIXTURES) -> None:
    """Give the ``docker`` marker to every collected test that uses one of ``fixtures``.

    A test uses a fixture directly or through another fixture. Call it from
    ``pytest_collection_modifyitems``, so that ``pytest -m "not docker"`` selects exactly the tests
    that run without an engine.
    """
    import pytest

    for item in items:
        if set(getattr(item, "fixturenames", ())) & fixtures:
            item.add_marker(pytest.mark.docker)
