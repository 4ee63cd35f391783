"""The `sandbox` config section: one SandboxSettings, the old flat fields still read, runtime reachable."""

from __future__ import annotations

import pytest

from sf_sandbox import Limits, Sandbox
from sf_sandbox.settings import SandboxSettings
from sf_train.cli import _parse_config
from sf_train.errors import TrainConfigError


def _parse(tmp_path, text, *flags):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    return _parse_config(["--config", str(cfg), "--use_cpu", "true", *flags])


def test_an_old_flat_config_file_still_loads(tmp_path):
    config = _parse(
        tmp_path,
        "dataset: gsm8k\nsandbox_image: my-image:1\nsandbox_pool_size: 3\n"
        "sandbox_backend: local-unsafe-no-isolation\n",
    )
    assert config.sandbox_settings == SandboxSettings(
        backend="local-unsafe-no-isolation", image="my-image:1", pool_size=3
    )
    assert (config.sandbox_image, config.sandbox_pool_size, config.sandbox_backend) == (
        "my-image:1",
        3,
        "local-unsafe-no-isolation",
    )
    assert config.sandbox is None  # nothing new is written to config.json for an old config


def test_defaults_are_the_loops_defaults(tmp_path):
    config = _parse(tmp_path, "dataset: gsm8k\n")
    assert config.sandbox_settings == SandboxSettings(image="sf-sandbox:py3", pool_size=4)


def test_the_section_reaches_the_backend(tmp_path):
    config = _parse(
        tmp_path,
        "dataset: gsm8k\nsandbox_pool_size: 2\nsandbox:\n  runtime: runsc\n  limits: {memory_mb: 1024}\n",
    )
    settings = config.sandbox_settings
    assert (
        settings.runtime == "runsc" and settings.pool_size == 2 and settings.limits == Limits(memory_mb=1024)
    )
    assert Sandbox.from_settings(settings).backend.runtime == "runsc"
    assert config.sandbox["runtime"] == "runsc"  # config.json records the section, normalised
    # the flat fields follow the section, and the config rebuilds from its own dict
    config = _parse(tmp_path, "dataset: gsm8k\nsandbox: {image: other:2, pool_size: 6}\n")
    assert (config.sandbox_image, config.sandbox_pool_size) == ("other:2", 6)
    import dataclasses

    from sf_train.config import ScoreDPOConfig

    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}
    assert ScoreDPOConfig(**fields).sandbox_settings == config.sandbox_settings  # as the Ray worker does


def test_the_flag_form(tmp_path):
    config = _parse(tmp_path, "dataset: gsm8k\n", "--sandbox", "runtime=runsc,limits.timeout=5")
    assert config.sandbox_settings.runtime == "runsc" and config.sandbox_settings.limits.timeout == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sandbox_image: a:1\nsandbox: {image: b:2}\n", "image is 'b:2' but sandbox_image is 'a:1'"),
        ("sandbox: {runtim: runsc}\n", "config field `sandbox`: unknown sandbox setting 'runtim'"),
        ("sandbox_backend: podman\n", "config field `sandbox`: unknown sandbox backend 'podman'"),
        ("sandbox: {limits: {timeout: 0}}\n", "config field `sandbox`: invalid limits: timeout=0"),
    ],
)
def test_bad_sections_are_config_errors(tmp_path, text, message):
    with pytest.raises(TrainConfigError, match=message):
        _parse(tmp_path, "dataset: gsm8k\n" + text)


def test_the_ray_pool_gets_the_settings_with_ray_pool_size(tmp_path):
    import dataclasses

    config = _parse(tmp_path, "dataset: gsm8k\nsandbox: {runtime: runsc}\n")
    from sf_sandbox.ray_pool import RayPool

    pool = RayPool(
        dataclasses.replace(config.sandbox_settings, backend="docker", pool_size=config.ray_pool_size)
    )
    assert pool.settings.runtime == "runsc" and pool.pool_size is None
