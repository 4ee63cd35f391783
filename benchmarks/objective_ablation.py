"""The paper's objective ablation on the CPU demo setting: Score-DPO vs DPO, PPO and SFT-on-best.

Every run starts from the same warmed-up tiny generator (``sf train demo``'s task family: scores
known in advance, workflows run for real in the sandbox, scripted executor) and runs the same
loop (3 iterations, k = 8, 12 training tasks) with one objective and one seed; the seed changes
the LoRA initialisation, the sampling and the pair draw. Reported per objective: the mean score
of workflows sampled on the 8 held-out tasks with the final adapter (16 per task), as mean ±
standard deviation over seeds, plus the training tasks' mean score at the last iteration.

Runs under each profile of ``--profiles`` (``ours``, ``scoreflow``; see ``sf_train.profiles``).
In this setting the demo keeps its own generator prompt, tokenizer, k, N, iterations and
timeout (set explicitly, so they win over any profile); what the ``scoreflow`` profile changes
is ScoreFlow's operator style (its Custom prompt form and system message), its validity
filters (HotpotQA: sim_threshold 0.75 vs its template, banned substrings, up to 500
resamples), LLM answer extraction before F1 (the scripted executor extracts exactly), and no
BOS in training (the demo's tokenizer has none). The scoreflow profile reads ScoreFlow's
strings from a checkout (``--scoreflow-source DIR`` or ``$SF_SCOREFLOW_SOURCE``).

    python benchmarks/objective_ablation.py [--seeds 0,1,2] [--objectives score-dpo,dpo,ppo,sft-on-best]
                                            [--profiles ours,scoreflow] [--scoreflow-source DIR]
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


def _rejections(run_dir: Path) -> int:
    """Validity-filter rejections recorded over the run's stages (resampled ones included)."""
    return sum(
        sum(1 for line in path.read_text().splitlines() if line.strip())
        for path in run_dir.glob("*/rejections.jsonl")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--objectives", default="score-dpo,dpo,ppo,sft-on-best")
    parser.add_argument("--profiles", default="ours,scoreflow")
    parser.add_argument("--scoreflow-source", default=os.environ.get("SF_SCOREFLOW_SOURCE"))
    parser.add_argument("--out", default="/tmp/sf-train-ablation")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    from sf_train.demo import demo_problems, run_demo, warm_up

    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    objectives = args.objectives.split(",")
    profiles = args.profiles.split(",")
    unknown = [p for p in profiles if p not in ("ours", "scoreflow")]
    if unknown:
        print(f"error: unknown profile {unknown[0]!r}; choose from ours, scoreflow", file=sys.stderr)
        return 2
    if "scoreflow" in profiles and not args.scoreflow_source:
        print(
            "error: the scoreflow profile reads ScoreFlow's prompts from your checkout: "
            "git clone https://github.com/Gen-Verse/ScoreFlow and pass --scoreflow-source DIR",
            file=sys.stderr,
        )
        return 2
    start = time.time()
    host = machine()
    warmup = warm_up(out / "warmup-model", demo_problems(range(12)))
    rows = []
    for profile, objective, seed in ((p, o, s) for p in profiles for o in objectives for s in seeds):
        t0 = time.time()
        extra = {"scoreflow_source": args.scoreflow_source} if profile == "scoreflow" else {}
        result = run_demo(
            out / f"{profile}-{objective}-s{seed}",
            objective=objective,
            seed=seed,
            warmup_model=warmup,
            reporter=lambda line: None,
            plot=False,
            profile=profile,
            **extra,
        )
        rejected = _rejections(out / f"{profile}-{objective}-s{seed}" / "run")
        row = {
            "profile": profile,
            "objective": objective,
            "seed": seed,
            "heldout_before": result.heldout[0]["mean_score"],
            "heldout_final": result.eval["mean_score"],
            "train_scores": [m["mean_score"] for m in result.iterations],
            "failed_final": result.eval["failed_samples"],
            "rejections": rejected,
            "seconds": round(time.time() - t0, 1),
        }
        rows.append(row)
        print(
            f"{profile:>9} {objective:>12} seed {seed}: held-out {row['heldout_before']:.3f} -> "
            f"{row['heldout_final']:.3f}"
            f"  train {' '.join(f'{x:.3f}' for x in row['train_scores'])}  rejected {rejected}"
            f"  ({row['seconds']} s)",
            flush=True,
        )

    summary: dict[str, dict[str, dict[str, float]]] = {}
    for profile in profiles:
        mine = [r for r in rows if r["profile"] == profile]
        print()
        print(f"profile {profile} (on {host.get('cpu', 'unknown CPU')}, {host.get('cpus')} CPUs)")
        print(f"{'objective':>12}  {'held-out final (mean ± sd)':>28}  {'train last iter':>16}  seeds")
        summary[profile] = {}
        for objective in objectives:
            finals = [r["heldout_final"] for r in mine if r["objective"] == objective]
            lasts = [r["train_scores"][-1] for r in mine if r["objective"] == objective]
            sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
            summary[profile][objective] = {
                "heldout_final_mean": statistics.fmean(finals),
                "heldout_final_sd": sd,
                "train_last_mean": statistics.fmean(lasts),
                "n": len(finals),
            }
            print(
                f"{objective:>12}  {statistics.fmean(finals):>20.3f} ± {sd:.3f}  "
                f"{statistics.fmean(lasts):>16.3f}  {len(finals)}"
            )
        base = statistics.fmean(r["heldout_before"] for r in mine)
        print(
            f"(held-out mean score before training: {base:.3f}; "
            f"{sum(r['rejections'] for r in mine)} workflows rejected by validity filters)"
        )
    print(f"(total {time.time() - start:.0f} s)")
    base = statistics.fmean(r["heldout_before"] for r in rows)
    if args.json_path:
        Path(args.json_path).write_text(
            json.dumps(
                {
                    "machine": host,
                    "profiles": profiles,
                    "rows": rows,
                    "summary": summary,
                    "heldout_before": base,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
