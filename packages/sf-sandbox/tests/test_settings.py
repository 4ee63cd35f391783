"""SandboxSettings, the backend registry, the option group and the Pool protocol."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from sf_sandbox import Job, Limits, Preload, Sandbox, SandboxConfigError, Status
from sf_sandbox.backends.local_unsafe import LocalUnsafeBackend
from sf_sandbox.backends.registry import (
    UNSAFE_BACKEND_NAME,
    backend_names,
    get_backend,
    register_backend,
)
from sf_sandbox.cli_options import sandbox_options
from sf_sandbox.pool import Pool
from sf_sandbox.ray_pool import RayPool
from sf_sandbox.sandbox import make_backend
from sf_sandbox.settings import SandboxSettings


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "podman"}, "unknown sandbox backend 'podman': use one of docker"),
        ({"runtime": "run sc"}, "runtime must be a Docker runtime name such as runc or runsc"),
        ({"backend": UNSAFE_BACKEND_NAME, "runtime": "runsc"}, "applies to Docker containers"),
        ({"image": "two words"}, "image must be an image name"),
        ({"image": ""}, "image must be an image name"),
        ({"pool_size": 0}, "pool_size must be >= 1"),
        ({"pool_size": True}, "pool_size must be >= 1"),
        ({"limits": {"timeout": 5}}, "limits must be an sf_sandbox.Limits"),
        ({"preload": "x"}, "preload must be an sf_sandbox.Preload"),
    ],
)
def test_invalid_settings_say_what_to_do(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SandboxConfigError, match=message):
        SandboxSettings(**kwargs)


def test_defaults_are_those_of_a_plain_sandbox() -> None:
    settings = SandboxSettings()
    assert (settings.backend, settings.image, settings.runtime, settings.pool_size) == (
        "docker",
        None,
        None,
        None,
    )
    assert settings.limits == Limits() and settings.preload is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.image = "x"  # type: ignore[misc]


def test_merge_applies_only_what_is_given() -> None:
    base = SandboxSettings(image="img:1", pool_size=3)
    assert base.merge(image=None, runtime="runsc") == SandboxSettings(
        image="img:1", pool_size=3, runtime="runsc"
    )
    assert base.merge() is base
    with pytest.raises(SandboxConfigError, match="unknown sandbox setting"):
        base.merge(pool=2)


def test_mapping_text_and_dict_round_trip() -> None:
    settings = SandboxSettings.from_mapping(
        {"runtime": "runsc", "pool_size": "8", "limits": {"timeout": "5", "memory_mb": 1024}}
    )
    assert settings.runtime == "runsc" and settings.pool_size == 8
    assert settings.limits == Limits(timeout=5.0, memory_mb=1024)
    assert (
        SandboxSettings.from_string("runtime=runsc, pool_size=8, limits.timeout=5,limits.memory_mb=1024")
        == settings
    )
    assert SandboxSettings.from_string(json.dumps(settings.to_dict())) == settings
    assert SandboxSettings.from_mapping(settings.to_dict()) == settings
    assert settings.changes() == {
        "runtime": "runsc",
        "pool_size": 8,
        "limits.timeout": 5.0,
        "limits.memory_mb": 1024,
    }
    assert SandboxSettings.from_mapping(settings.changes()) == settings
    assert SandboxSettings.from_mapping({"image": "none"}, base=SandboxSettings(image="x:1")).image is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"imag": "x"}, "unknown sandbox setting 'imag' \\(did you mean image\\?\\)"),
        ({"limits": {"tmeout": 1}}, "unknown limit\\(s\\) tmeout"),
        ({"limits.timeout": "soon"}, "limits.timeout: 'soon' is not a float"),
        ({"limits.pids": 4.5}, "limit pids must be a whole number"),
        ({"pool_size": "many"}, "pool_size: 'many' is not a int"),
        ({"preload": {}}, "preload is set in Python"),
        ({"limits": 3}, "limits must be a mapping"),
    ],
)
def test_bad_config_sections_are_config_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SandboxConfigError, match=message):
        SandboxSettings.from_mapping(data)


def test_bad_text_is_a_config_error() -> None:
    with pytest.raises(SandboxConfigError, match="write NAME=VALUE"):
        SandboxSettings.from_string("runsc")
    with pytest.raises(SandboxConfigError, match="not valid JSON"):
        SandboxSettings.from_string("{runtime: runsc")


# ------------------------------------------------------------------ Sandbox(settings=...)
def test_keywords_and_settings_build_the_same_pool() -> None:
    limits = Limits(timeout=3)
    by_keywords = Sandbox(image="img:1", limits=limits, pool_size=2, runtime="runsc")
    by_settings = Sandbox.from_settings(
        SandboxSettings(image="img:1", limits=limits, pool_size=2, runtime="runsc")
    )
    assert by_keywords.settings == by_settings.settings
    for sb in (by_keywords, by_settings):
        assert sb.limits is limits and sb.backend.image == "img:1" and sb.backend.runtime == "runsc"  # type: ignore[attr-defined]
        assert sb._pool_size == 2
    over = Sandbox(SandboxSettings(image="img:1", pool_size=2), pool_size=5)  # keywords win
    assert over.settings.pool_size == 5 and over.settings.image == "img:1"


def test_jobs_per_container_keyword_wins_over_settings_and_none_keeps_them() -> None:
    lanes = SandboxSettings(jobs_per_container=8)
    assert Sandbox(lanes).jobs_per_container == 8
    assert Sandbox(lanes, jobs_per_container=None).jobs_per_container == 8
    assert Sandbox(lanes, jobs_per_container=1).jobs_per_container == 1  # back to one job per container
    assert Sandbox(jobs_per_container=4).settings.jobs_per_container == 4
    with pytest.raises(SandboxConfigError, match="from 1 to 64"):
        Sandbox(jobs_per_container=65)


def test_a_backend_instance_is_used_as_given() -> None:
    backend = LocalUnsafeBackend()
    assert Sandbox(backend=backend).backend is backend
    assert make_backend(backend) is backend


# ------------------------------------------------------------------ registry
def test_registry_knows_the_builtins_and_lists_them_for_an_unknown_name() -> None:
    assert backend_names()[:2] == ("docker", UNSAFE_BACKEND_NAME)
    assert get_backend("docker").runtimes and not get_backend(UNSAFE_BACKEND_NAME).runtimes
    with pytest.raises(
        SandboxConfigError, match=f"unknown sandbox backend 'nope': use one of docker .*{UNSAFE_BACKEND_NAME}"
    ):
        make_backend("nope")
    assert make_backend("docker", "img:2", "runsc").runtime == "runsc"  # type: ignore[attr-defined]
    with pytest.raises(SandboxConfigError, match="already registered"):
        register_backend("docker", lambda s: LocalUnsafeBackend())


def test_a_registered_backend_runs_jobs(tmp_path: Path) -> None:
    seen: list[SandboxSettings] = []

    def factory(settings: SandboxSettings) -> LocalUnsafeBackend:
        seen.append(settings)
        return LocalUnsafeBackend()

    register_backend("test-mine", factory, summary="a test backend", replace=True)
    assert "test-mine (a test backend)" in str(
        pytest.raises(SandboxConfigError, SandboxSettings, backend="?").value
    )
    settings = SandboxSettings(backend="test-mine", limits=Limits(timeout=5))
    with Sandbox.from_settings(settings) as sb:
        result = sb.run(Job(source="print(6 * 7)"))
    assert result.status is Status.OK and result.stdout == "42\n"
    assert seen == [settings]


# ------------------------------------------------------------------ the option group
def _command(**options: Any) -> tuple[click.Command, list[SandboxSettings]]:
    got: list[SandboxSettings] = []

    @click.command()
    @click.option("--other", default="x")
    @sandbox_options(**options)
    def cmd(other: str, sandbox: SandboxSettings) -> None:
        got.append(sandbox)

    return cmd, got


def test_options_yield_one_settings_value() -> None:
    cmd, got = _command(limits=("timeout", "memory_mb"), defaults=SandboxSettings(pool_size=2))
    result = CliRunner().invoke(
        cmd,
        ["--runtime", "runsc", "--image", "img:1", "--pool-size", "4", "--timeout", "3", "--memory", "256"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert got == [
        SandboxSettings(runtime="runsc", image="img:1", pool_size=4, limits=Limits(timeout=3, memory_mb=256))
    ]
    got.clear()
    CliRunner().invoke(cmd, [], catch_exceptions=False)
    assert got == [SandboxSettings(pool_size=2)]  # what is left out keeps the command's defaults


def test_options_can_be_left_out_and_values_are_checked() -> None:
    cmd, got = _command(exclude=("pool_size", "backend"))
    help_text = CliRunner().invoke(cmd, ["--help"]).output
    assert "--runtime" in help_text and "--image" in help_text
    assert (
        "--pool-size" not in help_text
        and "--sandbox-backend" not in help_text
        and "--timeout" not in help_text
    )
    result = CliRunner().invoke(cmd, ["--runtime", "bad name"])
    assert isinstance(result.exception, SandboxConfigError)
    with pytest.raises(ValueError, match="unknown name"):
        sandbox_options(exclude=("pool",))


def test_sf_sandbox_run_maps_its_flags_onto_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sf_sandbox.gvisor
    from sf_sandbox.cli import main

    opened: list[SandboxSettings] = []

    class Stop(Exception):
        pass

    def from_settings(settings: SandboxSettings, **kwargs: Any) -> Sandbox:
        opened.append(settings)
        raise Stop

    monkeypatch.setattr(Sandbox, "from_settings", staticmethod(from_settings))
    monkeypatch.setattr(sf_sandbox.gvisor, "require_runtime", lambda runtime: None)
    prog = tmp_path / "p.py"
    prog.write_text("print(1)")
    with pytest.raises(Stop):
        main(["sandbox", "run", str(prog), "--runtime", "runsc", "--timeout", "4", "--pids", "64"])
    assert opened == [SandboxSettings(runtime="runsc", limits=Limits(timeout=4.0, pids=64))]
    opened.clear()
    with pytest.raises(Stop):
        main(["sandbox", "run", str(prog), "--unsafe-local-no-isolation"])
    assert opened[0].backend == UNSAFE_BACKEND_NAME


def test_a_settings_value_from_the_cli_runs_a_real_job(docker_ready: None, tmp_path: Path) -> None:
    from sf_sandbox.cli import main

    prog = tmp_path / "p.py"
    prog.write_text("import os\nprint(os.getuid() != 0)")
    code = main(["sandbox", "run", str(prog), "--image", "sf-sandbox:py3", "--timeout", "5", "--pids", "64"])
    assert code == 0
    with Sandbox.from_settings(SandboxSettings(runtime="runc", limits=Limits(timeout=5), pool_size=1)) as sb:
        result = sb.run(Job(source="print(6 * 7)"))
    assert result.status is Status.OK and result.stdout == "42\n"
    assert sb.backend.runtime == "runc"  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the Pool protocol
def test_sandbox_and_ray_pool_are_pools() -> None:
    sandbox = Sandbox(pool_size=1)
    ray_pool = RayPool(SandboxSettings(runtime="runsc", limits=Limits(timeout=4)), pool_size=None)
    assert isinstance(sandbox, Pool) and isinstance(ray_pool, Pool)
    assert (
        ray_pool.settings.runtime == "runsc"
        and ray_pool.limits == Limits(timeout=4)
        and ray_pool.pool_size is None
    )
    assert not isinstance(object(), Pool)
    sandbox.close()
    ray_pool.close()


def test_ray_pool_runs_docker_only() -> None:
    with pytest.raises(SandboxConfigError, match="RayPool runs the docker backend"):
        RayPool(SandboxSettings(backend=UNSAFE_BACKEND_NAME))


def test_preload_travels_in_the_settings() -> None:
    preload = Preload(modules=("json",))
    assert Sandbox(preload=preload).preload is preload
    assert Sandbox(SandboxSettings(preload=preload)).preload is preload
