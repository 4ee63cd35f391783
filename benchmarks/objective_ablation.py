"""The paper's objective ablation on the CPU demo setting: Score-DPO vs DPO, PPO and SFT-on-best.

Every run starts from the same warmed-up tiny generator (``sf train demo``'s task family: scores
known in advance, workflows run for real in the sandbox, scripted executor) and runs the same
loop (3 iterations, k = 8, 12 training tasks) with one objective and one seed; the seed changes
the LoRA initialisation, the sampling and the pair draw. Reported per objective: the mean score
of workflows sampled on the 8 held-out tasks with the final adapter (16 per task), as mean ±
standard deviation over seeds, plus the training tasks' mean score at the last iteration.

    python benchmarks/objective_ablation.py [--seeds 0,1,2] [--objectives score-dpo,dpo,ppo,sft-on-best]
                                            [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--objectives", default="score-dpo,dpo,ppo,sft-on-best")
    parser.add_argument("--out", default="/tmp/sf-train-ablation")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    from sf_train.demo import demo_problems, run_demo, warm_up

    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    objectives = args.objectives.split(",")
    start = time.time()
    warmup = warm_up(out / "warmup-model", demo_problems(range(12)))
    rows = []
    for objective in objectives:
        for seed in seeds:
            t0 = time.time()
            result = run_demo(
                out / f"{objective}-s{seed}",
                objective=objective,
                seed=seed,
                warmup_model=warmup,
                reporter=lambda line: None,
                plot=False,
            )
            row = {
                "objective": objective,
                "seed": seed,
                "heldout_before": result.heldout[0]["mean_score"],
                "heldout_final": result.eval["mean_score"],
                "train_scores": [m["mean_score"] for m in result.iterations],
                "failed_final": result.eval["failed_samples"],
                "seconds": round(time.time() - t0, 1),
            }
            rows.append(row)
            print(
                f"{objective:>12} seed {seed}: held-out {row['heldout_before']:.3f} -> "
                f"{row['heldout_final']:.3f}"
                f"  train {' '.join(f'{x:.3f}' for x in row['train_scores'])}  ({row['seconds']} s)",
                flush=True,
            )

    print()
    print(f"{'objective':>12}  {'held-out final (mean ± sd)':>28}  {'train last iter':>16}  seeds")
    summary = {}
    for objective in objectives:
        finals = [r["heldout_final"] for r in rows if r["objective"] == objective]
        lasts = [r["train_scores"][-1] for r in rows if r["objective"] == objective]
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        summary[objective] = {
            "heldout_final_mean": statistics.fmean(finals),
            "heldout_final_sd": sd,
            "train_last_mean": statistics.fmean(lasts),
            "n": len(finals),
        }
        print(
            f"{objective:>12}  {statistics.fmean(finals):>20.3f} ± {sd:.3f}  {statistics.fmean(lasts):>16.3f}"
            f"  {len(finals)}"
        )
    base = statistics.fmean(r["heldout_before"] for r in rows)
    print(f"(held-out mean score before training: {base:.3f}; total {time.time() - start:.0f} s)")
    if args.json_path:
        Path(args.json_path).write_text(
            json.dumps(
                {"machine": machine(), "rows": rows, "summary": summary, "heldout_before": base}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
