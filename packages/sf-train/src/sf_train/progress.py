"""How ``sf train`` shows its progress: report lines, and a bar for each long stage.

Two kinds of output, both on stderr and both off with ``quiet`` (``-q``/``--quiet``):

* report lines (``Reporter``): one line per milestone of the run (a stage starts, an iteration
  ends), ``[sf-train HH:MM:SS] LINE`` by default (:func:`stderr_reporter`);
* bars: the tasks a generation stage has sampled, the workflows a scoring stage has run and
  scored, the optimiser steps of a training stage. They are drawn with
  :class:`sf_sandbox.progress.ProgressBar`, the one progress display of every ``sf`` command: a
  rich live bar on a terminal; off one (a log, a pipe) plain lines every 10 % or 30 s and at the
  end, with no control codes.

Nothing heavy is imported here: ``rich`` only when a bar is drawn on a terminal, transformers
only when a training bar is made.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from sf_train.stages.context import Reporter

__all__ = ["ScoringBar", "quiet_reporter", "stderr_reporter", "step_bar", "task_bar"]


def stderr_reporter(stream: IO[str] | None = None) -> Reporter:
    """The loop's default reporter: ``[sf-train HH:MM:SS] LINE`` on ``stream`` (default stderr)."""

    def report(line: str) -> None:
        print(f"[sf-train {time.strftime('%H:%M:%S')}] {line}", file=stream or sys.stderr, flush=True)

    return report


def quiet_reporter(line: str) -> None:
    """A reporter that shows nothing (``--quiet``)."""


def task_bar(description: str, total: int, *, unit: str, done: int = 0, quiet: bool = False) -> Any:
    """A :class:`~sf_sandbox.progress.ProgressBar` on stderr (close it, or use it in ``with``)."""
    from sf_sandbox.progress import ProgressBar

    return ProgressBar(description, total, unit=unit, done=done, quiet=quiet)


class ScoringBar:
    """sf-bench's harness progress events drawn as one bar per harness pass.

    The status shows the mean score of the records scored so far and how many our failures
    (endpoint, sandbox) left unscored.
    """

    def __init__(self, description: str) -> None:
        """``description`` names the stage (``iter-0 scoring``)."""
        self.description = description
        self.bar: Any = None
        self.scored = 0
        self.total_score = 0.0
        self.infra = 0

    def start(self, dataset: str, total: int, done: int) -> None:
        """A pass begins: ``done`` of ``total`` samples were recorded before."""
        self.scored, self.total_score, self.infra = 0, 0.0, 0
        self.bar = task_bar(self.description, total, unit="workflows", done=done)

    def advance(self, dataset: str, record: Any) -> None:
        """One more sample is recorded."""
        if record.infrastructure:
            self.infra += 1
        else:
            self.scored += 1
            self.total_score += float(record.score)
        self.bar.advance(1, self._status())

    def finish(self, dataset: str) -> None:
        """The pass ended."""
        self.bar.close(self._status())

    def _status(self) -> str:
        mean = self.total_score / self.scored if self.scored else 0.0
        return f"mean score {mean:.3f}" + (f"  unscored {self.infra}" if self.infra else "")


def step_bar(description: str) -> Any:
    """A ``TrainerCallback`` drawing the optimiser steps (and the last loss) as a bar.

    Only the main process draws (``state.is_world_process_zero``).
    """
    from transformers import TrainerCallback

    class StepBar(TrainerCallback):
        """Bar over ``state.max_steps`` optimiser steps; the status is the last logged loss."""

        def __init__(self) -> None:
            self.bar: Any = None
            self.status = ""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.bar = task_bar(description, int(state.max_steps or 0), unit="steps")

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs and isinstance(logs.get("loss"), int | float):
                self.status = f"loss {logs['loss']:.4f}"

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(int(state.global_step), self.status)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close(self.status)

    return StepBar()
