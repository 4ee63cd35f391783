"""Shared fixtures of the sf-sandbox tests: warm sandboxes, server processes, a runsc engine, markers.

The ``docker_ready`` fixture skips (or, with SF_REQUIRE_DOCKER=1, fails) a test when the sandbox
cannot run; tests that need the engine through a fixture get the ``docker`` marker.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from sf_sandbox import Limits, Sandbox
from sf_sandbox.server.testing import ServerProcess
from sf_sandbox.testing import LocalDockerd, require_sandbox


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


@pytest.fixture
def start_server(docker_ready: None) -> Iterator[Callable[..., ServerProcess]]:
    """A factory: ``start_server("--pool-size", "1")`` → a running :class:`ServerProcess`.

    All are stopped (SIGTERM, then SIGKILL) at the end of the test.
    """
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(list(args), env)
        started.append(server)
        return server

    yield start
    for server in started:
        try:
            server.terminate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def runsc_engine(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDockerd]:
    """A Docker engine of our own (own socket, data root, exec root) with gVisor's runsc registered.

    It holds the default image; the shared engine is never reconfigured or restarted.
    """
    import shutil
    import tempfile

    from sf_sandbox.gvisor import RUNSC_RUNTIME
    from sf_sandbox.testing import LocalDockerd, save_image

    if shutil.which("runsc") is None or shutil.which("dockerd") is None or os.geteuid() != 0:
        pytest.fail(
            "gVisor tests need root, dockerd and runsc (apt-get install runsc; scripts/setup.sh does)"
        )
    base = tempfile.mkdtemp(prefix="sfrunsc-", dir="/tmp")  # short: unix socket paths are limited
    engine = LocalDockerd(base, daemon_config={"runtimes": {"runsc": RUNSC_RUNTIME}})
    engine.start()
    try:
        tarball = save_image(str(tmp_path_factory.mktemp("img") / "py3.tar"))
        engine.load_image(tarball)
        os.unlink(tarball)
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(base, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the engine (through a fixture) carry the ``docker`` marker."""
    from sf_sandbox.testing import mark_docker_tests

    mark_docker_tests(items)
