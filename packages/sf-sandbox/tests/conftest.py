from __future__ import annotations

from collections.abc import Iterator

import pytest

from sf_sandbox import Limits, Sandbox
from sf_sandbox.testing import require_sandbox


@pytest.fixture(scope="session")
def docker_ready() -> None:
    require_sandbox()


@pytest.fixture(scope="module")
def sandbox(docker_ready: None) -> Iterator[Sandbox]:
    """A warm two-container pool shared by a test module."""
    with Sandbox(limits=Limits(timeout=5), pool_size=2) as sb:
        yield sb


@pytest.fixture
def fresh_sandbox(docker_ready: None) -> Iterator[Sandbox]:
    """A single-container pool of the test's own, for tests that count replacements."""
    with Sandbox(limits=Limits(timeout=5), pool_size=1) as sb:
        yield sb
