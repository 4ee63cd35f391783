"""The append-only results file of one dataset and its reader.

The file is a :class:`RecordStore`, its reader :func:`read_records`; the guarantees are in
:mod:`sf_bench.records`. Re-exported there.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from pathlib import Path

from sf_bench._record import Record
from sf_bench.errors import BenchError, DataError
from sf_bench.jsonl import complete_size, read_objects

__all__ = ["RecordStore", "ResultsWriteError", "read_records"]


class ResultsWriteError(BenchError):
    """Appending to a results file failed; ``kept`` records of that call did reach the disk."""

    def __init__(self, message: str, *, kept: int = 0) -> None:
        """``kept``: how many of the records passed to ``append`` are safely in the file."""
        super().__init__(message)
        self.kept = kept


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """Read every complete record of a results file (a torn last line is ignored).

    Raises:
        DataError: the file cannot be read, or a complete line is not a valid record (the
            message names the file and line).
    """
    path = Path(path)
    try:
        records, _ = _parse(path)
    except OSError as e:
        raise DataError(f"cannot read results file {path}: {e.strerror or e}") from e
    return records


def _parse(path: Path) -> tuple[list[Record], int]:
    """Parse ``path`` into records, leaving out a torn last line.

    Returns the records and the byte length of its complete lines (a torn last line, from a kill
    mid-write, is not read).

    Raises:
        DataError: a complete line is not a JSON object or not a valid record.
        OSError: the file cannot be read.
    """
    fix = "fix or delete that line, or use another --out directory"
    try:
        rows = list(read_objects(path, torn_tail=True))
    except DataError as e:
        raise DataError(f"{e}; {fix}") from None
    records: list[Record] = []
    for lineno, obj in rows:
        try:
            records.append(Record.from_json(obj))
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}:{lineno}: not a valid sf-bench record ({e}); {fix}") from e
    return records, complete_size(path)


class RecordStore:
    """Append-only results file of one dataset, with resume.

    Usage::

        store = RecordStore(out_dir / "gsm8k.jsonl")
        done = store.load()          # {(problem_id, sample): Record}; repairs a torn tail
        store.append([record])       # written + fsynced when it returns
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Bind to ``path`` (created on the first :meth:`load`)."""
        self.path = Path(path)
        self.written = 0
        """Records appended by this store (not counting those loaded)."""
        self.sandbox_attempts: dict[tuple[str, int], int] = {}
        """(problem_id, sample) -> attempts so far whose sandbox failed (filled by :meth:`load`)."""
        self._loaded = 0

    def load(self) -> dict[tuple[str, int], Record]:
        """Create the file if needed, drop a torn last line, return the finished records.

        Records of our failures (``scorer_error``, ``infra_error``) are not returned: they are
        redone, except a :attr:`Record.final` one (kept as it is). When a key
        occurs more than once the last record wins. :attr:`sandbox_attempts` is filled.

        Raises:
            BenchError: the directory or file cannot be created or written (message says why).
            DataError: a complete line is not a valid record.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                with self.path.open("ab"):
                    pass
            if not self.path.is_file():
                raise BenchError(
                    f"results path {self.path} exists and is not a regular file; choose another --out"
                )
            records, good = _parse(self.path)
            size = self.path.stat().st_size
            if size > good and self.path.is_file():
                with self.path.open("r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
            if not os.access(self.path, os.W_OK):
                raise PermissionError(errno.EACCES, "Permission denied")
        except OSError as e:
            raise BenchError(
                f"cannot write results to {self.path}: {e.strerror or e}; choose another --out"
            ) from e
        done: dict[tuple[str, int], Record] = {}
        self.sandbox_attempts = {}
        for record in records:
            if record.sandbox_failure:
                self.sandbox_attempts[record.key] = max(
                    record.attempt, self.sandbox_attempts.get(record.key, 0) + 1
                )
            if record.infrastructure and not record.final:
                done.pop(record.key, None)
            else:
                done[record.key] = record
        self._loaded = len(done)
        return done

    def append(self, records: Sequence[Record]) -> None:
        """Append ``records``, flush and fsync; on failure cut the file back and raise.

        Raises:
            ResultsWriteError: the write failed (full disk, quota, file too large, I/O error).
                Every record written before is still in the file, and so are the first
                ``kept`` records of this call (whole lines only).
        """
        if not records:
            return
        data = "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        fd = -1
        start = None
        sent = 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            start = os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(data)
            while sent < len(data):
                sent += os.write(fd, view[sent:])
            os.fsync(fd)
        except OSError as e:
            kept = 0
            if fd >= 0 and start is not None:
                # keep the records whose whole line reached the file, cut the torn rest away
                keep = data.rfind(b"\n", 0, sent) + 1
                try:
                    os.ftruncate(fd, start + keep)
                    os.fsync(fd)
                    kept = data[:keep].count(b"\n")
                except OSError:
                    kept = 0
            self.written += kept
            safe = self._loaded + self.written
            reason = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
            raise ResultsWriteError(
                f"cannot write results to {self.path}: {reason}; the {safe} results already written are "
                "safe there - free space (or fix the problem) and rerun the same command to resume",
                kept=kept,
            ) from e
        finally:
            if fd >= 0:
                os.close(fd)
        self.written += len(records)
