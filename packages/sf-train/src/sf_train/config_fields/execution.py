"""The execution section of :class:`~sf_train.config.ScoreDPOConfig`: the executor LLM and the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sf_train.config_fields import FROM_PROFILE
from sf_train.config_fields import help_text as _help
from sf_train.profiles import profile_help

__all__ = ["ExecutionFields"]


@dataclass
class ExecutionFields:
    """The executor behind the operators and the sandbox the workflows run in."""

    executor_model: str = field(
        default="gpt-4o-mini", metadata=_help("Executor LLM behind the operators. [official: gpt-4o-mini]")
    )
    executor_base_url: str | None = field(
        default=None, metadata=_help("OpenAI-compatible endpoint; None = the client's default.")
    )
    executor_api_key_env: str = field(
        default="OPENAI_API_KEY", metadata=_help("Environment variable holding the executor API key.")
    )
    executor_temperature: float = field(
        default=0.0, metadata=_help("Executor temperature. [official: 0.0, config1.yaml]")
    )
    executor_concurrency: int = field(default=16, metadata=_help("Concurrent executor requests."))
    executor_cache_dir: str | None = field(
        default=None, metadata=_help("On-disk executor response cache; None = <output_dir>/executor-cache.")
    )
    sandbox_image: str = field(default="sf-sandbox:py3", metadata=_help("Sandbox image that runs workflows."))
    sandbox_pool_size: int = field(default=4, metadata=_help("Warm sandbox containers."))
    sandbox_backend: str = field(
        default="docker",
        metadata={
            "help": "Where workflows run: 'docker' (the isolated sandbox) or 'local-unsafe-no-isolation' "
            "(plain host subprocesses, no isolation at all: only for generated code you trust, on a "
            "machine without Docker).",
            "choices": ["docker", "local-unsafe-no-isolation"],
        },
    )
    sandbox: dict[str, Any] | str | None = field(
        default=None,
        metadata=_help(
            "The sandbox section (sf_sandbox.SandboxSettings): backend, image, runtime (runsc: "
            "gVisor), pool_size, limits (a mapping of sf_sandbox.Limits fields). YAML: `sandbox: "
            "{runtime: runsc, limits: {memory_mb: 1024}}`; flag: `--sandbox runtime=runsc,"
            "limits.memory_mb=1024` (or a JSON object). sandbox_image, sandbox_pool_size and "
            "sandbox_backend are the same settings (a value given both ways must agree). "
            "pool_size is this machine's pool; ray_pool_size sizes the Ray nodes' pools."
        ),
    )
    workflow_timeout: float = field(
        default=FROM_PROFILE,
        metadata=_help(
            "Seconds per workflow run (ScoreFlow conditions.py TIME_LIMIT: 120; 240 for code). "
            + profile_help("workflow_timeout")
        ),
    )
    max_infra_failure_share: float = field(
        default=0.05,
        metadata=_help(
            "Largest share of an iteration's workflows that our failures (the executor endpoint or the "
            "sandbox, after retries) may leave unscored; those are left out of the pairs. Past it the "
            "iteration stops with an error, and rerunning redoes only them. Ours."
        ),
    )
