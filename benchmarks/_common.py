"""Shared helpers for the benchmark scripts: timing stats, tables, JSON output, data paths."""

from __future__ import annotations

import gzip
import json
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class Row:
    mode: str
    concurrency: int
    n: int
    passed: int
    seconds: float
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    def summary(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("latencies")
        d.update(
            per_s=round(self.rate, 2),
            p50_ms=round(self.pct(0.5), 2),
            p95_ms=round(self.pct(0.95), 2),
            mean_ms=round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else None,
        )
        return d


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import os

    info: dict[str, object] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
        info["cpu"] = model
    except (OSError, StopIteration):
        pass
    try:
        info["docker"] = subprocess.run(
            ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def write_json(path: str | None, payload: dict[str, object]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")


def humaneval_programs(path: Path | None = None) -> list[tuple[str, str]]:
    """(task_id, program) for HumanEval's canonical solutions with their tests."""
    src = path or SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz"
    if not src.exists():
        try:
            from importlib.resources import files

            src = Path(str(files("sf_bench").joinpath("data/humaneval/HumanEval.jsonl.gz")))
        except Exception:
            pass
    if not src.exists():
        raise SystemExit(f"HumanEval data not found at {src}; pass --data PATH/HumanEval.jsonl.gz")
    out = []
    with gzip.open(src, "rt") as fh:
        for line in fh:
            p = json.loads(line)
            out.append(
                (
                    p["task_id"],
                    p["prompt"]
                    + p["canonical_solution"]
                    + "\n"
                    + p["test"]
                    + "\n"
                    + f"check({p['entry_point']})\n",
                )
            )
    return out
