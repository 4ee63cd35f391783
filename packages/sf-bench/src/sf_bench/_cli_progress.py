"""``sf bench run``'s progress on stderr: the per-dataset bar and the generator's progress line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["Bar", "generation_progress"]


class Bar:
    """Draw the harness's progress events, one bar per dataset.

    They are drawn with :class:`sf_sandbox.progress.ProgressBar`: a live bar on a terminal, a line
    every 10 % (or 30 s) otherwise.
    """

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.bar: Any = None
        self.new = 0
        self.score = 0.0
        self.errors = self.infra = 0
        self.t0 = 0.0

    def start(self, dataset: str, total: int, done: int) -> None:
        from sf_sandbox.progress import ProgressBar

        self.new, self.score, self.errors, self.infra = 0, 0.0, 0, 0
        self.t0 = time.monotonic()
        self.bar = ProgressBar(dataset, total, unit="samples", done=done, stream=self.stream)
        if done:
            self.bar.log(f"{dataset}: resuming, {done}/{total} already done")

    def advance(self, dataset: str, record: Any) -> None:
        if record.infrastructure:  # ours: not a score, not in the mean
            self.infra += 1
        else:
            self.new += 1
            self.score += record.score
            if record.error:
                self.errors += 1
        self.bar.advance(1, self._status())

    def finish(self, dataset: str) -> None:
        self.bar.close(self._status(final=True))

    def _status(self, final: bool = False) -> str:
        now = time.monotonic()
        rate = self.new / (now - self.t0) if now > self.t0 and self.new else 0.0
        eta = (self.bar.total - self.bar.done) / rate if rate else 0.0
        mean = self.score / self.new if self.new else 0.0
        return (
            f"score {mean:.3f}  errors {self.errors}"
            + (f"  infra {self.infra}" if self.infra else "")
            + f"  {rate:.1f}/s"
            + (f"  eta {eta:.0f}s" if rate and not final else "")
        )


def generation_progress(stream: Any = None) -> Callable[[int, int], None]:
    """Draw a generator's ``progress(done, total)`` calls as a progress bar.

    It is drawn with :class:`sf_sandbox.progress.ProgressBar`: a live bar on a terminal; lines every
    10 % or 30 s otherwise, and at the end.
    """
    from sf_sandbox.progress import ProgressBar

    bars: list[ProgressBar] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(ProgressBar("generating workflows", total, unit="problems", stream=stream))
        bars[0].update(done)
        if done >= total:
            bars[0].close()

    return progress
