# pyright: reportTypeCommentUsage=false
"""The fixed facts of one supervisor, from the host's init frame: mode, the job's uid, its dirs, the lane."""

import os
from typing import Any, Dict, Optional, Tuple  # noqa: F401 (type comments)

WRITABLE_DIRS = ("/work", "/tmp", "/dev/shm")


class Slot:
    """Where and as whom this supervisor's jobs run (``config`` is the host's init frame).

    ``mode`` ``container`` drops privileges to ``uid`` (``job_uid``); ``local`` does not. ``work``,
    ``helper_dir``, ``tmp`` and ``writable`` are the job's dirs; ``me`` is the supervisor's pid.
    """

    def __init__(self, config):
        # type: (Dict[str, Any]) -> None
        self.mode = config.get("mode", "container")  # type: str
        self.uid = int(config.get("job_uid", 65534))
        self.work = config.get("work_dir", "/work")  # type: str
        self.helper_dir = config.get("helper_dir", "/sf")  # type: str
        self.writable = tuple(config.get("writable", WRITABLE_DIRS))  # type: Tuple[str, ...]
        self.tmp = config.get("tmp_dir", "/tmp")  # type: str
        self.me = os.getpid()
        self.container = self.mode == "container"
        self.lane = config.get("lane")  # type: Optional[int]
        """This supervisor's lane when the container holds several (``Multiplexer``), else None:
        then the kill, the stray check and the IPC check reach only the lane's uid."""
