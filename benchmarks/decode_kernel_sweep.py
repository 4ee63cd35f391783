# ruff: noqa: B023  (the closures are called inside the loop that defines them)
"""Sweep of the fast decoder's kernels on one GPU, each timed in-graph over the model's 32 layers.

Measures, at Llama-3.1-8B shapes (32 heads, 8 KV heads, head dim 128, hidden 4096, MLP 14336,
vocabulary 128256) and the decoder's batch (``--batch`` rows = prompts × ``--k`` samples, a
``--prefix``-token shared prompt cache and a ``--gen``-token generated cache):

* the flash-decoding attention (:func:`sf_train.fast.attention_kernels.decode_attention`) for a grid of
  launch options (keys per block, warps, pipeline stages, generated/prefix split sizes): one CUDA
  graph of the 32 layers' calls (distinct caches per layer, so nothing is served from L2) replayed
  at the given cache positions; bytes of K/V read per second against the copy bandwidth;
* the four projection GEMMs of a decode step (qkv, o, gate/up, down, and the LM head) in several
  layouts and cuBLAS settings, again as a graph of 32 calls over distinct weights (isolated calls
  are launch-bound at this size).

Prints a table per part and writes everything to ``--json``; ``--best`` gets the fastest attention
options (mean over the positions) as JSON, for ``train_throughput.py --attention-options``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def graph_ms(fn: Callable[[], None], before: Callable[[], None] | None = None, reps: int = 10) -> float:
    """Median ms of one replay of a CUDA graph of ``fn`` (``before`` runs ahead of every replay)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()  # compile / warm up outside the capture
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    times = []
    for i in range(reps + 3):
        if before is not None:
            before()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        if i >= 3:
            times.append(a.elapsed_time(b))
    del g
    return statistics.median(times)


