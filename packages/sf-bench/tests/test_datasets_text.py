"""GSM8K, MATH, DROP and HotpotQA loaders: fields, ids and the official-format readers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sf_bench.datasets import load
from sf_bench.datasets._io import bundled_aflow_dir
from sf_bench.datasets.math import unique_id_index
from sf_bench.errors import DataError


def test_gsm8k_fields() -> None:
    p = load("gsm8k", "test")[0]
    assert p.id == "gsm8k-test-598" and p.answers == ("69",)
    assert p.reference.endswith("\n#### 69") and p.reference == p.extras["cot"] + "\n#### 69"
    answers = {a for q in load("gsm8k", "validate") + load("gsm8k", "test") for a in q.answers}
    assert {"2,125", "-3"} <= answers  # thousands separators and signs are kept as written


def test_gsm8k_ids_are_official_line_numbers(shared_data: Path) -> None:
    lines = (shared_data / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    for p in load("gsm8k", "validate") + load("gsm8k", "test"):
        official = json.loads(lines[int(p.id.rsplit("-", 1)[1])])
        assert (official["question"], official["answer"]) == (p.prompt, p.reference)


def test_math_ids_come_from_the_bundled_unique_id_index() -> None:
    problems = load("math", "validate") + load("math", "test")
    assert all(not p.id.startswith("math-") for p in problems)
    assert {p.extras["type"] for p in problems} == {
        "Counting & Probability",
        "Number Theory",
        "Prealgebra",
        "Precalculus",
    }
    assert {p.extras["level"] for p in problems} == {"Level 5"}
    assert load("math", "validate")[0].id == "test/prealgebra/1291.json"
    assert len(unique_id_index()) == 5000


def test_math_answer_is_the_last_box_at_any_depth() -> None:
    by_answer = {p.answers[0] for p in load("math", "test")}
    assert any("\\frac{" in a and "\\sqrt{" in a for a in by_answer)  # nested braces extracted whole
    p = load("math", "validate")[0]
    assert p.answers == ("135",) and p.reference.endswith("degrees.")


def test_math_unknown_problem_gets_a_content_hash_id(tmp_path: Path) -> None:
    rec = {
        "problem": "What is $1+1$?",
        "level": "Level 1",
        "type": "Algebra",
        "solution": "It is $\\boxed{2}$.",
    }
    (tmp_path / "math_test.jsonl").write_text(json.dumps(rec) + "\n")
    (p,) = load("math", "test", data_dir=tmp_path)
    assert p.id == "math-" + hashlib.sha256(rec["problem"].encode()).hexdigest()[:12]
    assert p.extras["unique_id"] is None and p.answers == ("2",)
    rec["solution"] = "no box here"
    (tmp_path / "math_test.jsonl").write_text(json.dumps(rec) + "\n")
    with pytest.raises(DataError, match=r"math_test\.jsonl:1: solution has no \\boxed"):
        load("math", "test", data_dir=tmp_path)


def test_math_official_tree_format_and_math500(shared_data: Path, tmp_path: Path) -> None:
    packed = load("math", "full", data_dir=shared_data)
    # rebuild the original per-problem tree MATH/test/<subject>/<n>.json for two subjects' worth
    folders = {
        "algebra",
        "counting_and_probability",
        "geometry",
        "intermediate_algebra",
        "number_theory",
        "prealgebra",
        "precalculus",
    }
    for sub in folders:
        (tmp_path / "MATH" / "test" / sub).mkdir(parents=True)
    for p in packed[:40] + packed[-40:]:
        rec = {
            "problem": p.prompt,
            "level": p.extras["level"],
            "type": p.extras["type"],
            "solution": p.reference,
        }
        (tmp_path / "MATH" / p.id).write_text(json.dumps(rec, indent=4))
    tree = load("math", "full", data_dir=tmp_path)
    assert [t.id for t in tree] == [p.id for p in packed[:40] + packed[-40:]]
    assert [(t.prompt, t.answers) for t in tree] == [
        (p.prompt, p.answers) for p in packed[:40] + packed[-40:]
    ]
    m500 = load("math", "math500", data_dir=shared_data)
    raw = [
        json.loads(line) for line in (shared_data / "math" / "math500_test.jsonl").read_text().splitlines()
    ]
    assert [p.answers[0] for p in m500] == [r["answer"] for r in raw]  # last box == MATH-500's answer
    packed_by_id = {p.id: p for p in packed}
    assert all(packed_by_id[p.id].reference == p.reference for p in m500)


def test_drop_fields() -> None:
    p = load("drop", "test")[0]
    assert p.id == "3481" and p.answers == ("83",) and p.reference == "83"
    assert p.prompt.startswith("Passage: ") and p.prompt.endswith("\nAnswer:")
    assert p.extras["question"].startswith("How many years did it take")
    assert p.prompt == f"Passage: {p.extras['passage']}\nQuestion: {p.extras['question']}\nAnswer:"
    for q in load("drop", "validate") + load("drop", "test"):
        assert q.reference in q.answers and all(a == a.strip() for a in q.answers)
        assert q.answers == tuple(a.strip() for a in q.extras["ref_text"].split("|"))


def test_hotpotqa_fields_and_prompt() -> None:
    problems = load("hotpotqa", "validate")
    p = problems[0]
    assert p.id == "5a7613c15542994ccc9186bf"
    assert p.answers == ("Gesellschaft mit beschränkter Haftung",)
    assert p.prompt.startswith("Context:\nConstantin Medien: Constantin Medien AG")
    assert p.prompt.endswith("\n\nQuestion: " + p.extras["question"] + "\n\nAnswer:")
    assert "VIVA Poland: VIVA Polska" in p.prompt and p.extras["type"] == "bridge"
    assert sorted(q.id for q in problems if q.id.isdigit()) == [
        "37",
        "61",
        "79",
        "95",
    ]  # integer _id kept as text


def test_hotpotqa_full_reads_the_official_json_array(tmp_path: Path) -> None:
    text = (bundled_aflow_dir() / "hotpotqa_validate.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    (tmp_path / "hotpot_dev_distractor_v1.json").write_text(json.dumps(records[:5]))
    assert load("hotpotqa", "full", data_dir=tmp_path) == load("hotpotqa", "validate")[:5]
    records[2]["context"] = [["title only"]]
    (tmp_path / "hotpot_dev_distractor_v1.json").write_text(json.dumps(records[:5]))
    with pytest.raises(DataError, match=r"record 2: context\[0\] must be \[title, \[sentence, \.\.\.\]\]"):
        load("hotpotqa", "full", data_dir=tmp_path)
