"""Helpers for tests that need the real sandbox (used by every sf package's test suite).

``require_sandbox()`` returns nothing when Docker and the image are ready; otherwise it skips the
test, or fails it when ``SF_REQUIRE_DOCKER=1`` (CI sets this, so a missing engine is a failure).
"""

from __future__ import annotations

import os

from sf_sandbox.backends.docker import DEFAULT_IMAGE


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


def require_sandbox(image: str = DEFAULT_IMAGE) -> None:
    """Skip (or, with SF_REQUIRE_DOCKER=1, fail) the calling test when the sandbox cannot run."""
    import pytest

    problem = sandbox_problem(image)
    if problem is None:
        return
    if os.environ.get("SF_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SF_REQUIRE_DOCKER=1 but the sandbox cannot run: {problem}", pytrace=False)
    pytest.skip(f"sandbox unavailable: {problem}")
