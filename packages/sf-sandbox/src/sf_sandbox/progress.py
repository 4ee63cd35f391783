"""The one progress display of every long ``sf`` command.

It is a live bar on a terminal, sparse plain lines in logs, nothing when quiet.

:class:`ProgressBar` shows the progress of one task (``done`` of ``total`` units) on a stream,
stderr by default, in one of three modes chosen when it is made:

- the stream is a terminal: a live `rich <https://rich.readthedocs.io>`_ bar redrawn in place
  (description, bar, ``done/total``, the caller's status text, elapsed time);
- it is not (a CI log, a file, a pipe): a plain line ``DESCRIPTION: DONE/TOTAL UNIT  STATUS
  ELAPSEDs`` each time another ``every`` share of the work is done or ``interval`` seconds have
  passed since the last line, and one when it is closed, so a log gets about ten lines per task;
- ``quiet=True`` (``-q``/``--quiet``): nothing at all.

sf-sandbox is the lowest package that draws progress (``Sandbox.run_many(progress=True)``), so
the helper lives here and sf-workflows and sf-bench use it too. ``rich`` is imported only when a
terminal bar is drawn, so importing this module stays cheap.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import IO, Any

__all__ = ["ProgressBar"]

EVERY = 0.1
"""Default share of the work between two plain lines (every 10 %)."""
INTERVAL_S = 30.0
"""Default most seconds between two plain lines while work goes on."""


class ProgressBar:
    """Progress of one task on ``stream`` (see the module docstring for the three modes).

    Thread-safe: ``update`` may be called from any thread. Use it as a context manager, or call
    :meth:`close` once when the task ends (later calls do nothing).
    """

    def __init__(
        self,
        description: str,
        total: int,
        *,
        unit: str = "",
        done: int = 0,
        quiet: bool = False,
        stream: IO[str] | None = None,
        every: float = EVERY,
        interval: float = INTERVAL_S,
    ) -> None:
        """Start showing a task.

        Args:
            description: What is being done (``"gsm8k"``, ``"sandbox"``).
            total: Units of work in all (0 or less: unknown, shown as ``done/?``).
            unit: The units' name, after the count in plain lines (``"jobs"``).
            done: Units already done before (a resumed task).
            quiet: Show nothing.
            stream: Where to draw (default: ``sys.stderr`` when the bar is made).
            every: Share of ``total`` between two plain lines.
            interval: Most seconds between two plain lines while work goes on.
        """
        self.description = description
        self.total = total
        self.unit = unit
        self.done = done
        self.status = ""
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = max(1, int(total * every)) if total > 0 else 0
        self._interval = interval
        self._t0 = self._last = time.monotonic()
        self._next = done + self._every if self._every else 0
        self._lock = threading.Lock()
        self._closed = False
        self._live: Any = None
        self._task: Any = None
        if self.tty:
            self._start_live()

    # ------------------------------------------------------------------ public
    def update(self, done: int, status: str | None = None) -> None:
        """Set the units done so far (and, when given, the status text shown after the count)."""
        with self._lock:
            if self._closed or self.quiet:
                return
            self.done = done
            if status is not None:
                self.status = status
            if self._live is not None:
                self._live.update(self._task, completed=done, status=self.status)
                return
            now = time.monotonic()
            crossed = bool(self._every) and done >= self._next
            if crossed or now - self._last >= self._interval:
                self._plain(now)
                if self._every:
                    self._next = (done // self._every + 1) * self._every

    def advance(self, n: int = 1, status: str | None = None) -> None:
        """``n`` more units are done."""
        self.update(self.done + n, status)

    def log(self, line: str) -> None:
        """Print ``line`` above the bar (a note such as "resuming"); nothing when quiet."""
        with self._lock:
            if self.quiet:
                return
            if self._live is not None:
                self._live.console.print(line, markup=False, highlight=False)
            else:
                self._write(line)

    def close(self, status: str | None = None) -> None:
        """The task ended: draw its last state (a final plain line off a terminal)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if status is not None:
                self.status = status
            if self.quiet:
                return
            if self._live is not None:
                self._live.update(self._task, completed=self.done, status=self.status)
                self._live.stop()
                self._live = None
            else:
                self._plain(time.monotonic())

    def __enter__(self) -> ProgressBar:
        """The bar itself."""
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """:meth:`close` it."""
        self.close()

    # ------------------------------------------------------------------ drawing
    def line(self, elapsed: float | None = None) -> str:
        """The plain line of the current state."""
        elapsed = time.monotonic() - self._t0 if elapsed is None else elapsed
        total = str(self.total) if self.total > 0 else "?"
        unit = f" {self.unit}" if self.unit else ""
        status = f"  {self.status}" if self.status else ""
        return f"{self.description}: {self.done}/{total}{unit}{status}  {elapsed:.1f}s"

    def _plain(self, now: float) -> None:
        self._last = now
        self._write(self.line(now - self._t0))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream: progress is never worth a crash
            pass

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        live = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(file=self.stream, force_terminal=True),
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = live.add_task(
            self.description, total=self.total if self.total > 0 else None, completed=self.done, status=""
        )
        live.start()
        self._live = live
