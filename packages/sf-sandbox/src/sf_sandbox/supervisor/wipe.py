# pyright: reportTypeCommentUsage=false
"""After a job: empty every writable dir (any depth, no links followed) and restore its own metadata."""

import errno
import os
import stat
from typing import Dict, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_dir(name, dir_fd=None):
    # type: (str, Optional[int]) -> int
    """Open a directory without following a link; chmod it open first if the job closed it."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)  # we lstat'd it: a directory, and every job process is dead
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def wipe_tree(top):
    # type: (str) -> bool
    """Remove everything below ``top``; True when it is all gone.

    Iterative and relative to directory descriptors, holding one descriptor at a time, so no
    depth (a job may leave 10,000 nested directories), path length or open-files limit stops it;
    never follows a link. The caller has killed every process of the job.
    """
    try:
        fd = os.open(top, DIR_FLAGS)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    ok = True
    stack = []  # type: List[Tuple[str, List[str]]]  # (name of the dir we are in, entries left in its parent)
    todo = listdir(fd)
    try:
        while True:
            sub = None
            while todo:
                name = todo.pop()
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    sub = name
                    break
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError as exc:
                    ok = ok and exc.errno == errno.ENOENT
            if sub is not None:
                try:
                    child = open_dir(sub, fd)
                except OSError:
                    ok = False
                    continue
                os.close(fd)
                fd = child
                stack.append((sub, todo))
                todo = listdir(fd)
                continue
            if not stack:
                break
            name, todo = stack.pop()
            parent = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError as exc:
                ok = ok and exc.errno == errno.ENOENT
    except OSError:
        ok = False
    finally:
        os.close(fd)
    return ok


def listdir(fd):
    # type: (int) -> List[str]
    """The names in the directory open as ``fd``; ``[]`` when it cannot be read."""
    try:
        return os.listdir(fd)
    except OSError:
        return []


class TopDir:
    """What a writable top directory looked like when the container started."""

    def __init__(self, path):
        # type: (str) -> None
        st = os.lstat(path)
        self.mode = stat.S_IMODE(st.st_mode)
        self.uid = st.st_uid
        self.gid = st.st_gid
        self.times = (st.st_atime_ns, st.st_mtime_ns)
        self.xattrs = {}  # type: Dict[str, bytes]
        for name in list_xattrs(path):
            try:
                self.xattrs[name] = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                pass


def snapshot_tops(paths):
    # type: (Sequence[str]) -> Dict[str, TopDir]
    """A :class:`TopDir` for each of ``paths`` that can be ``lstat``-ed (the others are left out)."""
    tops = {}  # type: Dict[str, TopDir]
    for path in paths:
        try:
            tops[path] = TopDir(path)
        except OSError:
            pass
    return tops


def list_xattrs(path):
    # type: (str) -> List[str]
    """The extended attribute names of ``path`` (symlinks not followed); ``[]`` when they cannot be read."""
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def reset_top(path, was):
    # type: (str, Optional[TopDir]) -> bool
    """Give ``path`` back its start-up owner, mode, extended attributes (ACLs too) and times.

    A job owns its work dir and may chmod it, set user xattrs or ACLs on it and choose its
    mtime; emptying the dir keeps all of that, so without this a job could break the slot for
    every later job (mode 0500) or pass them data. False when any of it could not be restored.
    """
    if was is None:
        return True
    ok = True
    try:
        st = os.lstat(path)
        if (st.st_uid, st.st_gid) != (was.uid, was.gid):
            os.chown(path, was.uid, was.gid)
        os.chmod(path, was.mode)
        for name in list_xattrs(path):
            if name not in was.xattrs:
                try:
                    os.removexattr(path, name, follow_symlinks=False)
                except OSError:
                    ok = False
        for name, value in was.xattrs.items():
            try:
                if os.getxattr(path, name, follow_symlinks=False) != value:
                    os.setxattr(path, name, value, follow_symlinks=False)
            except OSError:
                ok = False
        os.utime(path, ns=was.times, follow_symlinks=False)
    except OSError:
        ok = False
    return ok
