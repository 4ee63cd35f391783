"""Results files: round trip, torn lines after a kill, failed writes, run options."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from sf_bench.errors import BenchConfigError, BenchError, DataError
from sf_bench.records import Record, RecordStatus, RecordStore, Run, check_run_options, read_records


def _record(
    pid: str, sample: int = 0, scores: tuple[float, ...] = (1.0,), status: RecordStatus = RecordStatus.SCORED
) -> Record:
    runs = tuple(
        Run(
            status=status,
            answer=f"a{i}",
            score=s,
            metrics={"em": s},
            cost=0.5,
            input_tokens=3,
            output_tokens=4,
            latency=0.25,
            failure=None if s == 1.0 else "assertion",
        )
        for i, s in enumerate(scores)
    )
    return Record(dataset="gsm8k", problem_id=pid, sample=sample, runs=runs, finished_at=1.0)


def test_record_round_trip_and_aggregates() -> None:
    rec = _record("p1", 2, (1.0, 0.0, 1.0))
    data = json.loads(json.dumps(rec.to_json()))
    assert data["score"] == pytest.approx(2 / 3) and data["answer"] == "a0" and data["failure"] == "assertion"
    assert data["cost"] == 1.5 and data["tokens"] == 21 and data["status"] == "scored"
    back = Record.from_json(data)
    assert back == rec
    assert back.passes == 2 and back.metrics == {"em": pytest.approx(2 / 3)}


def test_record_status_is_the_most_serious_run() -> None:
    runs = (Run(status=RecordStatus.SCORED, score=1.0), Run(status=RecordStatus.SOLVER_TIMEOUT, error="late"))
    rec = Record(dataset="d", problem_id="p", sample=0, runs=runs)
    assert rec.status is RecordStatus.SOLVER_TIMEOUT and rec.score == 0.5 and rec.error == "late"


def test_store_appends_and_resumes(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "out" / "gsm8k.jsonl")
    assert store.load() == {}
    store.append([_record("p1"), _record("p2")])
    store.append([_record("p3", status=RecordStatus.SCORER_ERROR)])
    done = RecordStore(store.path).load()
    assert sorted(done) == [("p1", 0), ("p2", 0)]  # scorer errors are redone on resume
    assert len(read_records(store.path)) == 3


def test_torn_last_line_is_dropped_and_truncated(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k.jsonl"
    store = RecordStore(path)
    store.load()
    store.append([_record("p1")])
    good = path.stat().st_size
    with path.open("ab") as f:  # a kill in the middle of a write
        f.write(json.dumps(_record("p2").to_json()).encode()[:40])
    done = RecordStore(path).load()
    assert list(done) == [("p1", 0)]
    assert path.stat().st_size == good
    RecordStore(path).append([_record("p2")])
    assert [r.problem_id for r in read_records(path)] == ["p1", "p2"]


def test_malformed_complete_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(json.dumps(_record("p1").to_json()) + "\n{not json}\n")
    with pytest.raises(DataError, match=r"gsm8k.jsonl:2: not valid JSON .*; fix or delete that line"):
        RecordStore(path).load()
    path.write_text(
        json.dumps({"dataset": "x", "problem_id": "p", "sample": 0, "runs": [{"status": "bogus"}]}) + "\n"
    )
    with pytest.raises(DataError, match=":1:"):
        read_records(path)


def test_failed_write_keeps_earlier_records_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gsm8k.jsonl"
    store = RecordStore(path)
    store.load()
    store.append([_record("p1"), _record("p2")])
    size = path.stat().st_size
    real_write = os.write

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[:10])  # part of the line reaches the disk, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(
        BenchError,
        match=r"the disk is full; the 2 results already written are safe .* rerun the same command",
    ):
        store.append([_record("p3")])
    monkeypatch.undo()
    assert path.stat().st_size == size  # the partial line was cut away
    assert [r.problem_id for r in read_records(path)] == ["p1", "p2"]


def test_unwritable_results_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BenchError, match="cannot write results to .*choose another --out"):
        RecordStore(blocker / "sub" / "gsm8k.jsonl").load()
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(BenchError, match="not a regular file"):
        RecordStore(tmp_path / "dir.jsonl").load()


def test_run_options_must_match_to_resume(tmp_path: Path) -> None:
    meta = tmp_path / "run.json"
    check_run_options(
        meta, {"system": "canonical", "k": 1, "repeats": 1, "split": "test", "datasets": ["gsm8k"]}
    )
    check_run_options(
        meta, {"system": "canonical", "k": 1, "repeats": 1, "split": "test", "datasets": ["math"]}
    )
    assert json.loads(meta.read_text())["datasets"] == ["gsm8k", "math"]
    with pytest.raises(BenchConfigError, match="holds a run with k=1, not 5"):
        check_run_options(meta, {"system": "canonical", "k": 5, "repeats": 1, "split": "test"})
