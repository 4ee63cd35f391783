"""The multi-process path for real: `accelerate launch` with 2 CPU processes (gloo) against 1 process.

One module fixture starts two real launches at once (they are import-bound, so running them side
by side keeps the wall time near the slower one): Score-DPO training with 1 process and with 2
processes at the same global batch and seed; the 2-process run then samples k completions per
prompt with its trained adapter, data-parallel. The single-process reference for that sampling is
``sf_train.dp_generate``'s command run in this process with the saved adapter.
Everything is offline: a tiny random Llama and a BPE tokenizer built here, ``HF_HUB_OFFLINE=1``
and proxies that point at a closed port, so any network attempt fails the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sf_train.dp_generate import chunk_indices, generate_data_parallel
from sf_train.errors import TrainConfigError
from sf_train.launch import derive_accumulation, main, read_pairs

PACKAGE = Path(__file__).resolve().parents[1]
CPU_2PROC = PACKAGE / "configs" / "accelerate" / "cpu_2proc.yaml"
STEPS = 6
GLOBAL_BATCH = 4
LAUNCH_TIMEOUT_S = 300
OPS = ["review", "sc_ensemble", "programmer", "answer_generate", "code_generate", "test", "custom"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(home),
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
        ACCELERATE_USE_CPU="1",
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        TQDM_DISABLE="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        PYTHONWARNINGS="ignore",
    )
    return env


def _accelerate(*args: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", *args]


def _pairs(n: int) -> list[dict]:
    import random

    rng = random.Random(0)
    rows = []
    for i in range(n):
        sw, sl = sorted([rng.random(), rng.random()], reverse=True)
        rows.append(
            dict(
                prompt=f"Output a workflow graph based on this template. Problem: add {i} and {i + 3}\n",
                chosen="<graph> " + " ".join(rng.choices(OPS, k=rng.randint(2, 6))) + " </graph>",
                rejected="<graph> " + " ".join(rng.choices(OPS, k=rng.randint(2, 6))) + " </graph>",
                chosen_score=sw,
                rejected_score=sl,
            )
        )
    return rows


@pytest.fixture(scope="module")
def launched(tmp_path_factory, tokenizer):
    """Build the model and data, run the two launches concurrently, return their directory."""
    from sf_train.testing import build_tiny_llama

    root = tmp_path_factory.mktemp("multiprocess")
    model_dir = root / "model"
    build_tiny_llama(tokenizer, seed=0).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _pairs(GLOBAL_BATCH * STEPS)))
    (root / "prompts.jsonl").write_text(
        "".join(json.dumps({"prompt": f"Output a workflow graph. Problem {i}:\n"}) + "\n" for i in range(5))
    )
    # a learning rate that moves the tiny model, so a wrong batch or reduction shows in the curve;
    # sampling: k = 3, chunks of generation_batch_size // k = 2 prompts (5 prompts: ranks get 2 and 1)
    (root / "train.yaml").write_text(
        "learning_rate: 0.01\nbeta: 0.5\ndtype: float32\nlora_r: 4\n"
        "lora_alpha: 8\nlora_dropout: 0.0\ntemperature: 1.0\ntop_p: 0.95\n"
        "max_new_tokens: 10\nstop: ''\ngeneration_batch_size: 6\n"
    )
    train = [
        "-m",
        "sf_train.launch",
        "--pairs",
        str(root / "pairs.jsonl"),
        "--model",
        str(model_dir),
        "--global-batch",
        str(GLOBAL_BATCH),
        "--per-device-batch",
        "2",
        "--max-steps",
        str(STEPS),
        "--seed",
        "3",
        "--no-gradient-checkpointing",
        "--config",
        str(root / "train.yaml"),
    ]
    commands = {
        "train1": _accelerate("--num_processes", "1", *train, "--output", str(root / "train1")),
        "train2": _accelerate(
            "--config_file",
            str(CPU_2PROC),
            "--main_process_port",
            str(_free_port()),
            *train,
            "--output",
            str(root / "train2"),
            "--sample-prompts",
            str(root / "prompts.jsonl"),
            "--sample-k",
            "3",
        ),
    }
    env = _env(root / "hf-home")
    procs = {}
    try:
        for name, cmd in commands.items():
            log = (root / f"{name}.log").open("w")
            procs[name] = subprocess.Popen(
                cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        for name, proc in procs.items():
            try:
                rc = proc.wait(timeout=LAUNCH_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                rc = None
            if rc != 0:
                tail = (root / f"{name}.log").read_text(errors="replace")[-4000:]
                pytest.fail(f"launch {name} {'timed out' if rc is None else f'exited {rc}'}:\n{tail}")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return root


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_process_loss_curve_matches_one_process(launched):
    one = json.loads((launched / "train1" / "run.json").read_text())
    two = json.loads((launched / "train2" / "run.json").read_text())
    assert (one["processes"], one["grad_accum"], one["global_batch"]) == (1, 2, GLOBAL_BATCH)
    assert (two["processes"], two["grad_accum"], two["global_batch"]) == (2, 1, GLOBAL_BATCH)
    assert two["distributed_type"].endswith("MULTI_CPU") and two["backend"] == "gloo"

    curve1, curve2 = _log(launched / "train1"), _log(launched / "train2")
    assert [r["step"] for r in curve1] == [r["step"] for r in curve2] == list(range(1, STEPS + 1))
    losses1, losses2 = [r["loss"] for r in curve1], [r["loss"] for r in curve2]
    assert max(losses1) - min(losses1) > 1e-3, "the loss must move for the comparison to mean anything"
    assert losses2 == pytest.approx(losses1, rel=0, abs=1e-5)
    assert [r["grad_norm"] for r in curve2] == pytest.approx([r["grad_norm"] for r in curve1], rel=1e-4)
    for key in ("scores/chosen", "scores/rejected"):  # the pairs of every process are logged
        assert [r[key] for r in curve2] == pytest.approx([r[key] for r in curve1], abs=1e-6), key


@pytest.mark.slow
def test_adapter_saved_by_two_processes_loads_and_generates(launched, tokenizer):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from sf_train.generate.base import GenerationParams
    from sf_train.generate.hf import HFWorkflowGenerator

    two = load_file(launched / "train2" / "adapter_model.safetensors")
    one = load_file(launched / "train1" / "adapter_model.safetensors")
    assert sorted(two) == sorted(one) and any("lora_B" in k for k in two)
    assert all(two[k].abs().max() > 0 for k in two if "lora_B" in k), "LoRA B starts at 0: it must train"
    for key in two:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)

    base = AutoModelForCausalLM.from_pretrained(launched / "model", local_files_only=True)
    model = PeftModel.from_pretrained(base, str(launched / "train2"))
    params = GenerationParams(max_new_tokens=8, temperature=1.0, seed=0, stop=None, batch_size=4)
    generator = HFWorkflowGenerator(model, tokenizer, params)
    groups = generator.generate_texts(["Output a workflow graph. Problem 1:\n"], 2)
    assert len(groups) == 1 and len(groups[0]) == 2 and generator.new_tokens > 0


@pytest.mark.slow
def test_data_parallel_sampling_equals_single_process(launched):
    import torch
    from accelerate.state import PartialState

    from sf_train import dp_generate

    rows = [json.loads(line) for line in (launched / "train2" / "samples.jsonl").read_text().splitlines()]
    prompts = [json.loads(line)["prompt"] for line in (launched / "prompts.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(prompts)))
    assert [r["prompt"] for r in rows] == prompts
    sampling = json.loads((launched / "train2" / "run.json").read_text())["sampling"]
    assert sampling["processes"] == 2 and sampling["new_tokens"] > 0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the launched processes (OMP_NUM_THREADS=1): same float reductions
    try:
        code = dp_generate.main(
            [
                "--model",
                str(launched / "model"),
                "--adapter",
                str(launched / "train2"),
                "--prompts",
                str(launched / "prompts.jsonl"),
                "--output",
                str(launched / "single.jsonl"),
                "--k",
                "3",
                "--chunk-prompts",
                "2",
                "--seed",
                "3",
                "--max-new-tokens",
                "10",
                "--temperature",
                "1.0",
                "--top-p",
                "0.95",
                "--stop",
                "",
                "--dtype",
                "float32",
            ]
        )
    finally:
        torch.set_num_threads(threads)
        PartialState._reset_state()
    assert code == 0
    single = [json.loads(line) for line in (launched / "single.jsonl").read_text().splitlines()]
    assert single == rows
    completions = [c for r in rows for c in r["completions"]]
    assert len(completions) == 15 and len(set(completions)) > 3, "samples must differ, or order is untested"


# ---- the pieces, in-process (fast) -------------------------------------------------------------


def test_chunks_go_round_robin_and_cover_every_prompt():
    assert chunk_indices(5, 2, 0, 2) == [0, 2] and chunk_indices(5, 2, 1, 2) == [1]
    assert chunk_indices(5, 2, 0, 1) == [0, 1, 2]
    assert chunk_indices(1, 8, 1, 2) == []
    with pytest.raises(ValueError):
        chunk_indices(5, 2, 2, 2)


class _EchoGenerator:
    """Records the seed of each call; completions name the prompt, the seed and the sample."""

    def __init__(self):
        from sf_train.generate.base import GenerationParams

        self.params = GenerationParams(seed=None)
        self.seeds: list[int] = []

    def generate_texts(self, prompts, k):
        self.seeds.append(self.params.seed)
        return [[f"{p}|{self.params.seed}|{i}" for i in range(k)] for p in prompts]


def test_sharded_results_merge_in_task_order_with_per_chunk_seeds():
    import threading

    prompts = [f"p{i}" for i in range(5)]
    single = generate_data_parallel(_EchoGenerator(), prompts, 2, seed=100, chunk_prompts=2)
    assert single == [[f"p{i}|{100 + i // 2}|{s}" for s in range(2)] for i in range(5)]

    # two ranks in threads; the gather is an all-gather over a barrier, like torch.distributed's
    gens, parts, outs = [_EchoGenerator(), _EchoGenerator()], [None, None], [None, None]
    barrier = threading.Barrier(2)

    def rank_main(rank):
        def gather(obj):
            parts[rank] = obj
            barrier.wait()
            return list(parts)

        outs[rank] = generate_data_parallel(
            gens[rank], prompts, 2, seed=100, chunk_prompts=2, rank=rank, world=2, gather=gather
        )

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in (1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outs == [single, single]
    assert gens[0].seeds == [100, 102] and gens[1].seeds == [101]
    assert gens[0].params.seed is None  # restored


def test_global_batch_sets_accumulation_or_says_why_not():
    assert derive_accumulation(8, 2, 2) == 2 and derive_accumulation(8, 2, 1) == 4
    with pytest.raises(TrainConfigError, match="multiple of per-device batch"):
        derive_accumulation(6, 2, 2)


def test_bad_pairs_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(
        json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "chosen_score": 1.5, "rejected_score": 0})
        + "\n"
    )
    with pytest.raises(TrainConfigError, match=":1: `chosen_score` must be a number in"):
        read_pairs(bad)
    code = main(["--pairs", str(bad), "--model", str(tmp_path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "chosen_score" in err
    assert (
        main(
            [
                "--pairs",
                str(tmp_path / "missing.jsonl"),
                "--model",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
