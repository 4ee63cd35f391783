"""Prometheus text-format metrics for the service (no client library: a few counters and histograms)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (seconds) of the latency histograms."""


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs
    )
    return "{" + inner + "}"


class Metrics:
    """Thread-safe counters, gauges (read on render) and histograms, rendered as Prometheus text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._hist: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}
        self._gauges: dict[str, Callable[[], float]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        """Declare a metric's type (``counter``, ``gauge``, ``histogram``) and help line."""
        self._help[name] = (kind, text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record ``value`` (seconds) in the histogram ``name``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._hist[name]
            cells = series.get(key)
            if cells is None:
                cells = series[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)  # buckets, +Inf/count, sum
            for i, bound in enumerate(LATENCY_BUCKETS):
                if value <= bound:
                    cells[i] += 1
            cells[-2] += 1
            cells[-1] += value

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Register a gauge whose value ``read()`` gives at render time."""
        self._gauges[name] = read

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (0 when never incremented)."""
        with self._lock:
            return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []

        def head(name: str) -> None:
            if name in self._help:
                kind, text = self._help[name]
                lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            counters = {k: dict(v) for k, v in self._counters.items()}
            hists = {k: {kk: list(vv) for kk, vv in v.items()} for k, v in self._hist.items()}
        for name in sorted(set(counters) | {n for n, (k, _) in self._help.items() if k == "counter"}):
            head(name)
            for key, val in sorted(counters.get(name, {}).items()):
                lines.append(f"{name}{_labels(key)} {val:g}")
        for name, read in sorted(self._gauges.items()):
            head(name)
            lines.append(f"{name} {read():g}")
        for name in sorted(hists):
            head(name)
            for key, cells in sorted(hists[name].items()):
                for i, bound in enumerate(LATENCY_BUCKETS):
                    lines.append(f"{name}_bucket{_labels(key + (('le', f'{bound:g}'),))} {cells[i]:g}")
                lines.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {cells[-2]:g}")
                lines.append(f"{name}_count{_labels(key)} {cells[-2]:g}")
                lines.append(f"{name}_sum{_labels(key)} {cells[-1]:.6f}")
        return "\n".join(lines) + "\n"
