"""The executor LLM behind the operators, built from the config's ``executor_*`` fields.

Two builders that must agree: :func:`default_executor` for this machine and
:func:`node_executor_config` for the Ray nodes (each builds its own executor from it, the key from
its own environment).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sf_train.config import ScoreDPOConfig
from sf_train.errors import TrainConfigError

__all__ = ["default_executor", "node_executor_config"]


def default_executor(config: ScoreDPOConfig, out: Path) -> Any:
    """An ``sf_workflows.Executor`` from the ``executor_*`` fields (cache: ``<out>/executor-cache``).

    Raises:
        TrainConfigError: no endpoint (no key in ``executor_api_key_env`` and no base URL), or a
            bad executor setting.
    """
    from sf_workflows import Executor, ExecutorConfig
    from sf_workflows.errors import WorkflowConfigError

    try:
        return Executor(
            ExecutorConfig(
                model=config.executor_model,
                base_url=config.executor_base_url,
                api_key=os.environ.get(config.executor_api_key_env) or None,
                temperature=config.executor_temperature,
                concurrency=config.executor_concurrency,
                cache_dir=config.executor_cache_dir or str(out / "executor-cache"),
            )
        )
    except WorkflowConfigError as exc:
        message = str(exc)
        if "no executor endpoint" in message:
            message = (
                f"no executor endpoint: set ${config.executor_api_key_env} for the OpenAI API, or "
                "executor_base_url (--executor_base_url) for a local OpenAI-compatible server "
                "(vLLM: http://localhost:8000/v1)"
            )
        raise TrainConfigError(message) from exc


def node_executor_config(config: ScoreDPOConfig, out: Path) -> Any:
    """The ``ExecutorConfig`` each Ray node builds its executor from.

    It holds the fields of :func:`default_executor` without the key (read on the node) and with an
    absolute cache path.
    """
    from sf_workflows import ExecutorConfig
    from sf_workflows.executor.client import KEY_ENVS

    return ExecutorConfig(
        model=config.executor_model,
        base_url=config.executor_base_url,
        api_key=None,  # each node reads it from executor_api_key_env in its own environment
        key_envs=tuple(dict.fromkeys((config.executor_api_key_env, *KEY_ENVS))),  # as default_executor
        temperature=config.executor_temperature,
        concurrency=config.executor_concurrency,
        cache_dir=str(Path(config.executor_cache_dir or out / "executor-cache").resolve()),
    )
