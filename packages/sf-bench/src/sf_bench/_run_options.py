"""``run.json``: the options of a run, written on the first run and checked on resume.

The check is :func:`check_run_options`. Re-exported by :mod:`sf_bench.records`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sf_bench.errors import BenchConfigError, BenchError

__all__ = ["RESUME_KEYS", "check_run_options"]


_RENAMED = {"gsm8k": "numeric", "math": "equiv"}
"""Datasets whose default metric was labelled ``official`` in run folders written before metrics
were named (such folders have no ``metrics`` key in ``run.json``). Historical, so not read from
the registry: a dataset added later has no such folders."""

RESUME_KEYS = ("split", "k", "repeats", "system", "executor_model", "judge_model")
"""``run.json`` options a resumed run must repeat (when both runs state them)."""


def check_run_options(path: Path, options: Mapping[str, Any]) -> None:
    """Write ``run.json`` with ``options``, or check that an existing one matches them.

    The keys in :data:`RESUME_KEYS` must match; ``scoring`` (dataset → metric label, e.g.
    ``official``, ``numeric`` or ``llm-judge``) must match for the datasets both runs score, and
    is merged, as is ``metrics`` (dataset → every named metric it offers).

    Raises:
        BenchConfigError: the directory holds a run with different options.
        BenchError: ``run.json`` cannot be read or written.
    """
    try:
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise BenchError(f"{path} is not valid JSON ({e}); delete it or use another --out") from e
            for key in RESUME_KEYS:
                if key in old and key in options and old[key] != options[key]:
                    raise BenchConfigError(
                        f"{path.parent} holds a run with {key}={old[key]!r}, not {options[key]!r}: "
                        "use the same options to resume it, or another --out"
                    )
            old_scoring = dict(old.get("scoring") or {})
            new_scoring = dict(options.get("scoring") or {})
            for name in sorted(set(old_scoring) & set(new_scoring)):
                if "metrics" not in old and name in _RENAMED and old_scoring[name] == "official":
                    raise BenchConfigError(
                        f"{path.parent} scored {name} before its metrics were named: what it calls "
                        f"'official' is an older {_RENAMED[name]} rule, not the official one; "
                        "use another --out"
                    )
                if old_scoring[name] != new_scoring[name]:
                    raise BenchConfigError(
                        f"{path.parent} scored {name} with the {old_scoring[name]} metric, not "
                        f"{new_scoring[name]}: use the same --judge/--metric setting to resume it, or "
                        "another --out"
                    )
            merged = dict(old)
            merged["datasets"] = sorted(set(old.get("datasets", [])) | set(options.get("datasets", [])))
            if old_scoring or new_scoring:
                merged["scoring"] = {**old_scoring, **new_scoring}
            if old.get("metrics") or options.get("metrics"):
                merged["metrics"] = {**dict(old.get("metrics") or {}), **dict(options.get("metrics") or {})}
            for key, value in options.items():
                if key not in ("datasets", "scoring", "metrics"):
                    merged.setdefault(key, value)
        else:
            merged = dict(options)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(merged, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise BenchError(f"cannot write {path}: {e.strerror or e}; choose another --out") from e
