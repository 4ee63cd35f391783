"""The run directory's ``config.json``: what a resumed run must share with the run it continues."""

from __future__ import annotations

import json
from pathlib import Path

from sf_train.config import ScoreDPOConfig
from sf_train.errors import TrainConfigError
from sf_train.profiles import RunProfile
from sf_train.run_files import write_json
from sf_train.stages.context import Reporter

__all__ = ["KEY_FIELDS", "check_run_config"]

KEY_FIELDS = (
    "model_name_or_path",
    "dataset",
    "train_split",
    "k",
    "runs_per_workflow",
    "objective",
    "weight_fn",
    "gap_fn",
    "num_pairs",
    "lora_r",
    "lora_alpha",
    "lora_target_modules",
    "seed",
    "pair_seed",
    "learning_rate",
    "beta",
    "temperature",
    "top_p",
    "max_new_tokens",
    "limit",
    "profile",
    "generator_prompt",
    "operator_prompts",
    "validity_filters",
    "answer_extraction",
    "train_bos_token",
)
"""Fields a resumed run must share with the run it continues."""


def check_run_config(
    config: ScoreDPOConfig, out: Path, profile: RunProfile, *, write: bool, report: Reporter
) -> None:
    """Refuse an ``out`` that holds a run with other key fields.

    With ``write`` (the main process), report the profile's defaults and (re)write ``config.json``.

    Raises:
        TrainConfigError: ``out/config.json`` has a key field with another value.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    current = {k: getattr(config, k) for k in KEY_FIELDS}
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8")).get("key_fields", {})
        changed = {k: (saved.get(k), v) for k, v in current.items() if k in saved and saved[k] != v}
        if changed:
            what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise TrainConfigError(
                f"{out} holds a run with different settings ({what}); use another output_dir "
                "or the same settings to resume it"
            )
    if write:
        described = profile.describe()
        taken = ", ".join(f"{k}={v!r}" for k, v in described["from_profile"].items())
        report(f"profile {described['name']}: {taken or 'no defaults taken'} (config.json lists them)")
        write_json(
            path,
            {
                "key_fields": current,
                "profile": profile.describe(),
                "config": json.loads(config.to_json_string()),
            },
        )
