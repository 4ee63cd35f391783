r"""HotpotQA (Yang et al., 2018), distractor setting: multi-hop questions over 10 paragraphs.

Splits: ``validate`` (200) and ``test`` (800) are AFlow's files (a sample of the distractor dev
set); ``full`` (7,405) is the official ``hotpot_dev_distractor_v1.json`` (a JSON array, ~46 MB),
which is not bundled and not in this project's shared data: pass a folder holding it.

Problem fields:

- ``id``: the record's ``_id`` as a string (19 AFlow records carry a small integer there; it is
  kept, as ``"37"``).
- ``prompt``: ``"Context:\n<title>: <paragraph>\n...\n\nQuestion: <question>\n\nAnswer:"``,
  one line per context paragraph, its sentences concatenated as given (they carry their own
  leading spaces). AFlow's own prompt omits titles and joins sentences with a space; build it
  from ``extras`` if you need it byte for byte.
- ``reference`` and ``answers[0]``: the gold answer.
- ``extras``: ``question``, ``context`` (list of ``[title, [sentence, ...]]``),
  ``supporting_facts`` (list of ``[title, sentence_index]``), ``type`` (bridge/comparison),
  ``level``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sf_bench.datasets import _io
from sf_bench.errors import DataError
from sf_bench.types import DatasetSpec, Problem, TaskType

NAME = "hotpotqa"
SPLITS = ("validate", "test", "full")


def format_prompt(question: str, context: list[Any]) -> str:
    """Build the prompt text from a question and its context paragraphs (see module docstring)."""
    lines = [f"{title}: {''.join(sentences)}" for title, sentences in context]
    return "Context:\n" + "\n".join(lines) + f"\n\nQuestion: {question}\n\nAnswer:"


def _is_paragraph(para: object) -> bool:
    """Whether ``para`` is ``[title, [sentence, ...]]``, all strings."""
    if not isinstance(para, list):
        return False
    items = cast("list[object]", para)
    if len(items) != 2 or not isinstance(items[0], str) or not isinstance(items[1], list):
        return False
    return all(isinstance(s, str) for s in cast("list[object]", items[1]))


def _make(rec: dict[str, Any], where: str) -> Problem:
    raw_id = _io.field(rec, "_id", (str, int), where)
    question = _io.field(rec, "question", str, where)
    answer = _io.field(rec, "answer", str, where)
    context = _io.field(rec, "context", list, where)
    for i, para in enumerate(context):
        if not _is_paragraph(para):
            raise DataError(f"{where}: context[{i}] must be [title, [sentence, ...]]")
    return Problem(
        id=str(raw_id),
        dataset=NAME,
        task_type=TaskType.QA,
        prompt=format_prompt(question, context),
        reference=answer,
        answers=(answer,),
        extras={
            "question": question,
            "context": context,
            "supporting_facts": rec.get("supporting_facts", []),
            "type": rec.get("type", ""),
            "level": rec.get("level", ""),
        },
    )


def load(split: str, data_dir: str | Path | None) -> list[Problem]:
    """Load one split (``validate``, ``test`` or ``full``); see the module docstring.

    Raises:
        DataError: A file is missing or malformed.
        BenchConfigError: ``full`` without a data folder.
    """
    if split in _io.AFLOW_SPLITS:
        path = _io.aflow_split_file(NAME, split, data_dir)
        return [_make(rec, where) for where, rec in _io.read_jsonl_records(path)]
    root = _io.official_root(data_dir, NAME, split)
    path = _io.first_existing(
        [root / "hotpotqa" / "hotpot_dev_distractor_v1.json", root / "hotpot_dev_distractor_v1.json"],
        "hotpot_dev_distractor_v1.json (official HotpotQA distractor dev set)",
        hint="It is not bundled (about 46 MB); get it from the HotpotQA site.",
    )
    return [_make(rec, where) for where, rec in _io.read_json_array(path, "questions")]


DATASET = DatasetSpec(
    name=NAME,
    title="HotpotQA",
    task_type=TaskType.QA,
    load=load,
    splits=SPLITS,
    official_files=("hotpot_dev_distractor_v1.json",),
    scorer="sf_bench.scorers.hotpotqa",
    f1=True,
    answer_form="Write only the answer: a short span (a name, a date, yes or no).",
    judged=True,
    judge_context=True,
    judge_length_ratio=10.0,
    extract_metric="f1+llm-extract",
)
"""The registry entry (:mod:`sf_bench.registry`): F1 (EM beside), ScoreFlow's length rule."""
