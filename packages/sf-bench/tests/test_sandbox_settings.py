"""`sf bench run`'s sandbox options reach every pool the run opens (code scorer, workflow runner, --ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.scorers.code import CodeScorer
from sf_sandbox import Limits, Sandbox
from sf_sandbox.settings import SandboxSettings


class _Stop(Exception):
    pass


def test_run_flags_reach_the_harness_and_the_workflow_runner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sf_bench.harness
    import sf_bench.systems

    seen: dict[str, Any] = {}
    real_resolve = sf_bench.systems.resolve_generator

    def resolve_generator(*args: Any, **kwargs: Any) -> Any:
        seen["system"] = system = real_resolve(*args, **kwargs)
        return system

    class Harness:
        def __init__(self, system: Any, **kwargs: Any) -> None:
            seen.update(kwargs)
            raise _Stop

    monkeypatch.setattr(sf_bench.systems, "resolve_generator", resolve_generator)
    monkeypatch.setattr(sf_bench.harness, "Harness", Harness)
    monkeypatch.setenv("SF_EXECUTOR_API_KEY", "k")
    argv = ["run", "humaneval", "--generator", "template:io", "--executor-model", "m", "--limit", "1"]
    argv += [
        "--runtime",
        "runsc",
        "--image",
        "sf-sandbox:py3",
        "--concurrency",
        "3",
        "--out",
        str(tmp_path),
        "-q",
    ]
    with pytest.raises(_Stop):
        main(argv)
    settings = seen["sandbox"]
    assert settings == SandboxSettings(runtime="runsc", image="sf-sandbox:py3")
    runner = seen["system"].runner
    assert runner.settings == settings and runner.pool_size == 3


def test_a_bad_runtime_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        main(["run", "humaneval", "--solver", "canonical", "--runtime", "no good", "--out", str(tmp_path)])
        == 2
    )
    assert "error: runtime must be a Docker runtime name" in capsys.readouterr().err


def test_the_code_scorer_opens_its_sandbox_from_the_settings() -> None:
    scorer = CodeScorer(
        timeout=7, concurrency=3, settings=SandboxSettings(runtime="runsc", limits=Limits(pids=64))
    )
    assert scorer.settings == SandboxSettings(runtime="runsc", pool_size=3, limits=Limits(timeout=7, pids=64))
    assert Sandbox.from_settings(scorer.settings).backend.runtime == "runsc"  # type: ignore[attr-defined]
    plain = CodeScorer(timeout=7, concurrency=3)  # as before: 512 MiB, the pool = concurrency
    assert plain.settings == SandboxSettings(pool_size=3, limits=Limits(timeout=7, memory_mb=512))
    assert plain.memory_mb == 512 and CodeScorer(memory_mb=256).settings.limits.memory_mb == 256


def test_harness_hands_its_settings_to_the_default_code_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from sf_bench.harness import Harness

    started: list[CodeScorer] = []
    monkeypatch.setattr(CodeScorer, "start", lambda self: started.append(self))
    harness = Harness(lambda p: "", concurrency=2, test_timeout=4, sandbox=SandboxSettings(runtime="runsc"))
    scorer = asyncio.run(harness._code())
    assert started == [scorer]
    assert scorer.settings == SandboxSettings(runtime="runsc", pool_size=2, limits=Limits(timeout=4))
