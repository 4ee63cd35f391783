"""Results on disk: one JSON line per (problem, sample), appended and fsynced as each finishes.

A run directory holds ``run.json`` (the options of the run, checked on resume) and one
``<dataset>.jsonl`` per dataset. Each line is a :class:`Record`; ``runs`` holds one
:class:`Run` per ``--repeats`` repetition and the record's ``score`` is their mean.

Guarantees:

- a record is on disk (written, flushed and fsynced) before the harness counts it as done, so a
  kill at any moment loses at most the samples in flight;
- a kill in the middle of a write leaves a torn last line; :meth:`RecordStore.load` drops it
  (that sample is redone) and truncates the file back to the last complete line;
- when a write fails (full disk, file too large, I/O error) the file is cut back to its size
  before that write, so every earlier record stays readable, and :class:`~sf_bench.errors.BenchError`
  says how many results are safe and that rerunning the same command resumes.

The value types are in ``_record.py``, the file in ``_record_store.py`` and ``run.json`` in
``_run_options.py``; this module is their public face.
"""

from __future__ import annotations

from sf_bench._record import (
    INFRA_STATUSES,
    SANDBOX_REDO_CAP,
    Record,
    RecordStatus,
    Run,
    group_by_problem,
    now,
)
from sf_bench._record_store import RecordStore, ResultsWriteError, read_records
from sf_bench._run_options import RESUME_KEYS, check_run_options

__all__ = [
    "INFRA_STATUSES",
    "RESUME_KEYS",
    "SANDBOX_REDO_CAP",
    "Record",
    "RecordStatus",
    "RecordStore",
    "ResultsWriteError",
    "Run",
    "check_run_options",
    "group_by_problem",
    "now",
    "read_records",
]
