"""`sf train report`: solve rate and loss per iteration, as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sf_train.errors import TrainConfigError

__all__ = ["load_run", "plot_run"]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """Read a run directory: per-iteration metrics, held-out and final evaluations.

    Raises:
        TrainConfigError: the directory holds no finished iteration.
    """
    run_dir = Path(run_dir)
    iterations = [
        _json(p)
        for p in sorted(run_dir.glob("iter-*/metrics.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    ]
    if not iterations:
        raise TrainConfigError(f"{run_dir} has no finished iteration (no iter-*/metrics.json)")
    heldout = []
    for i in range(len(iterations) + 1):
        name = f"heldout-{i}" if i < len(iterations) else "heldout-final"
        path = run_dir / name / "metrics.json"
        if path.exists():
            heldout.append((i, _json(path)["mean_score"]))
    final = run_dir / "eval" / "metrics.json"
    return {
        "iterations": iterations,
        "heldout": heldout,
        "eval": _json(final) if final.exists() else None,
    }


def plot_run(run_dir: str | Path, png: str | Path | None = None) -> Path:
    """Plot mean score (ScoreFlow's solve rate) and training loss per iteration; return the PNG path.

    The left panel shows the mean score of the workflows sampled at the start of each iteration
    (training tasks), the held-out tasks' mean score before each iteration and after the last
    (``eval_each_iteration``), and the final test-split score. The right panel shows each
    iteration's training loss per logged step.

    Raises:
        TrainConfigError: nothing to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    png = Path(png) if png else run_dir / "report.png"
    its = run["iterations"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [m["iteration"] for m in its]
    left.plot(xs, [m["mean_score"] for m in its], "o-", label="training tasks (sampled at iteration start)")
    if run["heldout"]:
        left.plot(
            [x for x, _ in run["heldout"]], [y for _, y in run["heldout"]], "s--", label="held-out tasks"
        )
    if run["eval"] is not None:
        left.plot(
            [len(its)],
            [run["eval"]["mean_score"]],
            "*",
            markersize=14,
            label="evaluation tasks, final adapter",
        )
    left.set_xlabel("iteration")
    left.set_ylabel("mean score (solve rate)")
    left.set_ylim(-0.02, 1.02)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    offset = 0
    for m in its:
        losses = m.get("train_losses") or []
        if losses:
            right.plot(range(offset, offset + len(losses)), losses, label=f"iteration {m['iteration']}")
            offset += len(losses)
    right.set_xlabel("logged training step")
    right.set_ylabel("loss")
    right.grid(alpha=0.3)
    if offset:
        right.legend(fontsize=8)
    objective = its[0].get("train", {}).get("objective", "")
    fig.suptitle(f"sf-train {objective}: {run_dir}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
