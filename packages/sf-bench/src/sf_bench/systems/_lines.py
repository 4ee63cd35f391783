"""The fields every JSONL input of a system carries: a problem id, a text, maybe a dataset.

``--solver file:PATH`` reads answers and ``--generator file:PATH`` workflows from such lines; each
names its own keys and messages, and checks the rest of a line itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sf_bench.errors import DataError

__all__ = ["dataset_field", "id_and_text_key"]


def id_and_text_key(
    record: Mapping[str, Any],
    where: str,
    *,
    id_keys: Sequence[str],
    text_keys: Sequence[str],
    no_id: str,
    no_text: str,
) -> tuple[str, str]:
    """``(problem id, key of the text)`` of one line: the first of ``id_keys`` and of ``text_keys`` present.

    The id may be a string or an integer (returned as its text); the text must be a string.

    Raises:
        DataError: ``"<where>: <no_id>"`` without a usable id, ``"<where>: <no_text>"`` without
            a text string.
    """
    pid = next((record[k] for k in id_keys if k in record), None)
    if pid is None or isinstance(pid, bool) or not isinstance(pid, str | int):
        raise DataError(f"{where}: {no_id}")
    key = next((k for k in text_keys if k in record), None)
    if key is None or not isinstance(record[key], str):
        raise DataError(f"{where}: {no_text}")
    return str(pid), key


def dataset_field(record: Mapping[str, Any], where: str, default: str | None, message: str) -> str | None:
    """The line's ``dataset`` (``default`` when absent; None: any dataset).

    Raises:
        DataError: ``"<where>: <message>"`` when it is not a string.
    """
    dataset: object = record.get("dataset", default)
    if dataset is not None and not isinstance(dataset, str):
        raise DataError(f"{where}: {message}")
    return dataset
