"""File reading shared by the dataset loaders: JSONL/JSON with errors that name file and line.

Nothing here downloads anything. Paths are resolved in this order:

- ``validate`` / ``test``: ``data_dir`` if given (``<dir>/<name>_<split>.jsonl[.gz]`` or
  ``<dir>/aflow_splits/<name>_<split>.jsonl[.gz]``), else the copies bundled in
  ``sf_bench/data/aflow/``;
- ``full`` and other official splits: ``data_dir`` if given, else the environment variable
  ``SF_BENCH_DATA_DIR``, else :class:`~sf_bench.errors.BenchConfigError`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from sf_bench.errors import BenchConfigError, DataError
from sf_bench.jsonl import read_located, read_objects

DATA_DIR_ENV = "SF_BENCH_DATA_DIR"
"""Environment variable naming the default folder of official dataset files (``full`` splits)."""

AFLOW_SPLITS = ("validate", "test")


def package_data_dir() -> Path:
    """Return the folder of data files bundled in the installed package."""
    return Path(str(files("sf_bench") / "data"))


def bundled_aflow_dir() -> Path:
    """Return the folder holding the bundled AFlow split files (byte-identical copies)."""
    return package_data_dir() / "aflow"


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSON Lines file.

    It is the house reader, :func:`sf_bench.jsonl.read_objects` (``.gz`` gunzipped, messages name
    file and line).

    Raises:
        DataError: The file cannot be read, a line is not valid JSON, or a line is not a JSON
            object. The message names the file and the 1-based line number.
    """
    return read_objects(path)


def read_jsonl_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, record)`` for each non-blank line of a JSON Lines file (see :func:`read_jsonl`).

    ``where`` is ``"<path>:<line>"`` (1-based), the prefix for errors about that record, as
    :func:`read_json_array` gives for the elements of an array.

    Raises:
        DataError: As :func:`read_jsonl`.
    """
    return read_located(path)


def read_json(path: Path) -> Any:
    """Parse a whole JSON file.

    Raises:
        DataError: The file cannot be read or is not valid JSON (message names file and line).
    """
    try:
        with _open_text(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def read_json_array(path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, record)`` for each object of a JSON file holding one non-empty array.

    Args:
        path: The JSON file (gzip-compressed if the name ends with ``.gz``).
        what: What the array holds, for the error message (``"questions"``).

    ``where`` is ``"<path>: record <i>"`` (0-based), the prefix for errors about that record.

    Raises:
        DataError: The file cannot be read or parsed, is not a non-empty array, or an element
            is not a JSON object (the message starts with that element's ``where``).
    """
    records: object = read_json(path)
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON array of {what}")
    for i, rec in enumerate(cast("list[object]", records)):
        where = f"{path}: record {i}"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: expected a JSON object")
        yield where, cast("dict[str, Any]", rec)  # JSON object keys are str


def field(record: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return ``record[key]`` after checking that it exists and has the expected type.

    Args:
        record: One parsed record.
        key: The field name.
        kind: Accepted Python type(s) (``bool`` is never accepted for ``int``).
        where: ``"file:line"`` prefix for the error message.

    Raises:
        DataError: The field is missing or has another type.
    """
    if key not in record:
        raise DataError(f"{where}: missing field {key!r}")
    value = record[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = "/".join(k.__name__ for k in kinds)
        raise DataError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def str_list(record: Mapping[str, Any], key: str, where: str) -> list[str]:
    """Return ``record[key]`` checked to be a list of strings.

    Raises:
        DataError: Missing field, not a list, or an element that is not a string.
    """
    value = field(record, key, list, where)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise DataError(f"{where}: field {key!r}[{i}] must be str, got {type(item).__name__}")
    return list(value)


def first_existing(candidates: Sequence[Path], what: str, hint: str = "") -> Path:
    """Return the first path in ``candidates`` that exists.

    Raises:
        DataError: None exists; the message lists every path tried.
    """
    for path in candidates:
        if path.exists():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise DataError(f"{what} not found (looked for: {tried}).{(' ' + hint) if hint else ''}")


def aflow_split_file(name: str, split: str, data_dir: str | Path | None) -> Path:
    """Locate the AFlow-format file ``<name>_<split>.jsonl`` (``split`` may be ``public_test``).

    Args:
        name: Dataset name.
        split: ``validate``, ``test`` or ``public_test``.
        data_dir: A user folder, or None for the bundled copies.

    Raises:
        BenchConfigError: ``data_dir`` is given but is not a folder.
        DataError: The file is not in the folder.
    """
    base = f"{name}_{split}.jsonl"
    if data_dir is None:
        return bundled_aflow_dir() / base
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise BenchConfigError(f"--data-dir {root} is not a folder")
    candidates = [
        root / base,
        root / (base + ".gz"),
        root / "aflow_splits" / base,
        root / "aflow_splits" / (base + ".gz"),
    ]
    return first_existing(candidates, f"AFlow split file {base}")


def official_root(data_dir: str | Path | None, name: str, split: str) -> Path:
    """Resolve the folder holding official dataset files for ``split`` (e.g. ``full``).

    Args:
        data_dir: The folder given by the user, or None to use ``$SF_BENCH_DATA_DIR``.
        name: Dataset name (for the error message).
        split: Split name (for the error message).

    Raises:
        BenchConfigError: No folder given and ``SF_BENCH_DATA_DIR`` unset, or the folder is missing.
    """
    if data_dir is None:
        env = os.environ.get(DATA_DIR_ENV)
        if not env:
            raise BenchConfigError(
                f"split {split!r} of {name} reads the official dataset files, which are not bundled: "
                f"pass --data-dir DIR (data_dir=...) or set {DATA_DIR_ENV} to a folder holding them"
            )
        data_dir = env
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise BenchConfigError(f"data folder {root} for {name} split {split!r} is not a folder")
    return root
