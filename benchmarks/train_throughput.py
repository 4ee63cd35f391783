"""sf-train on one GPU: Score-DPO training and k = 8 workflow sampling, against the stock paths.

    python benchmarks/train_throughput.py [--json FILE] [--tiny] [--steps 6] [--micro 1,2]

One run, one model (a Llama-3.1-8B-shaped ``LlamaForCausalLM``, random init, bf16: weights
cannot be downloaded and speed does not depend on them), LoRA r = 16 on every linear projection
(``all-linear``: q, k, v, o, gate, up, down), random-token pairs of a 512-token prompt and two
384-token completions, 4 pairs per optimiser step.

Training (``train`` rows):

* ``trl-dpo``: TRL's stock ``DPOTrainer`` with gradient checkpointing (its default), the
  reference forward (adapter disabled) every step. Issue baseline on the H100: 1.33 s/step,
  about 5,400 tokens/s, 19.5 GiB.
* ``sf-fast-score-dpo mb=N``: :class:`sf_train.fast.FastScoreDPOTrainer`, Score-DPO on the same
  pairs (scores drawn at random), N pairs per forward and 4/N accumulation steps, no gradient
  checkpointing, varlen flash attention over padding-free packed pairs, and the MLP's SwiGLU
  output recomputed in backward. Its reference pass runs once per iteration over every pair
  (thousands in a ScoreFlow iteration); its cost is **added** to each step at its warm rate
  (``ref_s_per_step`` = seconds of a second pass over the pairs × 4 / pairs; the first pass,
  which also compiles kernels and runs their self-tests, is ``ref_cold_s``), so
  ``effective_step_s`` and ``tokens_per_s`` are fair against the stock trainer.

Tokens per step are counted the same way for both: ``Σ len(prompt+chosen) + len(prompt+rejected)``
= 4 × 1,792. Peak memory is ``torch.cuda.max_memory_allocated`` from construction to the end of
training (weights included). ``loss_check`` is the loss of the first 4 pairs at s_w = 1, s_l = 0
with the same non-zero LoRA weights in both trainers; in bf16 the two differ by a few 1e-2 on a
random 8B model (sums of 384 bf16 log-probs near log(128k), different kernels), so equality is
checked in float32 first (``fp32_check``: a 2-layer model of the same widths, loss and every LoRA
gradient of both trainers, and greedy tokens of ``generate`` vs the fast decoder).

Generation (``generation`` rows): 8 prompts of 512 random tokens, k = 8 samples each (64 rows),
temperature 0.2, top-p 0.95, stop string ``</graph>`` (never produced by random weights, so every
row runs to the limit). ``transformers-generate`` is sf-train's ``HFWorkflowGenerator``
(``model.generate``) with ``--hf-new-tokens`` new tokens (it is slow; its speed falls further with
length, so this flatters it); ``sf-fast-generate`` is ``FastHFWorkflowGenerator`` with
``--gen-new-tokens`` (1,000: 1.5k context). Tokens/s = completion tokens / wall seconds of the
whole call (prefill, CUDA-graph capture and stop checks included). ``greedy_check`` compares the
fast path's greedy tokens with ``generate``'s (bf16: they may part after a near-tie).

``--tiny`` runs the same code on a tiny model on CPU in a minute (what CI-less debugging uses).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import traceback
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402

from sf_train.synthetic import FIRST_WORD  # noqa: E402  (ids below are special)

GIB = 1024**3


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU (debugging)")
    p.add_argument("--steps", type=int, default=6, help="timed optimiser steps per trainer")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    p.add_argument("--pairs-per-step", type=int, default=4)
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--completion-len", type=int, default=384)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--micro", default="4,2", help="pairs per forward of the fast trainer, comma-separated")
    p.add_argument("--ref-batch", type=int, default=16, help="pairs per forward of the reference pass")
    p.add_argument("--gen-prompts", type=int, default=8)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--gen-new-tokens", type=int, default=1000)
    p.add_argument("--hf-new-tokens", type=int, default=128)
    p.add_argument("--gen-batch", type=int, default=64)
    p.add_argument(
        "--extra-gen",
        default="previous,single,merge,twolaunch,unrolled,gemm-residual,splits,blas,unmerged,sort,greedy,b128",
        help="extra fast rows (levers off): previous (the decoder before these levers), single (top-p cut by "
        "one program per row), merge (attention merge as its own launch), gemm-residual (residual adds in "
        "the o/down GEMMs, not the norms), splits (the generated cache in splits of 256, one launch), "
        "unmerged (adapter applied by its modules), "
        "blas (torch's default cuBLAS back end in the captured step, not cuBLASLt), "
        "sort (top-p by a vocabulary sort), greedy, torch "
        "(attention), twolaunch (attention in two launches per layer: prefix splits, then the generated "
        "split merged with them), unrolled (the one-launch merge unrolled over the splits), "
        "b128 (batch 128, with the previous/unmerged/sort/greedy/splits/"
        "twolaunch/unrolled rows too)",
    )
    p.add_argument(
        "--attention-options",
        default="",
        help="JSON keyword arguments for DecodeAttentionScratch in the default fast rows and the step "
        "profile (e.g. what benchmarks/decode_kernel_sweep.py --best wrote); empty: the decoder's defaults",
    )
    p.add_argument("--step-profile", default="64,128", help="batches whose single decode step is profiled")
    p.add_argument("--profile-new-tokens", type=int, default=256, help="decode profile length")
    p.add_argument(
        "--gen-lora",
        default="all-linear",
        choices=["none", "paper", "all-linear"],
        help="adapter on the generation model (the loop samples with the current one)",
    )
    p.add_argument(
        "--fast-variants",
        default="4:fused_lora=0;4:recompute_mlp=0",
        help="extra fast rows, ';'-separated 'MICRO:option=0|1,...' (levers switched off or on)",
    )
    p.add_argument(
        "--skip",
        default="",
        help="comma list of parts to skip: check,stock,trl-best,fast,paper,gen,hf,bound,profile",
    )
    args = p.parse_args(argv)
    if args.tiny:
        for name, value in dict(
            prompt_len=32,
            completion_len=24,
            gen_new_tokens=40,
            hf_new_tokens=12,
            gen_prompts=4,
            gen_batch=16,
            steps=3,
            warmup=1,
            lora_r=4,
        ).items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    return args


# ---- model, tokenizer, data ---------------------------------------------------------------------


def model_config(tiny: bool) -> Any:
    """Llama-3.1-8B's config.json (random init), or the tiny Llama of ``--tiny``."""
    from sf_train.synthetic import model_config as shaped

    return shaped("tiny" if tiny else "llama-3.1-8b")


