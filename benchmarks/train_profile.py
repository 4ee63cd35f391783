"""Where sf-train's fast Score-DPO step spends its time and memory (one GPU).

    python benchmarks/train_profile.py [--micro 2] [--tiny] [--variants KEY=V,...;...]

Same model and data as ``train_throughput.py`` (a Llama-3.1-8B-shaped random bf16 model, LoRA
r = 16 on all linear layers, 512-token prompts, 384-token completions). For each variant
(``;``-separated sets of :class:`sf_train.fast.FastScoreDPOTrainer` keyword options) it prints:

* **saved activations** of one micro-batch forward, by autograd node (bytes of every tensor
  kept for backward, each storage counted once), and memory after the forward and at the peak
  of the backward;
* **kernels**: the top CUDA kernels of three optimiser steps (``torch.profiler``), grouped into
  GEMM, attention, Triton, elementwise/other, against the steps' wall time;
* **step time** of ``--steps`` optimiser steps (median) and the peak memory of training.

It is a diagnostic: ``train_throughput.py`` is the benchmark of record.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import train_throughput as tt  # noqa: E402

GIB = 1024**3


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--micro", type=int, default=2, help="pairs per forward")
    p.add_argument("--pairs-per-step", type=int, default=4)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--completion-len", type=int, default=384)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--ref-batch", type=int, default=16)
    p.add_argument(
        "--variants", default="", help="';'-separated 'key=value,...' trainer options ('' = default)"
    )
    p.add_argument("--no-kernels", action="store_true", help="skip the torch.profiler part")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.tiny:
        args.prompt_len, args.completion_len, args.lora_r, args.steps = 32, 24, 4, 2
    args.warmup = 1
    return args


def parse_variant(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value else True
    return out


def live_cuda_tensors(top: int = 8) -> list[dict[str, Any]]:
    """The largest groups (dtype, shape) of CUDA tensors alive now, by storage."""
    import gc

    seen: set[int] = set()
    groups: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for obj in gc.get_objects():
        try:
            if isinstance(obj, torch.Tensor) and obj.is_cuda:
                st = obj.untyped_storage()
                if st.data_ptr() in seen:
                    continue
                seen.add(st.data_ptr())
                key = f"{str(obj.dtype).removeprefix('torch.')}{tuple(obj.shape)}"
                groups[key][0] += 1
                groups[key][1] += st.nbytes()
        except Exception:
            continue
    rows = sorted(groups.items(), key=lambda kv: -kv[1][1])[:top]
    return [dict(tensor=k, count=int(n), gib=round(b / GIB, 3)) for k, (n, b) in rows]


def saved_tensor_breakdown(trainer: Any, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Forward one micro-batch; sum the tensors autograd keeps for backward by the module that saved them."""
    model = trainer.model
    model.train()
    tt.sync(device)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    live = live_cuda_tensors() if device.type == "cuda" else []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stack = ["<outside modules>"]
    names = {}
    for name, module in model.named_modules():
        short = re.sub(r"\.\d+\.", ".*.", name)
        short = re.sub(r"^(base_model\.model\.)?(model\.)?", "", short).replace(".default", "")
        names[module] = short or type(module).__name__
    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(lambda m, *_: stack.append(names[m]) and None))
        handles.append(module.register_forward_hook(lambda m, *_: stack.pop() and None))
    seen: set[int] = {
        p.untyped_storage().data_ptr() for p in model.parameters()
    }  # weights are not activations
    by_label: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    shapes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            st = t.untyped_storage()
            key, size = st.data_ptr(), st.nbytes()
        except Exception:
            return t
        if key not in seen and size:
            seen.add(key)
            label = stack[-1]
            by_label[label][0] += 1
            by_label[label][1] += size
            shapes[label][f"{tuple(t.shape)}:{str(t.dtype).removeprefix('torch.')}"] += 1
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with trainer.compute_loss_context_manager(), trainer.accelerator.autocast():
                loss = trainer.compute_loss(model, batch)
    finally:
        for h in handles:
            h.remove()
    tt.sync(device)
    after_forward = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    loss.backward()
    tt.sync(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    model.zero_grad(set_to_none=True)
    total = sum(v[1] for v in by_label.values())
    rows = sorted(by_label.items(), key=lambda kv: -kv[1][1])
    return dict(
        base_gib=round(base / GIB, 3),
        live_before=live,
        activations_gib=round((after_forward - base) / GIB, 3),
        backward_peak_over_base_gib=round((peak - base) / GIB, 3),
        saved_total_gib=round(total / GIB, 3),
        saved_by_module=[
            dict(module=k, tensors=int(n), gib=round(b / GIB, 3), shapes=dict(shapes[k].most_common(3)))
            for k, (n, b) in rows[:30]
        ],
    )


def kernel_profile(trainer: Any, device: torch.device, steps: int = 3) -> dict[str, Any]:
    """Profile ``steps`` optimiser steps; top kernels and a coarse split of CUDA time."""
    from torch.profiler import ProfilerActivity, profile

    it = iter(trainer.get_train_dataloader())
    batches = [next(it) for _ in range(steps * trainer.args.gradient_accumulation_steps)]
    model = trainer.model
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    tt.sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for batch in batches:
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            trainer.training_step(model, batch)
        tt.sync(device)
        wall = time.perf_counter() - start
    events = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    groups: dict[str, float] = collections.defaultdict(float)

    def group(name: str) -> str:
        low = name.lower()
        if any(s in low for s in ("gemm", "cutlass", "sm90_xmma", "nvjet", "cublas", "matmul")):
            return "gemm"
        if any(s in low for s in ("flash", "fmha", "attention", "sdpa")):
            return "attention"
        if "triton" in low or low.startswith(("_rms", "_swiglu", "rms", "swiglu")):
            return "triton"
        if "memcpy" in low or "memset" in low:
            return "copy"
        return "elementwise/other"

    total = 0.0
    for e in events:
        t = e.self_device_time_total / 1e6
        groups[group(e.key)] += t
        total += t
    top = sorted(events, key=lambda e: -e.self_device_time_total)[:30]
    cpu_top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
    return dict(
        wall_s=round(wall, 3),
        gpu_busy_s=round(total, 3),
        groups_s={k: round(v, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        kernel_launches=sum(e.count for e in events),
        top_kernels=[
            dict(name=e.key[:110], calls=e.count, s=round(e.self_device_time_total / 1e6, 4)) for e in top
        ],
        top_cpu_ops=[
            dict(name=e.key[:80], calls=e.count, s=round(e.self_cpu_time_total / 1e6, 4)) for e in cpu_top
        ],
    )


def run_variant(
    model: Any, tok: Any, pairs: list[dict], args: argparse.Namespace, device: torch.device, options: dict
) -> tuple[dict[str, Any], Any]:
    from datasets import Dataset

    from sf_train import ScoreDPOConfig
    from sf_train.fast import FastScoreDPOTrainer

    with tempfile.TemporaryDirectory() as out:
        cfg = ScoreDPOConfig(
            **tt.common_args(args, device, out),
            per_device_train_batch_size=args.micro,
            gradient_accumulation_steps=args.pairs_per_step // args.micro,
            gradient_checkpointing=False,
            precompute_ref_batch_size=args.ref_batch,
            objective="score-dpo",
        )
        tt.reset_peak(device)
        t0 = time.perf_counter()
        trainer = FastScoreDPOTrainer(
            model,
            args=cfg,
            train_dataset=Dataset.from_list(pairs),
            processing_class=tok,
            peft_config=tt.lora_config(args.lora_r),
            **options,
        )
        row: dict[str, Any] = dict(options=options, setup_s=round(time.perf_counter() - t0, 2))
        row["ref_s"], row["ref_pairs"] = round(trainer.ref_seconds, 3), trainer.ref_pairs
        try:
            tt.perturb_lora(trainer.model, device)
            batch = trainer.data_collator([trainer.train_dataset[i] for i in range(args.micro)])
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            row["memory"] = saved_tensor_breakdown(trainer, batch, device)
            # second reference pass, now warm: its steady-state rate
            sub = trainer.train_dataset.select(range(min(len(pairs), 4 * args.ref_batch)))
            before = trainer.ref_seconds
            trainer.precompute_reference(sub)
            row["ref_warm_s_per_pair"] = round((trainer.ref_seconds - before) / len(sub), 5)
            if not args.no_kernels and device.type == "cuda":
                row["kernels"] = kernel_profile(trainer, device)
            tt.reset_peak(device)
            timer = tt.step_timer(device)
            trainer.add_callback(timer)
            trainer.train()
            row["step_s"] = round(statistics.median(timer.times[args.warmup :] or timer.times), 4)
            row["step_s_all"] = [round(t, 4) for t in timer.times]
            row["train_peak_gib"] = tt.peak_gib(device)
            row["effective_step_s"] = round(
                row["step_s"] + row["ref_warm_s_per_pair"] * args.pairs_per_step, 4
            )
        finally:
            model = tt.release(trainer)
            del trainer
            tt.reset_peak(device)
    return row, model


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    config = tt.model_config(args.tiny)
    model = tt.build_model(config, device)
    tok = tt.build_tokenizer(config.vocab_size)
    n_pairs = args.pairs_per_step * (args.warmup + args.steps + 4)
    pairs = tt.make_pairs(max(n_pairs, 4 * args.ref_batch), args, config.vocab_size)
    results = []
    for text in args.variants.split(";"):
        options = parse_variant(text)
        try:
            row, model = run_variant(model, tok, pairs, args, device, options)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            row = dict(options=options, error=f"{type(exc).__name__}: {exc}")
            tt.reset_peak(device)
        results.append(row)
        print(json.dumps(row, indent=1), flush=True)
    print("\n| variant | step s | +ref s | eff. step s | train peak GiB | activations GiB | saved GiB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['options']} | error: {r['error'][:80]} |")
            continue
        m = r["memory"]
        ref = r["ref_warm_s_per_pair"] * args.pairs_per_step
        cells = [r["options"] or "default", r["step_s"], f"{ref:.3f}", r["effective_step_s"]]
        cells += [r["train_peak_gib"], m["activations_gib"], m["saved_total_gib"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(dict(versions=tt.versions(), micro=args.micro, rows=results), indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
