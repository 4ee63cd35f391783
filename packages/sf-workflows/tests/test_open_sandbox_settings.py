"""open_sandbox(settings): the settings reach the pool, with the workflow host calls and runtime preload."""

from __future__ import annotations

from sf_sandbox import Limits, Preload
from sf_sandbox.pool import Pool
from sf_sandbox.settings import SandboxSettings
from sf_workflows import open_sandbox
from sf_workflows.run import HOST_CALL, RUNTIME_PACKAGE


def test_open_sandbox_takes_settings() -> None:
    settings = SandboxSettings(runtime="runsc", image="sf-sandbox:py3", pool_size=3, limits=Limits(timeout=7))
    sandbox = open_sandbox(settings)
    assert isinstance(sandbox, Pool)
    assert sandbox.settings.runtime == "runsc" and sandbox.backend.runtime == "runsc"  # type: ignore[attr-defined]
    assert sandbox.settings.pool_size == 3 and sandbox.limits == Limits(timeout=7)
    assert f"{RUNTIME_PACKAGE}._bootstrap" in sandbox.preload.modules  # type: ignore[union-attr]
    assert HOST_CALL in sandbox.hostcalls.functions
    assert open_sandbox(settings, pool_size=5).settings.pool_size == 5  # keywords override
    own = Preload(modules=("json",))
    assert open_sandbox(SandboxSettings(preload=own)).preload is own