def copy_gbps(device: torch.device) -> float:
    src = torch.randn(1 << 30, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    ms = graph_ms(lambda: dst.copy_(src))
    return 2 * src.numel() * 2 / (ms / 1e3) / 1e9


def two_launch_configs(gen: int) -> list[dict[str, Any]]:
    """Launch options of the two-launch attention: block, warps, stages, split sizes."""
    base = dict(split_prefix=128, split_gen=gen, block_n=32)
    configs: list[dict[str, Any]] = [dict(base)]
    for bn, w, st in itertools.product((32, 64, 128), (4, 8), (2, 3, 4)):
        configs.append(dict(base, block_n=bn, num_warps=w, num_stages=st))
    for bn, w in ((64, 4), (64, 8), (32, 4)):
        configs.append(dict(base, block_n=bn, num_warps=w, split_gen=512))
        configs.append(dict(base, block_n=bn, num_warps=w, split_gen=256))
    for sp in (64, 256, 512):
        configs.append(dict(base, block_n=64, num_warps=4, split_prefix=sp))
    return configs


def one_launch_configs(gen: int) -> list[dict[str, Any]]:
    """Options of the one-launch attention, the decoder's default first.

    Then: the merge unrolled, the prefix splits' own block size against their split size (a prefix
    program's serial chain is one block per iteration), the generated cache's block, warps, stages.
    """
    base = dict(split_prefix=128, split_gen=gen, block_n=32, one_launch=True)
    configs: list[dict[str, Any]] = [dict(base), dict(base, unroll_merge=True)]
    for bp, sp, unroll in itertools.product((64, 128), (128, 256), (True, False)):
        configs.append(dict(base, block_prefix=bp, split_prefix=sp, unroll_merge=unroll))
    configs.append(dict(base, block_prefix=256, split_prefix=256))
    configs.append(dict(base, block_prefix=128, num_warps=8))
    configs.append(dict(base, block_prefix=128, num_stages=2))
    configs.append(dict(base, block_prefix=128, block_n=16))
    configs.append(dict(base, block_prefix=128, block_n=64, num_stages=2))
    configs.append(dict(base, split_prefix=256))
    return configs


def attention_sweep(args: argparse.Namespace, device: torch.device, bw: float) -> list[dict[str, Any]]:
    from sf_train.fast.attention_kernels import DecodeAttentionScratch, decode_attention
    from sf_train.fast.attention_one_launch import decode_attention_one_launch

    L, B, k, P, T, H, Hkv, D = args.layers, args.batch, args.k, args.prefix, args.gen, 32, 8, 128
    G = B // k
    dt = torch.bfloat16
    kp = [torch.randn(G, Hkv, P, D, dtype=dt, device=device) for _ in range(L)]
    vp = [torch.randn(G, Hkv, P, D, dtype=dt, device=device) for _ in range(L)]
    kg = [torch.randn(B, Hkv, T, D, dtype=dt, device=device) for _ in range(L)]
    vg = [torch.randn(B, Hkv, T, D, dtype=dt, device=device) for _ in range(L)]
    q = torch.randn(B, H, D, dtype=dt, device=device)
    start = torch.zeros(G, dtype=torch.long, device=device)
    slot = torch.zeros(1, dtype=torch.long, device=device)
    out = torch.empty(B, H, D, dtype=dt, device=device)
    slots = [int(x) for x in args.slots.split(",")]

    # reference for a correctness check of every config (layer 0, first slot)
    def run_one(scratch: Any, layer: int) -> None:
        attend = decode_attention_one_launch if scratch.one_launch else decode_attention
        attend(
            q,
            kp[layer],
            vp[layer],
            start,
            kg[layer],
            vg[layer],
            slot,
            k=k,
            scale=D**-0.5,
            scratch=scratch,
            out=out,
        )

    if args.one_launch:
        configs = one_launch_configs(T)
    else:
        configs = two_launch_configs(T)
    ref = None
    rows = []
    t0 = time.time()
    for cfg in configs:
        if time.time() - t0 > args.attn_budget_s:
            print(f"attention sweep: time budget spent, {len(rows)} of {len(configs)} configs", flush=True)
            break
        row: dict[str, Any] = dict(options=cfg)
        try:
            sc = DecodeAttentionScratch(
                batch=B, heads=H, head_dim=D, prefix_len=P, gen_len=T, device=device, **cfg
            )
            slot.fill_(slots[0])
            run_one(sc, 0)
            torch.cuda.synchronize()
            if ref is None:
                ref = out.float().clone()
            row["max_abs_diff_vs_default"] = (out.float() - ref).abs().max().item()
            for sv in slots:
                slot.fill_(sv)

                def step(sc: Any = sc) -> None:
                    for layer in range(L):
                        run_one(sc, layer)

                ms = graph_ms(step)
                nbytes = L * 2 * D * 2 * Hkv * (G * P + B * (sv + 1))
                row[f"ms_ctx{P + sv + 1}"] = round(ms, 4)
                row[f"of_copy_bw_ctx{P + sv + 1}"] = round(nbytes / (ms / 1e3) / 1e9 / bw, 3)
            row["mean_ms"] = round(statistics.mean(row[f"ms_ctx{P + sv + 1}"] for sv in slots), 4)
        except Exception as exc:
            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        rows.append(row)
        print("attn", json.dumps(row), flush=True)
    for t in (kp, vp, kg, vg):
        t.clear()
    torch.cuda.empty_cache()
    return rows


def gemm_sweep(args: argparse.Namespace, device: torch.device, bw: float) -> list[dict[str, Any]]:
    L, B = args.layers, args.batch
    dt = torch.bfloat16
    shapes = dict(qkv=(6144, 4096), o=(4096, 4096), gate_up=(28672, 4096), down=(4096, 14336))
    rows = []
    F = torch.nn.functional
    for name, (n_out, n_in) in shapes.items():
        x = torch.randn(B, n_in, dtype=dt, device=device)
        ws = [torch.randn(n_out, n_in, dtype=dt, device=device) * 0.02 for _ in range(L)]
        outs = torch.empty(B, n_out, dtype=dt, device=device)
        want = F.linear(x, ws[0]).float()
        variants: dict[str, Callable[[], Callable[[], None]]] = {}

        def linear() -> Callable[[], None]:
            def f() -> None:
                for w in ws:
                    torch.matmul(x, w.t(), out=outs)

            return f

        def swapped() -> Callable[[], None]:  # out^T = W x^T: cuBLAS sees m = n_out, n = batch
            outt = torch.empty(n_out, B, dtype=dt, device=device)

            def f() -> None:
                for w in ws:
                    torch.matmul(w, x.t(), out=outt)
                    outs.copy_(outt.t())

            return f

        variants["F.linear (W [out,in], TN)"] = linear
        variants["swapped: (W x^T)^T + copy"] = swapped
        results = {}
        for label, make in variants.items():
            try:
                fn = make()
                ms = graph_ms(fn)
                fn()
                err = (outs.float() - F.linear(x, ws[-1]).float()).abs().max().item()
                results[label] = (ms, err)
            except Exception as exc:
                traceback.print_exc()
                results[label] = (float("nan"), str(exc)[:100])
        for flag in (False,):
            old = torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = flag
            try:
                results[f"F.linear, bf16 reduced-precision reduction {flag}"] = (graph_ms(linear()), 0.0)
            finally:
                torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = old
        for lib in ("cublaslt", "cublas"):
            old_lib = torch.backends.cuda.preferred_blas_library()
            try:
                torch.backends.cuda.preferred_blas_library(lib)
                results[f"F.linear, preferred_blas_library={lib}"] = (graph_ms(linear()), 0.0)
            except Exception as exc:
                results[f"F.linear, preferred_blas_library={lib}"] = (float("nan"), str(exc)[:100])
            finally:
                torch.backends.cuda.preferred_blas_library(old_lib)
        # weights stored transposed [in, out] (NN GEMM)
        wts = [w.t().contiguous() for w in ws]
        ws.clear()
        torch.cuda.empty_cache()

        def nn() -> None:
            for w in wts:
                torch.matmul(x, w, out=outs)

        try:
            results["x @ Wt (Wt [in,out] contiguous, NN)"] = (graph_ms(nn), 0.0)
        except Exception as exc:
            results["x @ Wt (Wt [in,out] contiguous, NN)"] = (float("nan"), str(exc)[:100])
        wts.clear()
        del want
        torch.cuda.empty_cache()
        nbytes = L * n_out * n_in * 2
        for label, (ms, err) in results.items():
            row = dict(
                gemm=name,
                shape=[B, n_in, n_out],
                variant=label,
                ms_32_layers=round(ms, 4),
                gb_per_s=round(nbytes / (ms / 1e3) / 1e9, 1),
                of_copy_bw=round(nbytes / (ms / 1e3) / 1e9 / bw, 3),
                max_abs_diff=err,
            )
            rows.append(row)
            print("gemm", json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--best", help="write the fastest attention options (JSON) here")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--prefix", type=int, default=512)
    p.add_argument("--gen", type=int, default=1001, help="generated cache length (new tokens + 1)")
    p.add_argument("--slots", default="0,488,976", help="generated positions timed (cache positions)")
    p.add_argument("--attn-budget-s", type=float, default=200.0)
    p.add_argument("--skip", default="", help="attention,gemm")
    p.add_argument(
        "--one-launch", action="store_true", help="sweep the one-launch attention (the decoder's default)"
    )
    args = p.parse_args(argv)
    device = torch.device("cuda")
    torch.manual_seed(0)
    bw = copy_gbps(device)
    print(f"copy bandwidth {bw:.0f} GB/s on {torch.cuda.get_device_name()}", flush=True)
    result: dict[str, Any] = dict(
        device=torch.cuda.get_device_name(),
        torch=torch.__version__,
        copy_gb_per_s=round(bw, 1),
        args=vars(args),
    )
    import triton

    result["triton"] = triton.__version__
    skip = set(args.skip.split(","))
    if "attention" not in skip:
        rows = attention_sweep(args, device, bw)
        result["attention"] = rows
        ok = [r for r in rows if "mean_ms" in r and r["max_abs_diff_vs_default"] < 0.05]
        ok.sort(key=lambda r: r["mean_ms"])
        print("\nattention, 32 layers, fastest first (ms per step at each context; of copy bandwidth)")
        for r in ok:
            cols = "  ".join(f"{key[3:]}={v}" for key, v in r.items() if key.startswith(("ms_", "of_")))
            print(f"  {r['mean_ms']:8.4f} ms  {json.dumps(r['options'])}  {cols}")
        if ok:
            result["attention_best"] = ok[0]["options"]
            if args.best:
                Path(args.best).write_text(json.dumps(ok[0]["options"]))
    if "gemm" not in skip:
        result["gemm"] = gemm_sweep(args, device, bw)
        print("\ngemm, 32 layers")
        for r in result["gemm"]:
            print(f"  {r['gemm']:8s} {r['ms_32_layers']:8.4f} ms {r['gb_per_s']:7.1f} GB/s  {r['variant']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
