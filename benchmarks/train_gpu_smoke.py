"""sf-train's GPU path end to end on one GPU: generation, Score-DPO training, adapter hot-swap.

A Llama-3.1-8B-shaped model (random init, bf16; weights cannot be downloaded and the path does
not depend on them) with the official LoRA (r = 8, alpha = 16, q_proj/v_proj), a byte-level BPE
tokenizer trained offline on real sf-workflows generator prompts, and the official settings:

1. ``HFWorkflowGenerator`` samples k workflows for each GSM8K validation task from the real
   generator prompt (temperature 0.2, top-p 0.95, stop at ``</graph>``);
2. the completions get scores (random here: no sandbox on the GPU machine; the CPU tests run
   the sandbox and the scorers) and become pairs sampled ∝ (s_w − s_l)^3;
3. ``train_objective`` trains Score-DPO with TRL's trainer (batch 1, as the official run);
4. the adapter is saved and the generator samples again with it.

Prints and (``--json``) writes tokens/s, s/step, peak GPU memory and the loss curve.

    python benchmarks/train_gpu_smoke.py [--tasks 4] [--k 8] [--new-tokens 256] [--pairs 48] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _reset(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak(torch) -> float | None:
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument(
        "--tiny", action="store_true", help="CPU dry run with a small model of the same shape family"
    )
    parser.add_argument("--out", default="/tmp/sf-train-gpu-smoke")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import transformers
    import trl
    from transformers import AutoModelForCausalLM, LlamaConfig

    from sf_bench.datasets import load
    from sf_train import ScoreDPOConfig, ScoredSample, build_pairs, sample_pairs
    from sf_train.generate.base import GenerationParams
    from sf_train.generate.hf import HFWorkflowGenerator
    from sf_train.modeling import attach_lora, save_adapter
    from sf_train.objectives import train_objective
    from sf_train.testing import build_tokenizer
    from sf_workflows import build_generator_prompt

    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert device == "cuda" or args.tiny, "needs a GPU (or --tiny for a CPU dry run)"
    out = Path(args.out)
    report: dict = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }
    t0 = time.time()
    problems = load("gsm8k", "validate", limit=max(args.tasks, 64))
    prompts = [build_generator_prompt(p) for p in problems]
    tokenizer = build_tokenizer(prompts, vocab_size=4000)
    problems = problems[: args.tasks]
    width = (256, 512, 4096) if args.tiny else (4096, 14336, 128256)
    config = LlamaConfig(  # Llama-3.1-8B's shape
        vocab_size=width[2],
        hidden_size=width[0],
        intermediate_size=width[1],
        num_hidden_layers=args.layers,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    report["parameters_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 2)
    report["prompt_tokens_mean"] = round(
        sum(len(tokenizer(build_generator_prompt(p))["input_ids"]) for p in problems) / len(problems)
    )
    cfg = ScoreDPOConfig(
        output_dir=str(out),
        model_name_or_path="random-8b",
        k=args.k,
        num_pairs=args.pairs,
        max_new_tokens=args.new_tokens,
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        save_strategy="no",
        use_cpu=device == "cpu",
    )
    model = attach_lora(model, cfg)
    report["setup_s"] = round(time.time() - t0, 1)
    print(
        f"model {report['parameters_b']} B parameters on {report['device']}, "
        f"prompts of {report['prompt_tokens_mean']} tokens; set-up {report['setup_s']} s",
        flush=True,
    )

    def generate(tag: str) -> list[list[str]]:
        gen = HFWorkflowGenerator(model, tokenizer, GenerationParams.from_config(cfg, seed=1))
        _reset(torch)
        texts = gen.generate_texts([build_generator_prompt(p) for p in problems], args.k)
        report[f"generate_{tag}"] = {
            "sequences": len(problems) * args.k,
            "new_tokens": gen.new_tokens,
            "seconds": round(gen.seconds, 2),
            "tokens_per_s": round(gen.new_tokens / gen.seconds, 1),
            "peak_gib": _peak(torch),
        }
        print(f"generate ({tag}): {report[f'generate_{tag}']}", flush=True)
        return texts

    texts = generate("base")
    rng = random.Random(0)
    samples = [
        ScoredSample(
            task_id=p.id,
            index=j,
            prompt=build_generator_prompt(p),
            completion=t,
            score=rng.choice([0.0, 1 / 3, 2 / 3, 1.0]),
        )
        for p, group in zip(problems, texts, strict=True)
        for j, t in enumerate(group)
    ]
    pairs = sample_pairs(build_pairs(samples), args.pairs, seed=0)
    _reset(torch)
    result = train_objective(model, tokenizer, cfg, samples=samples, pairs=pairs, output_dir=out / "trainer")
    assert result is not None
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    report["train"] = {
        "objective": result.objective,
        "pairs": len(pairs),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "s_per_step": round(result.seconds / max(result.steps, 1), 3),
        "peak_gib": _peak(torch),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "bf16": cfg.bf16,
    }
    print(f"train: {report['train']}", flush=True)
    adapter = save_adapter(model, out / "adapter")
    report["adapter_files"] = sorted(p.name for p in adapter.iterdir())
    generate("adapter")
    report["total_s"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
