"""Reading the compile-and-run driver's report (``_lang_driver.py`` writes it as JSON in the work dir).

A program that ends its driver can leave a report of its own, so every field is read for what it
is, and anything else counts as absent: nothing here raises on a malformed report.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from sf_sandbox._json import json_object
from sf_sandbox.languages.code import Phase
from sf_sandbox.result import Status

__all__ = [
    "read_report",
    "report_compile_phase",
    "report_int",
    "report_seconds",
    "report_status",
    "report_str",
]


def report_status(value: object) -> Status:
    """A status field; ``sandbox_error`` when it names no status."""
    try:
        return Status(value)
    except ValueError:
        return Status.SANDBOX_ERROR


def report_int(value: object) -> int | None:
    """An integer field (an exit code), or None."""
    return value if isinstance(value, int) else None


def report_str(value: object) -> str | None:
    """A string field, or None."""
    return value if isinstance(value, str) else None


def report_seconds(value: object) -> float:
    """A duration field: a number (or its decimal string); 0.0 when absent or not a number."""
    if isinstance(value, int | float | str):
        try:
            return float(value or 0.0)
        except ValueError:
            return 0.0
    return 0.0


def report_compile_phase(entry: Mapping[str, object]) -> Phase:
    """The compile phase of a ``compile`` entry (its output is base64; undecodable output reads as empty)."""
    try:
        out = base64.b64decode(report_str(entry.get("stdout")) or "")
        err = base64.b64decode(report_str(entry.get("stderr")) or "")
    except (binascii.Error, ValueError):
        out = err = b""
    return Phase(
        status=report_status(entry.get("status")),
        exit_code=report_int(entry.get("exit_code")),
        stdout_bytes=out,
        stderr_bytes=err,
        truncated=bool(entry.get("truncated")),
        duration=report_seconds(entry.get("duration")),
        error=report_str(entry.get("error")),
    )


def read_report(data: bytes | None) -> tuple[dict[str, object] | None, dict[str, object] | None]:
    """The report's ``compile`` and ``run`` entries; each None when absent or not a JSON object."""
    report: object = {}
    if data:
        try:
            report = json.loads(data.decode())
        except (UnicodeDecodeError, ValueError):
            report = {}
    entries = json_object(report) or {}
    return json_object(entries.get("compile")), json_object(entries.get("run"))
