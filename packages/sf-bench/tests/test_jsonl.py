"""sf_bench.jsonl: the one JSONL reader's options and the writer.

The reader's options: torn tail, bad lines, missing file, the caller's error class; the writer
never glues onto a torn line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sf_bench.errors import DataError
from sf_bench.jsonl import append_objects, complete_size, read_objects
from sf_sandbox.errors import UserError


class MyError(UserError):
    """A caller's own user-mistake class (sf-train passes TrainConfigError)."""


def test_strict_by_default_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"b": 2}\n{"c":\n')
    with pytest.raises(DataError, match=rf"^{path}:4: not valid JSON \("):
        list(read_objects(path))
    with pytest.raises(MyError, match=rf"^{path}:4: not valid JSON"):
        list(read_objects(path, error=MyError))
    with pytest.raises(MyError, match=rf"^{tmp_path / 'none.jsonl'}: cannot read \(No such file"):
        list(read_objects(tmp_path / "none.jsonl", error=MyError))
    assert list(read_objects(tmp_path / "none.jsonl", missing_ok=True)) == []


def test_torn_tail_is_not_read_and_complete_size_is_where_to_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    whole = '{"a": 1}\n{"b": 2}\n'
    path.write_text(whole + '{"c": 3}')  # the last write was cut short (it even parses)
    assert [o for _, o in read_objects(path, torn_tail=True)] == [{"a": 1}, {"b": 2}]
    assert [o for _, o in read_objects(path)] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert complete_size(path) == len(whole.encode())
    path.write_text(whole)
    assert complete_size(path) == path.stat().st_size
    path.write_text('{"no newline at all"')
    assert complete_size(path) == 0


def test_append_after_a_torn_line_keeps_rows_apart_and_skip_bad_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    append_objects(path, [{"i": 0}])
    with path.open("a") as f:
        f.write('{"i": 1, "tor')  # a kill mid-write
    append_objects(path, [{"i": 2, "text": "é"}])
    append_objects(path, [])  # nothing for no rows
    assert path.read_text(encoding="utf-8").splitlines()[-1] == json.dumps(
        {"i": 2, "text": "é"}, ensure_ascii=False
    )
    with pytest.raises(DataError, match=":2: not valid JSON"):
        list(read_objects(path))
    assert [o["i"] for _, o in read_objects(path, skip_bad=True)] == [0, 2]
