# pyright: reportTypeCommentUsage=false
"""After a job: read the files it asked to have collected, as the job's uid."""

import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

from .frames import b64
from .procs import reap_pid, write_all
from .supervisor import Supervisor  # noqa: F401 (type comments)


def collect_files(sup, job):
    # type: (Supervisor, Dict[str, Any]) -> Tuple[Dict[str, str], List[str], bool]
    """Read the collected files; all job processes are dead by now. Returns files, errors, ok.

    Collection runs in a child that drops to the job's uid, so a symlink the job left cannot make
    the supervisor read what the job could not.
    """
    collect = job.get("collect", [])
    if not collect:
        return {}, [], True
    limit = int(job.get("files_out_bytes", 8 << 20))
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return {}, ["cannot fork the collector"], False
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            if sup.container:
                os.setgroups([])
                os.setgid(sup.uid)
                os.setuid(sup.uid)
            write_all(w, json.dumps(read_files(sup.work, collect, limit)).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []  # type: List[bytes]
    while True:
        try:
            chunk = os.read(r, 1 << 20)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    reap_pid(pid)  # the collector must be gone before the next job looks around
    sup.reap_all()
    return parse_collected(b"".join(chunks))


def parse_collected(data):
    # type: (bytes) -> Tuple[Dict[str, str], List[str], bool]
    """Files, errors and ok from what a collector wrote (``read_files`` as JSON)."""
    try:
        out = json.loads(data.decode())
        return out["files"], out["errors"], True
    except (ValueError, KeyError, TypeError):
        return {}, ["collector failed"], False


def lane_collector(sup, job):
    # type: (Supervisor, Dict[str, Any]) -> Optional[Callable[[], bytes]]
    """For a lane's kill helper: the collection of ``job``'s files (``read_files`` as JSON), or None.

    None outside a lane or when the job collects nothing. The helper runs it as the job's uid
    once no other process of that uid is left, exactly as the collector of ``collect_files``
    would, saving that fork.
    """
    collect = job.get("collect", [])
    if sup.lane is None or not collect:
        return None
    work, limit = sup.work, int(job.get("files_out_bytes", 8 << 20))
    return lambda: json.dumps(read_files(work, collect, limit)).encode()


def read_files(work, collect, limit):  # pragma: no cover - runs in the collector
    # type: (str, List[str], int) -> Dict[str, Any]
    """Read the ``collect`` files (relative to ``work``) up to ``limit`` bytes in all.

    Returns ``{"files": {rel: base64}, "errors": [...]}``: symlinks and non-files are skipped silently,
    a file past the limit or unreadable is named in ``errors``.
    """
    files = {}  # type: Dict[str, str]
    errors = []  # type: List[str]
    total = 0
    for rel in collect:
        path = os.path.join(work, rel)
        try:
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            if total + size > limit:
                errors.append("%s: skipped, collected files passed %d bytes" % (rel, limit))
                continue
            with open(path, "rb") as fh:
                data = fh.read(limit - total + 1)
            total += len(data)
            files[rel] = b64(data)
        except OSError as exc:
            errors.append("%s: %s" % (rel, exc.strerror))
    return {"files": files, "errors": errors}
