"""Reading ``/proc/<pid>/stat`` (Linux): the one parser the host side's process checks share."""

from __future__ import annotations

__all__ = ["stat_fields"]


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None when it cannot be read.

    The command name (in parentheses) may hold spaces and parentheses, so the fields start after
    the last ``)``: index 0 is the state (``R``, ``S``, ``Z``, …), 1 the parent pid, 19 the start
    time in clock ticks since boot (``man 5 proc`` numbers them from 3, 4 and 22).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return data[data.rindex(b")") + 2 :].split()
    except (OSError, ValueError):
        return None
