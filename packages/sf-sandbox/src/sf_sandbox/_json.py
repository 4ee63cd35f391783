"""Narrowing decoded JSON (``json.loads``' ``object``) to the shapes a caller checks for.

Each helper returns the value with a precise type when it has the shape, and ``None`` when it does
not, so that the caller raises its own error with its own message.
"""

from __future__ import annotations

from typing import cast


def json_object(value: object) -> dict[str, object] | None:
    """``value`` as a JSON object, or ``None`` when it is not a ``dict``."""
    if isinstance(value, dict):
        # decoded JSON: an object's keys are always strings; its values are checked by the caller
        return cast("dict[str, object]", value)
    return None


def json_list(value: object) -> list[object] | None:
    """``value`` as a JSON array, or ``None`` when it is not a ``list``."""
    if isinstance(value, list):
        return cast("list[object]", value)  # the items are checked by the caller
    return None


def json_strings(value: object) -> list[str] | None:
    """``value`` as a JSON array of strings, or ``None`` when it is not a list of ``str`` only."""
    items = json_list(value)
    if items is None:
        return None
    strings = [item for item in items if isinstance(item, str)]
    return strings if len(strings) == len(items) else None
