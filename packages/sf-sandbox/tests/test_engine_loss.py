"""The engine dies mid-batch: every job still gets a result (sandbox_error), nothing raises."""

from __future__ import annotations

import os
import tempfile

import pytest

from sf_sandbox import Job, Limits, Sandbox, Status
from sf_sandbox.testing import LocalDockerd, save_image


@pytest.fixture
def own_engine(docker_ready: None, monkeypatch: pytest.MonkeyPatch):
    if os.geteuid() != 0:
        if os.environ.get("SF_REQUIRE_DOCKER") == "1":
            pytest.fail("this test starts its own dockerd and needs root", pytrace=False)
        pytest.skip("needs root to start a dockerd")
    base = tempfile.mkdtemp(prefix="sfeng", dir="/tmp")
    engine = LocalDockerd(base)
    engine.start()
    try:
        engine.load_image(save_image(os.path.join(base, "img.tar")))
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        yield engine
    finally:
        engine.stop()


def test_engine_death_mid_batch_loses_no_result(own_engine: LocalDockerd) -> None:
    def kill_engine() -> str:
        own_engine.kill()
        return "killed"

    jobs = [
        Job(source="print('before')", id="a"),
        Job(
            source="from sf_host import call\nprint(call('kill_engine'))\nimport time\ntime.sleep(30)",
            id="killer",
            limits=Limits(timeout=60),
        ),
        *[Job(source="print('after')", id=f"after{i}") for i in range(4)],
    ]
    with Sandbox(host_calls={"kill_engine": kill_engine}, pool_size=1) as sb:
        results = sb.run_many(jobs, concurrency=1)
    assert [r.id for r in results] == [j.id for j in jobs]
    assert results[0].ok and results[0].stdout == "before\n"
    assert all(r.status is Status.SANDBOX_ERROR and r.error for r in results[1:]), [
        (r.id, r.status, r.error) for r in results
    ]
