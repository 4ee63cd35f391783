# pyright: reportTypeCommentUsage=false
"""The end-of-job kill: every process the job started, in a container, a lane or local mode."""

import os
import signal
import time
from typing import Callable, Dict, List, Optional  # noqa: F401 (type comments)

from .procs import all_pids, kill_as, parent_of
from .supervisor import Supervisor  # noqa: F401 (type comments)


def sweep(sup, pid, then=None):
    # type: (Supervisor, int, Optional[Callable[[], bytes]]) -> bool
    """Kill every process the job (main process ``pid``) started; True if any besides ``pid`` existed.

    ``then``: in a lane, what the kill helper runs as the job's uid once none is left (``sweep_lane``).
    """
    if sup.lane is not None:
        return sweep_lane(sup, pid, then)
    stray = False
    for _ in range(200):
        if sup.container:
            # everything but the supervisor and the zygote: a job can make its /proc entry
            # root-owned (PR_SET_DUMPABLE 0), so ownership is not a safe test
            victims = [p for p in all_pids() if p not in (sup.me, sup.zpid)]
        else:
            victims = [v for v in descendants(sup.me) if v != sup.zpid]
        if not victims:
            break
        if [v for v in victims if v != pid]:
            stray = True
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
        sup.reap_all()
        time.sleep(0.001)
    return stray


def sweep_lane(sup, pid, then=None):
    # type: (Supervisor, int, Optional[Callable[[], bytes]]) -> bool
    """``sweep`` for one lane of a shared container.

    Kill every process of the lane's uid and nothing else: ``kill_as`` sends ``kill(-1, SIGKILL)``
    from a helper that has dropped to that uid (it reaches exactly the processes of the uid at
    once, however they hide, and no pid that a neighbour's new process may have reused), and says
    which of them are not reaped yet; the kill is repeated until none are. Sets ``sup.lane_clean``
    when it ended with none left (nothing of the job can start again before the next spawn), and
    then ``sup.lane_collected`` to what ``then`` returned in that helper (else None).
    """
    stray = False
    sup.lane_clean = False
    sup.lane_collected = None
    for _ in range(200):
        got = kill_as(sup.uid, then)
        left = [] if got is None else got[0]
        if got is not None and not left:
            sup.lane_clean = True
            sup.lane_collected = got[1]
            break
        if [v for v in left if v != pid]:
            stray = True
        sup.reap_all()
        if left:
            time.sleep(0.001)  # killed, not yet reaped (the zygote reaps the main process)
    return stray


def descendants(root):
    # type: (int) -> List[int]
    """The pids of every process below process ``root`` (children, theirs, ...), read from ``/proc``."""
    children = {}  # type: Dict[int, List[int]]
    for name in os.listdir("/proc"):
        if name.isdigit():
            ppid = parent_of(int(name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(name))
    out = []  # type: List[int]
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
