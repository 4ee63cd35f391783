"""``sf bench run``'s progress on stderr: the per-dataset bar and the generator's progress line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Bar", "generation_progress"]


class Bar:
    """Progress on stderr: a redrawn line on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.dataset = ""
        self.total = self.done = self.new = 0
        self.score = 0.0
        self.errors = self.infra = 0
        self.t0 = self.last = 0.0

    def start(self, dataset: str, total: int, done: int) -> None:
        self.dataset, self.total, self.done, self.new = dataset, total, done, 0
        self.score, self.errors, self.infra = 0.0, 0, 0
        self.t0 = self.last = time.monotonic()
        if done:
            self._line(f"{dataset}: resuming, {done}/{total} already done", final=True)
        self._draw(force=True)

    def advance(self, dataset: str, record: Any) -> None:
        self.done += 1
        if record.infrastructure:  # ours: not a score, not in the mean
            self.infra += 1
        else:
            self.new += 1
            self.score += record.score
            if record.error:
                self.errors += 1
        self._draw()

    def finish(self, dataset: str) -> None:
        self._draw(force=True, final=True)

    def _draw(self, force: bool = False, final: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        rate = self.new / (now - self.t0) if now > self.t0 and self.new else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        mean = self.score / self.new if self.new else 0.0
        text = (
            f"{self.dataset:<9} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            f"  score {mean:.3f}  errors {self.errors}"
            + (f"  infra {self.infra}" if self.infra else "")
            + f"  {rate:.1f}/s"
            + (f"  eta {eta:.0f}s" if rate and not final else f"  {now - self.t0:.1f}s")
        )
        self._line(text, final=final)

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def generation_progress(stream: Any = None) -> Callable[[int, int], None]:
    """``progress(done, total)`` of a generator: a line on stderr at most every 5 s, and at the end."""
    out = stream or sys.stderr
    last = [0.0]
    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 5.0:
            return
        last[0] = now
        out.write(f"generating workflows: {done}/{total} problems  {now - t0:.1f}s\n")
        out.flush()

    return progress
