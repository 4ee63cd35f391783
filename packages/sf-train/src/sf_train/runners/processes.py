"""The loop's process group: every process of ``accelerate launch``, or this one process."""

from __future__ import annotations

__all__ = ["Processes"]


class Processes:
    """accelerate's view of the processes running the loop (``PartialState``).

    Stages that write the run's files run on the main process only; the others wait at
    :meth:`wait` and then read the files (the stages' hand-offs), so every process trains on
    the same pairs.
    """

    def __init__(self) -> None:
        """Join the process group accelerate set up (a group of one when launched plainly)."""
        from accelerate import PartialState

        self._state = PartialState()

    @property
    def is_main(self) -> bool:
        """True on the process that generates, scores, pairs and writes the run's records."""
        return bool(self._state.is_main_process)

    @property
    def count(self) -> int:
        """Processes in the group."""
        return int(self._state.num_processes)

    def wait(self) -> None:
        """Block until every process got here."""
        self._state.wait_for_everyone()
