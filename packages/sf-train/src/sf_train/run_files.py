"""The loop's run-directory files: atomic JSON and JSONL writes, and kill-tolerant JSONL reads.

Every stage of :mod:`sf_train.loop` (and the Ray Train worker, :mod:`sf_train.ray_train`) reads
and writes its hand-off files through these four functions, so a run directory from any launcher
resumes the same way. Contract: a write either lands whole or leaves the previous file (``write_*``
go through a temporary file and ``rename``); an append is fsynced and never glues onto a torn last
line; a read ignores a torn last line (a kill while appending).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sf_bench.jsonl import append_objects, read_objects
from sf_train.errors import TrainConfigError

__all__ = ["append_jsonl", "read_jsonl", "write_json", "write_jsonl"]


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a JSONL file (none when it does not exist).

    A line that does not parse (a torn line from a kill while appending) is skipped
    (:func:`sf_bench.jsonl.read_objects`).
    """
    return [row for _, row in read_objects(path, skip_bad=True, missing_ok=True, error=TrainConfigError)]


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` as JSON lines, fsynced.

    Nothing is written for no rows; never glued onto a torn last line
    (:func:`sf_bench.jsonl.append_objects`).
    """
    append_objects(path, rows)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` as JSON lines, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
