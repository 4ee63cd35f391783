"""ScoreDPOConfig defaults mirror the official run; bad values are one-line config errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sf_train import ScoreDPOConfig, TrainConfigError


def make(**kw):
    return ScoreDPOConfig(output_dir="unused", bf16=False, use_cpu=True, **kw)


def test_defaults_mirror_the_official_run():
    c = make()
    assert (c.lora_r, c.lora_alpha, c.lora_dropout, c.lora_target_modules) == (
        8,
        16,
        0.01,
        ["q_proj", "v_proj"],
    )
    assert (c.learning_rate, c.beta, c.num_train_epochs, c.per_device_train_batch_size) == (1e-6, 0.1, 1.0, 1)
    assert (c.k, c.iterations, c.runs_per_workflow, c.num_pairs) == (8, 3, 3, 2000)
    assert (c.temperature, c.top_p, c.max_new_tokens, c.stop) == (0.2, 0.95, 1000, "</graph>")
    assert (c.objective, c.weight_fn, c.gap_fn, c.reference) == ("score-dpo", "identity", "cube", "base")
    assert c.loss_type == ["sigmoid"] and c.max_length is None
    assert c.model_name_or_path == "meta-llama/Llama-3.1-8B-Instruct"
    assert (c.executor_model, c.executor_temperature) == ("gpt-4o-mini", 0.0)


def test_every_new_field_documents_itself():
    from dataclasses import fields

    from trl import DPOConfig

    inherited = {f.name for f in fields(DPOConfig)}
    new = [f for f in fields(ScoreDPOConfig) if f.name not in inherited]
    assert len(new) > 30
    assert all(f.metadata.get("help") for f in fields(ScoreDPOConfig))


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"objective": "rlhf"}, "objective"),
        ({"k": 1}, "`k`"),
        ({"weight_fn": "cubic"}, "weight_fn"),
        ({"gap_fn": "nope"}, "gap_fn"),
        ({"generation_backend": "tgi"}, "generation_backend"),
        ({"top_p": 0.0}, "top_p"),
        ({"iterations": 0}, "iterations"),
    ],
)
def test_bad_values_raise_config_errors(kw, match):
    with pytest.raises(TrainConfigError, match=match):
        make(**kw)


def test_import_sf_train_does_not_import_torch():
    code = "import sys, sf_train, sf_train.pairs, sf_train.errors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_require_names_the_extra():
    from sf_train._imports import is_available, require
    from sf_train.errors import MissingDependencyError

    assert is_available("json") and not is_available("no_such_module_xyz")
    with pytest.raises(MissingDependencyError, match=r'pip install "sf-train\[vllm\]"'):
        require("no_such_module_xyz", extra="vllm")
