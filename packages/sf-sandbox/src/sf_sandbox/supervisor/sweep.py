# pyright: reportTypeCommentUsage=false
"""The end-of-job kill: every process the job started, in a container, a lane or local mode."""

import os
import signal
import time
from typing import Dict, List  # noqa: F401 (type comments)

from .procs import all_pids, kill_as, parent_of, uid_pids
from .supervisor import Supervisor  # noqa: F401 (type comments)


def sweep(sup, pid):
    # type: (Supervisor, int) -> bool
    """Kill every process the job (main process ``pid``) started; True if any besides ``pid`` existed."""
    if sup.lane is not None:
        return sweep_lane(sup, pid)
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


def sweep_lane(sup, pid):
    # type: (Supervisor, int) -> bool
    """``sweep`` for one lane of a shared container.

    Kill every process of the lane's uid and nothing else. The kill is ``kill(-1, SIGKILL)``
    sent by a helper that has dropped to that uid (it reaches exactly the processes of the uid,
    however they hide, and no pid that a neighbour's new process may have reused); ``/proc``
    says when none are left.
    """
    stray = False
    for _ in range(200):
        victims = uid_pids(sup.uid)
        if not victims:
            break
        if [v for v in victims if v != pid]:
            stray = True
        kill_as(sup.uid)
        sup.reap_all()
        time.sleep(0.001)
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
