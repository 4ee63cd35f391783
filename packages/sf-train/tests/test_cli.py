"""`sf train …`: errors are one line with the documented exit code; run, report end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sf_train.cli import main


def test_help_does_not_import_torch():
    code = (
        "import sys; from sf_train.cli import main; rc = main(['--help']); print(rc, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("0 False")
    assert "sf train demo" in out.stdout


def test_config_errors_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("k: 4\nobjectiv: dpo\n")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: unknown field(s) in " + str(bad) + ": objectiv (did you mean objective?)"
    bad.write_text("k: 1\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "config field `k`" in capsys.readouterr().err
    assert main(["demo", "--iterations", "0"]) == 2
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished iteration" in capsys.readouterr().err


def test_missing_weights_is_a_config_error(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"model_name_or_path: {tmp_path / 'nowhere'}\ndataset: gsm8k\nlimit: 1\n"
        f"output_dir: {tmp_path / 'out'}\nexecutor_base_url: http://127.0.0.1:9/v1\n"
    )
    assert main(["run", "--config", str(cfg)]) == 2
    assert "never downloads" in capsys.readouterr().err


@pytest.mark.docker
def test_run_and_report_end_to_end(tmp_path, capsys, require_docker):
    """`sf train run --config` on GSM8K with a tiny random model and a scripted OpenAI-compatible server."""
    from sf_bench.datasets import load
    from sf_train.testing import save_tiny_model
    from sf_workflows import build_generator_prompt
    from sf_workflows.testing import ScriptedServer

    problems = load("gsm8k", "validate", limit=2)
    model_dir = save_tiny_model(
        tmp_path / "model", [build_generator_prompt(p) for p in problems] * 3, max_position_embeddings=4096
    )
    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    with ScriptedServer("42") as server:
        cfg.write_text(
            "\n".join(
                [
                    f"model_name_or_path: {model_dir}",
                    "dtype: float32",
                    "use_cpu: true",
                    "dataset: gsm8k",
                    "limit: 2",
                    "k: 2",
                    "iterations: 1",
                    "runs_per_workflow: 1",
                    "num_pairs: 4",
                    "max_new_tokens: 8",
                    "eval_k: 1",
                    "sandbox_pool_size: 1",
                    f"output_dir: {out}",
                    "executor_model: scripted",
                    f"executor_base_url: {server.base_url}",
                    "gradient_checkpointing: false",
                    "report_to: none",
                ]
            )
            + "\n"
        )
        assert main(["run", "--config", str(cfg), "--temperature", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "evaluation tasks, final adapter" in printed and "optimisation cost" in printed
    metrics = json.loads((out / "iter-0" / "metrics.json").read_text())
    assert metrics["samples"] == 4 and metrics["tasks"] == 2
    scores = [json.loads(line) for line in (out / "iter-0" / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 4 and all(
        s["score"] == 0.0 and s["failure"] for s in scores
    )  # random model: invalid
    saved = json.loads((out / "config.json").read_text())
    assert saved["key_fields"]["temperature"] == 1.0  # the flag overrode the file
    assert (out / "iter-0" / "adapter" / "adapter_config.json").exists()

    assert main(["report", str(out)]) == 0
    assert (out / "report.png").exists()
    assert "evaluation tasks, final adapter" in capsys.readouterr().out


def test_missing_executor_key_fails_before_any_work(tmp_path, capsys, monkeypatch):
    for name in ("OPENAI_API_KEY", "SF_EXECUTOR_API_KEY", "OPENAI_BASE_URL", "SF_EXECUTOR_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"dataset: gsm8k\nlimit: 1\noutput_dir: {tmp_path / 'out'}\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "executor_base_url" in capsys.readouterr().err
    assert not (tmp_path / "out" / "iter-0").exists()