def build_model(config: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    from transformers import LlamaForCausalLM

    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            torch.manual_seed(0)
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.config.use_cache = False
    return model


def build_tokenizer(vocab_size: int) -> Any:
    """One word per token (``t<id>``), so random token ids encode exactly; see sf_train.synthetic."""
    from sf_train.synthetic import word_tokenizer

    return word_tokenizer(vocab_size)


def words(gen: torch.Generator, n: int, vocab: int) -> str:
    return " ".join(f"t{i}" for i in torch.randint(FIRST_WORD, vocab, (n,), generator=gen).tolist())


def make_pairs(n: int, args: argparse.Namespace, vocab: int) -> list[dict[str, Any]]:
    """Prompts of ``prompt_len`` tokens; completions of ``completion_len`` (TRL appends EOS)."""
    gen = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        sw, sl = sorted(torch.rand(2, generator=gen).tolist(), reverse=True)
        rows.append(
            dict(
                prompt=words(gen, args.prompt_len, vocab),
                chosen=" " + words(gen, args.completion_len - 1, vocab),
                rejected=" " + words(gen, args.completion_len - 1, vocab),
                chosen_score=sw,
                rejected_score=sl,
            )
        )
    return rows


PAPER_LORA = dict(r=8, alpha=16, targets=["q_proj", "v_proj"])  # ScoreFlow's (and the loop's) default


def lora_config(r: int, alpha: int | None = None, targets: Any = "all-linear") -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha or 2 * r,
        lora_dropout=0.0,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def lora_label(lora: dict[str, Any]) -> str:
    targets = lora["targets"]
    where = targets if isinstance(targets, str) else "+".join(targets)
    return f"r={lora['r']}, alpha={lora['alpha']}, {where}"


def perturb_lora(model: Any, device: torch.device) -> None:
    """LoRA B starts at zero (policy = reference, loss = log 2); give both trainers the same non-zero B."""
    gen = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if "lora_B" in name:
                param.normal_(0.0, 0.02, generator=gen)


# ---- measurement helpers ------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / GIB, 2) if device.type == "cuda" else None


def step_timer(device: torch.device) -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.last = 0.0

        def on_train_begin(self, *_: Any, **__: Any) -> None:
            sync(device)
            self.last = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            sync(device)
            now = time.perf_counter()
            self.times.append(now - self.last)
            self.last = now

    return StepTimer()


def common_args(args: argparse.Namespace, device: torch.device, out: str) -> dict[str, Any]:
    cuda = device.type == "cuda"
    return dict(
        output_dir=out,
        max_steps=args.warmup + args.steps,
        learning_rate=1e-6,
        beta=0.1,
        seed=0,
        logging_steps=10_000,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        dataset_num_proc=None,
        bf16=cuda,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        max_length=None,
    )


def loss_on(trainer: Any, rows: list[dict[str, Any]], device: torch.device) -> float:
    batch = trainer.data_collator(rows)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def step_stats(times: list[float], warmup: int, tokens_per_step: int) -> dict[str, Any]:
    timed = times[warmup:] or times
    step = statistics.median(timed)
    return dict(
        step_s=round(step, 4),
        step_s_all=[round(t, 4) for t in times],
        tokens_per_s=round(tokens_per_step / step, 1),
    )


def release(trainer: Any) -> Any:
    """Take the LoRA adapter off and return the bare base model."""
    model = trainer.model
    base = model.unload() if hasattr(model, "unload") else model
    if getattr(base, "is_gradient_checkpointing", False):
        base.gradient_checkpointing_disable()
    with contextlib.suppress(Exception):
        base.disable_input_require_grads()
    trainer.model = None
    return base


# ---- the parts ----------------------------------------------------------------------------------


_HASH_SECONDS: list[float] = []


@contextlib.contextmanager
def trl_model_hash(measure: bool) -> Any:
    """TRL's precompute hashes every weight of the model on the CPU (``hash_module``) to key its cache.

    ``measure``: time the real hash (once per run, reported as ``ref_hash_s``); otherwise replace it
    by a fresh random key (the same cost would only repeat; a fresh key also means no cache hit).
    """
    import uuid

    import trl.trainer.dpo_trainer as dpo_module

    real = dpo_module.hash_module

    def timed(module: Any) -> str:
        start = time.perf_counter()
        try:
            return real(module)
        finally:
            _HASH_SECONDS.append(time.perf_counter() - start)

    dpo_module.hash_module = timed if measure else (lambda module: uuid.uuid4().hex)
    try:
        yield
    finally:
        dpo_module.hash_module = real


def run_trl(
    model: Any,
    tok: Any,
    pairs: list[dict[str, Any]],
    args: argparse.Namespace,
    device: torch.device,
    out: str,
    tokens_per_step: int,
    *,
    precompute: bool,
    ckpt: bool,
    micro: int,
    lora: dict[str, Any],
    label: str,
    setup_baseline: float | None = None,
) -> tuple[dict[str, Any], Any]:
    """One TRL 1.16 ``DPOTrainer`` row.

    With ``precompute`` (``precompute_ref_log_probs=True``, ``precompute_ref_batch_size`` = ours)
    the constructor scores every pair once; like our own reference pass its cost is charged per step
    at its warm rate: after training, TRL's own ``_precompute_ref_logps`` runs again over the same
    pairs (under a fresh cache key) and ``ref_s_per_step`` = its seconds × pairs per step / pairs.
    The cold first pass is ``ref_cold_s`` = constructor seconds − those of the constructor without
    precompute on the same pairs (``setup_baseline``) − the model hash TRL takes first (``ref_hash_s``,
    timed in the first precompute row; later rows use a random key instead, see :func:`trl_model_hash`).
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    plain = [{k: v for k, v in r.items() if not k.endswith("_score")} for r in pairs]
    cfg = DPOConfig(
        **common_args(args, device, out),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=args.pairs_per_step // micro,
        gradient_checkpointing=ckpt,
        precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=args.ref_batch if precompute else None,
    )
    reset_peak(device)
    measure_hash = precompute and not _HASH_SECONDS
    start = time.perf_counter()
    with trl_model_hash(measure_hash) if precompute else contextlib.nullcontext():
        trainer = DPOTrainer(
            model,
            args=cfg,
            train_dataset=Dataset.from_list(plain),
            processing_class=tok,
            peft_config=lora_config(lora["r"], lora["alpha"], lora["targets"]),
        )
    setup = time.perf_counter() - start
    row: dict[str, Any] = dict(
        name=label,
        setting="main" if lora["targets"] == "all-linear" else "paper",
        lora=lora_label(lora),
        trainer="trl",
        precompute_ref_log_probs=precompute,
        gradient_checkpointing=ckpt,
        micro=micro,
        setup_s=round(setup, 2),
    )
    try:
        perturb_lora(trainer.model, device)
        check = [trainer.train_dataset[i] for i in range(args.pairs_per_step)]
        row["loss_check"] = loss_on(trainer, check, device)
        timer = step_timer(device)
        trainer.add_callback(timer)
        trainer.train()
        row.update(step_stats(timer.times, args.warmup, tokens_per_step))
        row["train_step_s"] = row["step_s"]
        row["peak_gib"] = peak_gib(device)
        if precompute:
            n = len(trainer.train_dataset)
            hashed = _HASH_SECONDS[-1] if measure_hash else 0.0
            if measure_hash:
                row["ref_hash_s"] = round(hashed, 2)
            if setup_baseline is not None:
                row["ref_cold_s"] = round(setup - setup_baseline - hashed, 3)
            fresh = trainer.train_dataset.remove_columns(["ref_chosen_logps", "ref_rejected_logps"])
            trainer._precompute_model_hash = f"warm-pass-{time.time_ns()}"
            sync(device)
            t0 = time.perf_counter()
            trainer._precompute_ref_logps(fresh, "warm", args.ref_batch)
            sync(device)
            warm = time.perf_counter() - t0
            row["ref_s"], row["ref_pairs"] = round(warm, 3), n
            row["ref_s_per_step"] = round(warm * args.pairs_per_step / n, 4)
            row["effective_step_s"] = round(row["step_s"] + row["ref_s_per_step"], 4)
            row["tokens_per_s"] = round(tokens_per_step / row["effective_step_s"], 1)
        else:
            row["effective_step_s"] = row["step_s"]
        row["peak_gib"] = max(row["peak_gib"] or 0, peak_gib(device) or 0) or None
    finally:
        model = release(trainer)
        del trainer
        reset_peak(device)
    return row, model


def run_fast(
    model: Any,
    tok: Any,
    pairs: list[dict[str, Any]],
    args: argparse.Namespace,
    device: torch.device,
    out: str,
    tokens_per_step: int,
    micro: int,
    *,
    lora: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    from datasets import Dataset

    from sf_train import ScoreDPOConfig

    lora = lora or dict(r=args.lora_r, alpha=2 * args.lora_r, targets="all-linear")
    options = options or {}
    from sf_train.fast import FastScoreDPOTrainer

    cfg = ScoreDPOConfig(
        **common_args(args, device, out),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=args.pairs_per_step // micro,
        gradient_checkpointing=False,
        precompute_ref_batch_size=args.ref_batch,
        objective="score-dpo",
    )
    reset_peak(device)
    start = time.perf_counter()
    trainer = FastScoreDPOTrainer(
        model,
        args=cfg,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tok,
        peft_config=lora_config(lora["r"], lora["alpha"], lora["targets"]),
        **options,
    )
    setup = time.perf_counter() - start
    row: dict[str, Any] = dict(
        name=f"sf-fast-score-dpo mb={micro}",
        setting="main" if lora["targets"] == "all-linear" else "paper",
        lora=lora_label(lora),
        trainer="sf-fast",
        micro=micro,
        options=options,
        setup_s=round(setup, 2),
        ref_s=round(trainer.ref_seconds, 3),
        ref_pairs=trainer.ref_pairs,
    )
    try:
        perturb_lora(trainer.model, device)
        check = [
            dict(trainer.train_dataset[i], chosen_score=1.0, rejected_score=0.0)
            for i in range(args.pairs_per_step)
        ]
        row["loss_check"] = loss_on(trainer, check, device)
        timer = step_timer(device)
        trainer.add_callback(timer)
        trainer.train()
        row.update(step_stats(timer.times, args.warmup, tokens_per_step))
        # The reference pass runs once per iteration over thousands of pairs: charge its warm rate
        # (a second pass over the same pairs; the first one also JIT-compiles kernels and runs the
        # kernels' self-tests, reported as ref_cold_s).
        cold = trainer.ref_seconds
        trainer.precompute_reference(trainer.train_dataset)
        row["ref_cold_s"], row["ref_s"] = round(cold, 3), round(trainer.ref_seconds - cold, 3)
        ref_per_step = (trainer.ref_seconds - cold) * args.pairs_per_step / len(trainer.train_dataset)
        row["ref_s_per_step"] = round(ref_per_step, 4)
        row["train_step_s"] = row["step_s"]
        row["effective_step_s"] = round(row["step_s"] + ref_per_step, 4)
        row["tokens_per_s"] = round(tokens_per_step / row["effective_step_s"], 1)
        row["peak_gib"] = peak_gib(device)
        fwd = trainer._forward
        row["paths"] = dict(
            fused_kernels=fwd.fused,
            varlen_attention=fwd.varlen,
            recompute_mlp=fwd.recompute_mlp,
            fused_lora=fwd.fused_lora,
        )
        used = [
            label
            for label, on in (
                ("varlen", fwd.varlen),
                ("fused norm/swiglu", fwd.fused),
                ("fused LoRA", fwd.fused_lora),
                ("mlp recompute", fwd.recompute_mlp),
            )
            if on
        ]
        if row["setting"] == "paper":
            used.append(f"LoRA {row['lora']}")
        row["name"] = (
            f"sf-fast-score-dpo mb={micro} (ref once, shared prefix, {', '.join(used + ['no ckpt'])})"
        )
    finally:
        model = release(trainer)
        del trainer
        reset_peak(device)
    return row, model


def copy_bandwidth(device: torch.device, gib: float = 2.0) -> dict[str, Any] | None:
    """Device-to-device copy of a ``gib`` GiB random buffer: (bytes read + written) / median seconds."""
    if device.type != "cuda":
        return None
    n = int(gib * GIB) // 2
    src = torch.randn(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = []
    for _ in range(20):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        dst.copy_(src)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    sec = statistics.median(times)
    del src, dst
    reset_peak(device)
    return dict(bytes_per_copy=4 * n, median_s=round(sec, 6), gb_per_s=round(4 * n / sec / 1e9, 1))


def decode_bound(
    model: Any, rows: int, groups: int, prefix: int, new_tokens: int, gb_per_s: float
) -> dict[str, Any]:
    """Memory-bandwidth bound of the decode phase, at the measured copy bandwidth.

    Every step reads every weight once (all parameters but the input embedding, whose rows are
    gathered) and the K/V it attends to (each prompt's K/V once per step, shared by its k rows, plus
    each row's generated K/V).
    """
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    embed = lm.get_input_embeddings().weight
    weights = sum(p.numel() * p.element_size() for p in lm.parameters() if p is not embed)
    if lm.get_output_embeddings().weight is embed:
        weights += embed.numel() * embed.element_size()
    cfg = lm.config.get_text_config()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_token = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * head_dim * embed.element_size()
    steps = new_tokens - 1
    kv = kv_token * (steps * groups * prefix + rows * steps * (steps + 1) / 2)
    total = steps * weights + kv
    seconds = total / (gb_per_s * 1e9)
    return dict(
        weight_bytes=weights,
        kv_bytes_per_token=kv_token,
        mean_kv_bytes_per_step=round(kv / steps),
        mean_bytes_per_step=round(total / steps),
        step_s=round(seconds / steps, 6),
        tokens_per_s=round(rows * steps / seconds, 1),
    )


def attach_lora(model: Any, kind: str, device: torch.device) -> Any:
    """The generation model: the bare base (``none``) or the base with a non-zero LoRA adapter.

    The adapter is there as the loop samples with the current adapter (``all-linear``: r=16
    everywhere; ``paper``: r=8 on q, v).
    """
    if kind == "none":
        return model
    from peft import get_peft_model

    lora = PAPER_LORA if kind == "paper" else dict(r=16, alpha=32, targets="all-linear")
    peft_model = get_peft_model(model, lora_config(lora["r"], lora["alpha"], lora["targets"]))
    peft_model.to(next(model.parameters()).dtype)
    perturb_lora(peft_model, device)
    return peft_model


def run_generation(
    model: Any,
    tok: Any,
    args: argparse.Namespace,
    device: torch.device,
    result: dict[str, Any],
    saved: Any = None,
) -> dict[str, Any]:
    """Fill ``result`` with the generation rows (``saved()`` after each), and return it."""
    from sf_train.generate.base import GenerationParams
    from sf_train.generate.fast_hf import FastHFWorkflowGenerator
    from sf_train.generate.hf import HFWorkflowGenerator

    model.eval()
    model.config.use_cache = True
    model = attach_lora(model, args.gen_lora, device)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(1)
    prompts = [words(gen, args.prompt_len, vocab) for _ in range(args.gen_prompts)]
    skip = set(args.skip.split(","))
    result.update(rows=[], lora=args.gen_lora)
    if "bound" not in skip:
        result["copy_bandwidth"] = copy_bandwidth(device)
        print(f"  copy bandwidth: {result['copy_bandwidth']}", flush=True)

    def params(new: int, batch: int, temperature: float = 0.2) -> GenerationParams:
        return GenerationParams(
            temperature=temperature, top_p=0.95, max_new_tokens=new, stop="</graph>", batch_size=batch, seed=0
        )

    def timed(name: str, generator: Any, k: int, subset: list[str]) -> dict[str, Any]:
        reset_peak(device)
        tokens_before = generator.new_tokens
        sync(device)
        start = time.perf_counter()
        texts = generator.generate_texts(subset, k)
        sync(device)
        wall = time.perf_counter() - start
        new = generator.new_tokens - tokens_before
        row = dict(
            name=name,
            rows=len(subset) * k,
            new_tokens=new,
            seconds=round(wall, 3),
            tokens_per_s=round(new / wall, 1),
            peak_gib=peak_gib(device),
            max_new_tokens=generator.params.max_new_tokens,
            batch=generator.params.batch_size,
        )
        stats = getattr(generator, "last_stats", None)
        if stats is not None:
            row.update(
                prefill_s=round(stats.prefill_s, 3),
                capture_s=round(stats.capture_s, 3),
                merge_s=round(stats.merge_s, 3),
                merged_weights=stats.merged,
                top_p_kernel=stats.top_p_kernel,
                sampler=stats.sampler,
                residual_norm=stats.residual_norm,
                decode_s=round(stats.decode_s, 3),
                steps=stats.steps,
                graphs=stats.graphs,
                attention=stats.attention,
                decode_tokens_per_s=round(new / stats.decode_s, 1) if stats.decode_s else None,
            )
            bw = (result.get("copy_bandwidth") or {}).get("gb_per_s")
            if bw and stats.decode_s:
                groups = max(1, generator.params.batch_size // k)
                bound = decode_bound(
                    model, groups * k, groups, args.prompt_len, generator.params.max_new_tokens, bw
                )
                row["bound"] = bound
                # row-steps per second against the bound's (finished rows still occupy their slot)
                achieved = groups * k * stats.steps / stats.decode_s
                row["decode_row_steps_per_s"] = round(achieved, 1)
                row["of_bound"] = round(achieved / bound["tokens_per_s"], 3)
            if getattr(generator, "fallback_reason", None):
                row["fallback_reason"] = generator.fallback_reason
        assert len(texts) == len(subset) and all(len(t) == k for t in texts)
        print(f"  {name}: {row['tokens_per_s']} tokens/s ({new} tokens, {wall:.1f} s)", flush=True)
        return row

    def attempt(fn: Any) -> None:
        try:
            result["rows"].append(fn())
        except Exception as exc:  # a failed variant is reported, the others still run
            traceback.print_exc()
            result["rows"].append(dict(name=getattr(fn, "label", "?"), error=f"{type(exc).__name__}: {exc}"))
            reset_peak(device)
        if saved is not None:
            saved()

    # correctness first: greedy fast vs generate on two prompts
    try:
        hf = HFWorkflowGenerator(model, tok, params(32, 8, temperature=0.0))
        want = hf.generate_texts(prompts[:2], 1)
        check: dict[str, Any] = {}
        for attention in ("triton", "torch") if device.type == "cuda" else ("torch",):
            fast = FastHFWorkflowGenerator(model, tok, params(32, 8, temperature=0.0), attention=attention)
            got = fast.generate_texts(prompts[:2], 2)
            agree = []
            for w, g in zip(want, got, strict=True):
                a, b = re.findall(r"t\d+|.", w[0]), re.findall(r"t\d+|.", g[0])  # one item per token
                first_diff = (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
                agree.append(next(first_diff, min(len(a), len(b))))
            check[attention] = dict(
                identical=[w[0] == g[0] and g[0] == g[1] for w, g in zip(want, got, strict=True)],
                agreeing_tokens=agree,
                of=32,
            )
        result["greedy_check"] = check
        print(f"  greedy check: {check}", flush=True)
    except Exception as exc:
        traceback.print_exc()
        result["greedy_check"] = dict(error=f"{type(exc).__name__}: {exc}")

    if "hf" not in skip:
        hf = HFWorkflowGenerator(model, tok, params(args.hf_new_tokens, args.gen_batch))
        HFWorkflowGenerator(model, tok, params(2, args.gen_batch)).generate_texts(prompts, args.k)  # warm-up

        def hf_row() -> dict[str, Any]:
            return timed("transformers-generate (HFWorkflowGenerator)", hf, args.k, prompts)

        hf_row.label = "transformers-generate"  # type: ignore[attr-defined]
        attempt(hf_row)

    b64, n64 = args.gen_batch, args.gen_prompts
    base: dict[str, Any] = dict(
        attention="auto",
        batch=b64,
        n_prompts=n64,
        merge_weights="auto",
        top_p_kernel="auto",
        temp=0.2,
        options=dict(attention_options=json.loads(args.attention_options)) if args.attention_options else {},
    )
    previous = dict(
        base,
        top_p_kernel="single",
        options=dict(
            residual_norm=False, attention_options=dict(fused_merge=False, split_gen=256, one_launch=False)
        ),
    )
    variants = [("sf-fast-generate", base)]
    extra = set(args.extra_gen.split(","))
    if device.type != "cuda":  # rows that force a Triton kernel need a GPU (or TRITON_INTERPRET=1)
        extra -= {"previous", "single"}
    if "blas" in extra:
        variants.append(
            (
                "sf-fast-generate, torch's default cuBLAS back end",
                dict(base, options=dict(base["options"], blas_library=None)),
            )
        )
    if "defaults" in extra and args.attention_options:
        variants.append(("sf-fast-generate, decoder's default attention options", dict(base, options={})))
    if "previous" in extra:
        label = "sf-fast-generate, previous decoder (1-program top-p, merge launch, residual in GEMM)"
        variants.append((label, previous))
    if "single" in extra:
        variants.append(
            ("sf-fast-generate, top-p cut by one program per row", dict(base, top_p_kernel="single"))
        )
    if "merge" in extra:
        variants.append(
            (
                "sf-fast-generate, attention merge as its own launch",
                dict(base, options=dict(attention_options=dict(fused_merge=False, one_launch=False))),
            )
        )
    if "gemm-residual" in extra:
        variants.append(
            (
                "sf-fast-generate, residual adds in the o/down GEMMs",
                dict(base, options=dict(residual_norm=False)),
            )
        )
    attention_rows = {  # also at batch 128
        "splits": ("generated cache in attention splits of 256", dict(split_gen=256)),
        "twolaunch": ("attention in two launches per layer", dict(one_launch=False)),
        "unrolled": ("attention merge unrolled over the splits", dict(unroll_merge=True)),
    }
    for key, (what, options) in attention_rows.items():
        if key in extra:
            row = dict(base, options=dict(attention_options=options))
            variants.append((f"sf-fast-generate, {what}", row))
    if "unmerged" in extra:
        variants.append(("sf-fast-generate, adapter unmerged", dict(base, merge_weights=False)))
    if "sort" in extra:
        variants.append(("sf-fast-generate, top-p by sort", dict(base, top_p_kernel=False)))
    if "greedy" in extra:
        variants.append(("sf-fast-generate, greedy (no top-p)", dict(base, temp=0.0)))
    if "torch" in extra and device.type == "cuda":
        variants.append(("sf-fast-generate torch-attention", dict(base, attention="torch")))
    if "b128" in extra:
        b128 = dict(base, batch=2 * b64, n_prompts=2 * n64)
        variants.append(("sf-fast-generate batch 128", b128))
        if "previous" in extra:
            variants.append(
                (
                    "sf-fast-generate batch 128, previous decoder",
                    dict(previous, batch=2 * b64, n_prompts=2 * n64),
                )
            )
        if "unmerged" in extra:
            variants.append(("sf-fast-generate batch 128, adapter unmerged", dict(b128, merge_weights=False)))
        if "sort" in extra:
            variants.append(("sf-fast-generate batch 128, top-p by sort", dict(b128, top_p_kernel=False)))
        if "greedy" in extra:
            variants.append(("sf-fast-generate batch 128, greedy (no top-p)", dict(b128, temp=0.0)))
        for key, (what, options) in attention_rows.items():
            if key in extra:
                row = dict(b128, options=dict(attention_options=options))
                variants.append((f"sf-fast-generate batch 128, {what}", row))
    many = prompts + [words(gen, args.prompt_len, vocab) for _ in range(args.gen_prompts)]
    if "profile" not in skip and device.type == "cuda":
        bw = (result.get("copy_bandwidth") or {}).get("gb_per_s")
        result["read_bandwidth"] = read_bandwidth(device)
        result["step_profile"] = []
        for batch in (int(b) for b in args.step_profile.split(",") if b):
            try:
                prof = step_profile(model, tok, many, args, batch, bw)
            except Exception as exc:
                traceback.print_exc()
                prof = dict(batch=batch, error=f"{type(exc).__name__}: {exc}")
            result["step_profile"].append(prof)
            print(f"  step profile: {prof}", flush=True)
            if saved is not None:
                saved()
    for name, spec in variants:

        def fast_row(name: str = name, spec: dict[str, Any] = spec) -> dict[str, Any]:
            fast = FastHFWorkflowGenerator(
                model,
                tok,
                params(args.gen_new_tokens, spec["batch"], temperature=spec["temp"]),
                attention=spec["attention"],
                merge_weights=spec["merge_weights"],
                top_p_kernel=spec["top_p_kernel"],
                decoder_options=spec["options"],
            )
            row = timed(name, fast, args.k, many[: spec["n_prompts"]])
            row["decoder_options"] = spec["options"]
            return row

        fast_row.label = name  # type: ignore[attr-defined]
        attempt(fast_row)
    return result


def read_bandwidth(device: torch.device, gib: float = 2.0) -> dict[str, Any]:
    """A reduction over a ``gib`` GiB random bf16 buffer: bytes read / median seconds.

    That is what a GEMM streaming its weights can reach at best; the copy's figure counts a write too.
    """
    src = torch.randn(int(gib * GIB) // 2, dtype=torch.bfloat16, device=device)
    times = []
    for i in range(23):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        src.sum(dtype=torch.float32)
        b.record()
        b.synchronize()
        if i >= 3:
            times.append(a.elapsed_time(b) / 1e3)
    sec = statistics.median(times)
    nbytes = src.numel() * 2
    del src
    reset_peak(device)
    return dict(bytes=nbytes, median_s=round(sec, 6), gb_per_s=round(nbytes / sec / 1e9, 1))


_KERNEL_KINDS = (
    ("attention", ("_partial_kernel", "_merge_kernel", "_gen_final_kernel", "_one_launch_kernel")),
    (
        "sampling",
        (
            "_top_p",
            "_stats_kernel",
            "_count_kernel",
            "_compact_kernel",
            "_cut_kernel",
            "_race_kernel",
            "_pick_kernel",
            "sort",
            "radix",
            "softmax",
            "exponential",
            "argmax",
            "masked_fill",
            "cumsum",
            "distribution",
        ),
    ),
    ("gemm", ("gemm", "gmma", "xmma", "cutlass", "nvjet", "cublas", "splitk")),
    ("norm / rope / swiglu", ("_rms_norm", "_add_rms_norm", "_rope_store", "_swiglu")),
)


def step_profile(
    model: Any, tok: Any, prompts: list[str], args: argparse.Namespace, batch: int, bw: float | None
) -> dict[str, Any]:
    """One captured decode step replayed at three cache positions.

    The step is the default decoder's, at temperature 0.2, top-p 0.95. Reported: its time against
    the bandwidth bound at that context, and at the middle position the device time per kernel kind
    (``torch.profiler`` over 10 graph replays, nothing else).
    """
    from torch.profiler import ProfilerActivity, profile

    from sf_train.fast.decode import SharedPrefixDecoder

    k = args.k
    groups = batch // k
    new = args.gen_new_tokens
    attention_options = json.loads(args.attention_options) if args.attention_options else {}
    decoder = SharedPrefixDecoder(
        model, pad_token_id=tok.pad_token_id, eos_token_id=None, attention_options=attention_options
    )
    out: dict[str, Any] = dict(batch=batch, rows=groups * k, prefix=args.prompt_len)
    if attention_options:
        out["attention_options"] = attention_options

    def chunk(lay: Any, chunk_prompts: Any, max_new: int, stop: Any, decode: Any) -> list[list[int]]:
        decoder._prefill(lay, chunk_prompts)
        decoder._run_step(lay, 0)  # captures the graph
        graph = lay.graphs[lay.gen_len]
        times = []
        for slot in (0, (new - 24) // 2, new - 24):
            lay.slot.fill_(slot)
            for _ in range(3):
                graph.replay()
            lay.slot.fill_(slot)
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(20):
                graph.replay()
            b.record()
            b.synchronize()
            step_s = a.elapsed_time(b) / 1e3 / 20
            ctx = slot + 10
            row = dict(gen_slot=slot, step_us=round(step_s * 1e6, 1))
            if bw:
                bound = decode_bound(model, groups * k, groups, args.prompt_len, 2, bw)
                kv = bound["kv_bytes_per_token"] * (groups * args.prompt_len + groups * k * (ctx + 1))
                bound_s = (bound["weight_bytes"] + kv) / (bw * 1e9)
                row.update(bound_us=round(bound_s * 1e6, 1), of_bound=round(bound_s / step_s, 3))
            times.append(row)
        lay.slot.fill_((new - 24) // 2)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                graph.replay()
            torch.cuda.synchronize()
        kinds: dict[str, float] = {}
        top = []
        for event in prof.key_averages():
            us = getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)
            if not us:
                continue
            kind = next(
                (k_ for k_, keys in _KERNEL_KINDS if any(w in event.key.lower() for w in keys)), "other"
            )
            kinds[kind] = kinds.get(kind, 0.0) + us / 10
            top.append((us / 10, event.key, event.count // 10))
        top.sort(reverse=True)
        mid = times[1]["step_us"]
        out.update(
            at_slots=times,
            kernel_us_per_step={k_: round(v, 1) for k_, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
            gaps_us_per_step=round(mid - sum(kinds.values()), 1),
            kernels_per_step=sum(c for _, _, c in top),
            top_kernels=[dict(name=n[:90], us_per_step=round(us, 1), calls=c) for us, n, c in top[:14]],
            sampler=decoder._method,
            residual_norm=decoder._res_norm,
        )
        return [[] for _ in range(lay.rows)]

    decoder._generate_chunk = chunk  # type: ignore[method-assign]
    ids = [tok(p)["input_ids"] for p in prompts[:groups]]
    decoder.generate(ids, k, max_new_tokens=new, temperature=0.2, top_p=0.95, batch_size=batch)
    reset_peak(torch.device("cuda"))
    return out


def lora_grads(model: Any) -> dict[str, torch.Tensor]:
    return {
        n.replace(".default", ""): p.grad.detach().float().clone()
        for n, p in model.named_parameters()
        if "lora_" in n and p.grad is not None
    }


def run_fp32_check(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Equality on this device in float32 (bf16 rounding would hide a real difference).

    On a 2-layer model of the same widths: stock TRL DPO vs the fast trainer at s_w = 1, s_l = 0 (loss
    and every LoRA gradient), and greedy decoding of ``generate`` vs the fast decoder (torch and
    Triton attention).
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from sf_train import ScoreDPOConfig
    from sf_train.fast import FastScoreDPOTrainer
    from sf_train.generate.base import GenerationParams
    from sf_train.generate.fast_hf import FastHFWorkflowGenerator
    from sf_train.generate.hf import HFWorkflowGenerator

    config = model_config(args.tiny)
    config.num_hidden_layers = min(2, config.num_hidden_layers)
    model = build_model(config, device, torch.float32)
    tok = build_tokenizer(config.vocab_size)
    pairs = [
        dict(r, chosen_score=1.0, rejected_score=0.0)
        for r in make_pairs(args.pairs_per_step, args, config.vocab_size)
    ]
    out: dict[str, Any] = {"layers": config.num_hidden_layers}
    with tempfile.TemporaryDirectory() as tmp:
        common = {**common_args(args, device, tmp), "bf16": False, "max_steps": 1}
        stock = DPOTrainer(
            model,
            args=DPOConfig(
                **common, per_device_train_batch_size=args.pairs_per_step, gradient_checkpointing=False
            ),
            train_dataset=Dataset.from_list(
                [{k: v for k, v in r.items() if "score" not in k} for r in pairs]
            ),
            processing_class=tok,
            peft_config=lora_config(args.lora_r),
        )
        perturb_lora(stock.model, device)
        batch = stock.data_collator([stock.train_dataset[i] for i in range(len(pairs))])
        loss_s = stock.compute_loss(stock.model, {k: v.to(device) for k, v in batch.items()})
        loss_s.backward()
        grads_s = lora_grads(stock.model)
        model = release(stock)
        del stock
        fast = FastScoreDPOTrainer(
            model,
            args=ScoreDPOConfig(**common, per_device_train_batch_size=2, gradient_checkpointing=False),
            train_dataset=Dataset.from_list(pairs),
            processing_class=tok,
            peft_config=lora_config(args.lora_r),
        )
        perturb_lora(fast.model, device)
        batch = fast.data_collator([fast.train_dataset[i] for i in range(len(pairs))])
        loss_f = fast.compute_loss(fast.model, {k: v.to(device) for k, v in batch.items()})
        loss_f.backward()
        grads_f = lora_grads(fast.model)
        worst = max(((grads_f[n] - g).norm() / g.norm().clamp_min(1e-30)).item() for n, g in grads_s.items())
        out["train"] = dict(
            stock_loss=loss_s.item(),
            fast_loss=loss_f.item(),
            abs_diff=abs(loss_s.item() - loss_f.item()),
            lora_grads=len(grads_s),
            same_grad_names=sorted(grads_s) == sorted(grads_f),
            worst_grad_rel_diff=worst,
            fused_kernels=bool(fast._forward.fused),
            fused_lora=bool(fast._forward.fused_lora),
        )
        model = release(fast)
        del fast
    model.eval()
    model.config.use_cache = True
    gen = torch.Generator().manual_seed(2)
    prompts = [words(gen, args.prompt_len, config.vocab_size) for _ in range(2)]
    params = GenerationParams(temperature=0.0, max_new_tokens=24, stop="</graph>", batch_size=8)
    want = HFWorkflowGenerator(model, tok, params).generate_texts(prompts, 1)
    out["greedy"] = {}
    for attention in ("torch", "triton") if device.type == "cuda" else ("torch",):
        got = FastHFWorkflowGenerator(model, tok, params, attention=attention).generate_texts(prompts, 2)
        out["greedy"][attention] = all(w[0] == g[0] == g[1] for w, g in zip(want, got, strict=True))
    del model
    reset_peak(device)
    print(f"  fp32 check: {out}", flush=True)
    return out


def summarise(result: dict[str, Any]) -> None:
    """Per setting: the best TRL row, the best fast row within 40 GiB, and their ratio of tokens/s."""
    result["summary"] = {}
    for setting in ("main", "paper"):
        ok = [r for r in result["train"] if "error" not in r and r.get("setting") == setting]
        trl = [r for r in ok if r.get("trainer") == "trl"]
        fast = [r for r in ok if r.get("trainer") == "sf-fast" and (r["peak_gib"] or 0) <= 40]
        if not trl or not fast:
            continue
        best_trl = max(trl, key=lambda r: r["tokens_per_s"])
        default = next((r for r in trl if not r["precompute_ref_log_probs"]), None)
        best = max(fast, key=lambda r: r["tokens_per_s"])
        result["summary"][setting] = dict(
            best_trl=best_trl["name"],
            best_fast=best["name"],
            speedup_vs_best_trl=round(best["tokens_per_s"] / best_trl["tokens_per_s"], 3),
            speedup_vs_trl_default=None
            if default is None
            else round(best["tokens_per_s"] / default["tokens_per_s"], 3),
            loss_check_abs_diff=round(abs(best["loss_check"] - best_trl["loss_check"]), 6),
        )
    main = result["summary"].get("main")
    if main:
        result["speedup"] = main["speedup_vs_best_trl"]


def versions() -> dict[str, Any]:
    import importlib.metadata as md

    info: dict[str, Any] = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "triton"):
        with contextlib.suppress(md.PackageNotFoundError):
            info[name] = md.version(name)
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / GIB, 1)
    return info


def print_table(result: dict[str, Any]) -> None:
    print("\nTraining (4 pairs per step, tokens = 4 x (prompt+chosen + prompt+rejected))")
    head = f"{'trainer':88} {'step s':>7} {'ref s':>7} {'eff. s':>7} {'tok/s':>7} {'GiB':>6} {'loss@1,0':>9}"
    for setting in ("main", "paper"):
        rows = [r for r in result["train"] if r.get("setting", "main") == setting]
        if not rows:
            continue
        lora = next((r["lora"] for r in rows if "lora" in r), "")
        print(f"-- LoRA {lora}")
        print(head)
        for r in rows:
            if "error" in r:
                print(f"{r['name'][:88]:88} ERROR {r['error'][:80]}")
                continue
            ref = r.get("ref_s_per_step")
            print(
                f"{r['name'][:88]:88} {r.get('train_step_s', r['step_s']):7.3f} "
                f"{'-' if ref is None else f'{ref:.3f}':>7} {r['effective_step_s']:7.3f} "
                f"{r['tokens_per_s']:7.0f} {str(r['peak_gib']):>6} {r['loss_check']:9.5f}"
            )
        summary = (result.get("summary") or {}).get(setting)
        if summary:
            print(
                f"best fast (<= 40 GiB) / best TRL tokens/s: {summary['speedup_vs_best_trl']:.2f}x "
                f"(vs TRL default: {summary['speedup_vs_trl_default']}x)"
            )
    gen = result.get("generation") or {}
    if gen.get("rows"):
        bw = (gen.get("copy_bandwidth") or {}).get("gb_per_s")
        print(
            f"\nGeneration (k={result['setup']['k']}, prompt {result['setup']['prompt_len']}, "
            f"temperature 0.2, top-p 0.95, adapter: {gen.get('lora')}; copy bandwidth {bw} GB/s)"
        )
        print(
            f"{'generator':48} {'rows':>5} {'new tok':>8} {'s':>7} {'tok/s':>7} "
            f"{'decode tok/s':>12} {'bound':>7} {'of bound':>8} {'GiB':>6}"
        )
        for r in gen["rows"]:
            if "error" in r:
                print(f"{r['name'][:48]:48} ERROR {r['error'][:80]}")
                continue
            bound = (r.get("bound") or {}).get("tokens_per_s", "")
            print(
                f"{r['name'][:48]:48} {r['rows']:5d} {r['new_tokens']:8d} {r['seconds']:7.2f} "
                f"{r['tokens_per_s']:7.0f} {str(r.get('decode_tokens_per_s', '')):>12} "
                f"{str(bound):>7} {str(r.get('of_bound', '')):>8} {str(r['peak_gib']):>6}"
            )
    if gen.get("greedy_check"):
        print(f"greedy check vs generate (bf16): {gen['greedy_check']}")
    if result.get("fp32_check"):
        print(f"float32 check (2 layers): {result['fp32_check']}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    skip = set(args.skip.split(","))
    result: dict[str, Any] = dict(
        date=date.today().isoformat(), versions=versions(), train=[], generation=None
    )
    config = model_config(args.tiny)
    result["setup"] = dict(
        model="Llama-3.1-8B-shaped, random init" if not args.tiny else "tiny Llama",
        dtype=str(torch.bfloat16 if device.type == "cuda" else torch.float32),
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        vocab=config.vocab_size,
        lora=f"r={args.lora_r}, alpha={2 * args.lora_r}, dropout 0, all-linear",
        paper_lora=lora_label(PAPER_LORA),
        trl_notes=(
            "TRL 1.16's padding_free is disabled upstream (DPOTrainer warns 'padding_free=True is "
            "temporarily unavailable after a refactor' and falls back to padding), so no padding-free "
            "TRL row exists; precompute rows use precompute_ref_batch_size = ref_batch, like the fast "
            "trainer's reference pass"
        ),
        pairs_per_step=args.pairs_per_step,
        prompt_len=args.prompt_len,
        completion_len=args.completion_len,
        warmup_steps=args.warmup,
        timed_steps=args.steps,
        k=args.k,
        gen_prompts=args.gen_prompts,
        gen_new_tokens=args.gen_new_tokens,
        hf_new_tokens=args.hf_new_tokens,
        gen_batch=args.gen_batch,
    )
    print(json.dumps(result["versions"]), flush=True)

    if "check" not in skip:
        try:
            result["fp32_check"] = run_fp32_check(args, device)
        except Exception as exc:
            traceback.print_exc()
            result["fp32_check"] = dict(error=f"{type(exc).__name__}: {exc}")
            reset_peak(device)
    t0 = time.perf_counter()
    model = build_model(config, device)
    tok = build_tokenizer(config.vocab_size)
    print(f"model built in {time.perf_counter() - t0:.1f} s", flush=True)
    pairs = make_pairs(args.pairs_per_step * (args.warmup + args.steps), args, config.vocab_size)
    tokens_per_step = args.pairs_per_step * 2 * (args.prompt_len + args.completion_len)
    result["setup"]["tokens_per_step"] = tokens_per_step

    def save() -> None:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")

    main_lora = dict(r=args.lora_r, alpha=2 * args.lora_r, targets="all-linear")
    paper_lora = dict(PAPER_LORA) if not args.tiny else dict(PAPER_LORA, r=4, alpha=8)
    baseline: dict[str, float] = {}

    def trl_row(label: str, lora: dict[str, Any], precompute: bool, ckpt: bool, micros: list[int]) -> None:
        nonlocal model
        for micro in micros:  # the first micro-batch that fits
            try:
                row, model = run_trl(
                    model,
                    tok,
                    pairs,
                    args,
                    device,
                    out,
                    tokens_per_step,
                    precompute=precompute,
                    ckpt=ckpt,
                    micro=micro,
                    lora=lora,
                    label=label + (f", {micro} pairs/forward" if micro != args.pairs_per_step else ""),
                    setup_baseline=baseline.get(lora_label(lora)),
                )
            except Exception as exc:
                traceback.print_exc()
                row = dict(name=label, micro=micro, error=f"{type(exc).__name__}: {exc}")
                reset_peak(device)
            if not precompute and "error" not in row:
                baseline[lora_label(lora)] = row["setup_s"]
            result["train"].append(row)
            print(f"  {row}", flush=True)
            save()
            if "error" not in row:
                return

    def fast_row(micro: int, lora: dict[str, Any], options: dict[str, Any]) -> None:
        nonlocal model
        try:
            row, model = run_fast(
                model, tok, pairs, args, device, out, tokens_per_step, micro, lora=lora, options=options
            )
        except Exception as exc:
            traceback.print_exc()
            row = dict(name=f"sf-fast-score-dpo mb={micro} {options}", error=f"{type(exc).__name__}: {exc}")
            reset_peak(device)
        result["train"].append(row)
        print(f"  {row}", flush=True)
        save()

    trl_micros = [args.pairs_per_step] + [m for m in (2, 1) if m < args.pairs_per_step]
    with tempfile.TemporaryDirectory() as out:
        if "stock" not in skip:
            trl_row("trl-dpo default (grad ckpt, ref forward every step)", main_lora, False, True, [4])
        if "trl-best" not in skip:
            trl_row("trl-dpo precompute_ref_log_probs, grad ckpt", main_lora, True, True, [4])
            trl_row("trl-dpo precompute_ref_log_probs, no grad ckpt", main_lora, True, False, trl_micros)
        if "fast" not in skip:
            for micro in (int(m) for m in args.micro.split(",") if m):
                fast_row(micro, main_lora, {})
            for spec in filter(None, args.fast_variants.split(";")):
                micro_s, _, opts = spec.partition(":")
                options = {k: v == "1" for k, v in (o.split("=") for o in opts.split(",") if o)}
                fast_row(int(micro_s), main_lora, options)
        if "paper" not in skip:
            trl_row("trl-dpo default (grad ckpt, ref forward every step)", paper_lora, False, True, [4])
            trl_row("trl-dpo precompute_ref_log_probs, no grad ckpt", paper_lora, True, False, trl_micros)
            fast_row(args.pairs_per_step, paper_lora, {})
    summarise(result)
    save()
    if "gen" not in skip:
        result["generation"] = {}
        run_generation(model, tok, args, device, result["generation"], save)
    print_table(result)
    save()
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
