"""Loaders: split sizes, ids, the bundled files, data_dir handling and errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from sf_bench.datasets import DATA_DIR_ENV, DATASETS, load, splits
from sf_bench.datasets._io import bundled_aflow_dir
from sf_bench.errors import BenchConfigError, DataError
from sf_bench.types import Problem, TaskType

AFLOW_SIZES = {
    "humaneval": (33, 131),
    "mbpp": (86, 341),
    "gsm8k": (264, 1055),
    "math": (119, 486),
    "drop": (200, 800),
    "hotpotqa": (200, 800),
}
FULL_SIZES = {
    ("humaneval", "full"): 164,
    ("mbpp", "full"): 427,
    ("mbpp", "full-974"): 974,
    ("gsm8k", "full"): 1319,
    ("math", "full"): 5000,
    ("math", "math500"): 500,
    ("drop", "full"): 9536,
}
ID_PATTERNS = {
    "humaneval": r"HumanEval/\d+",
    "mbpp": r"Mbpp/\d+",
    "gsm8k": r"gsm8k-test-\d+",
    "math": r"test/[a-z_]+/\d+\.json",
    "drop": r"\d+",
    "hotpotqa": r"[0-9a-f]{24}|\d+",
}
TASK_TYPES = {
    "humaneval": TaskType.CODE,
    "mbpp": TaskType.CODE,
    "gsm8k": TaskType.MATH,
    "math": TaskType.MATH,
    "drop": TaskType.QA,
    "hotpotqa": TaskType.QA,
}


def test_registry_lists_the_six_datasets() -> None:
    assert DATASETS == ("humaneval", "mbpp", "gsm8k", "math", "drop", "hotpotqa")
    for name in DATASETS:
        assert splits(name)[:3] == ("validate", "test", "full")
    assert splits("math") == ("validate", "test", "full", "math500")
    assert splits("mbpp") == ("validate", "test", "full", "full-974")


@pytest.mark.parametrize("name", DATASETS)
def test_aflow_split_sizes_ids_and_types(name: str) -> None:
    validate, test = load(name, "validate"), load(name, "test")
    assert (len(validate), len(test)) == AFLOW_SIZES[name]
    ids_v, ids_t = [p.id for p in validate], [p.id for p in test]
    assert len(set(ids_v)) == len(ids_v) and len(set(ids_t)) == len(ids_t)
    assert not set(ids_v) & set(ids_t), "AFlow's validate and test never overlap"
    for p in validate + test:
        assert isinstance(p, Problem)
        assert p.dataset == name and p.task_type is TASK_TYPES[name]
        assert re.fullmatch(ID_PATTERNS[name], p.id), p.id
        assert p.prompt and p.answers and all(isinstance(a, str) for a in p.answers)


@pytest.mark.parametrize("name", DATASETS)
def test_order_is_file_order_and_limit_keeps_the_head(name: str) -> None:
    path = bundled_aflow_dir() / f"{name}_test.jsonl"
    with open(path, encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    problems = load(name, "test")
    head = load(name, "test", limit=3)
    assert [p.id for p in head] == [p.id for p in problems[:3]]
    raw_id = {"humaneval": "task_id", "mbpp": "task_id", "gsm8k": "id", "drop": "id", "hotpotqa": "_id"}
    if name in raw_id:
        expected = first[raw_id[name]]
        assert problems[0].id == (f"Mbpp/{expected}" if name == "mbpp" else str(expected))
    else:
        assert problems[0].prompt == first["problem"]
    assert load(name, "test", limit=0) == []


def test_bundled_split_files_are_byte_identical_to_aflow(shared_data_if_any: Path | None) -> None:
    folder = bundled_aflow_dir()
    sums = dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert len(sums) == 14
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    if shared_data_if_any is not None:  # and they are the files of the verified shared copy
        shared = dict(
            line.split()[::-1] for line in (shared_data_if_any / "SHA256SUMS").read_text().splitlines()
        )
        for name, digest in sums.items():
            assert shared[f"aflow_splits/{name}"] == digest, name


@pytest.mark.parametrize(("name", "split"), sorted(FULL_SIZES))
def test_full_split_sizes_and_unique_ids(shared_data: Path, name: str, split: str) -> None:
    problems = load(name, split, data_dir=shared_data)
    assert len(problems) == FULL_SIZES[(name, split)]
    ids = [p.id for p in problems]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(ID_PATTERNS[name], i) for i in ids)


@pytest.mark.parametrize("name", ["humaneval", "mbpp", "gsm8k"])
def test_aflow_splits_partition_the_official_set_with_the_same_ids(shared_data: Path, name: str) -> None:
    # AFlow split HumanEval, sanitized MBPP and GSM8K test 1:4 (README aflow_splits): the ids of
    # validate + test must be exactly the ids of `full`, so results join across splits.
    full = {p.id: p for p in load(name, "full", data_dir=shared_data)}
    both = load(name, "validate") + load(name, "test")
    assert sorted(p.id for p in both) == sorted(full)
    for p in both:
        f = full[p.id]
        if name == "humaneval":
            assert p == f  # field-for-field identical records
        elif name == "gsm8k":
            assert (p.prompt, p.reference, p.answers) == (f.prompt, f.reference, f.answers)
        elif p.id not in ("Mbpp/56", "Mbpp/630"):  # the two tasks AFlow edited
            assert p.reference == f.reference and p.extras["test_list"] == f.extras["test_list"]
            assert p.extras["entry_point"] == f.extras["entry_point"]
            assert p.extras["public_tests"] == f.extras["public_tests"]


@pytest.mark.parametrize(("name", "count"), [("math", 605), ("drop", 1000)])
def test_aflow_samples_are_records_of_the_official_set(shared_data: Path, name: str, count: int) -> None:
    full = {p.id: p for p in load(name, "full", data_dir=shared_data)}
    both = load(name, "validate") + load(name, "test")
    assert len(both) == count
    for p in both:
        f = full[p.id]
        assert (p.prompt, p.reference, p.answers) == (f.prompt, f.reference, f.answers)


def test_data_dir_pointing_at_aflow_splits_folder_matches_bundled(shared_data: Path) -> None:
    for name in ("gsm8k", "mbpp"):
        assert load(name, "validate", data_dir=shared_data) == load(name, "validate")
        assert load(name, "test", data_dir=shared_data / "aflow_splits") == load(name, "test")


def test_unknown_dataset_or_split_lists_valid_ones() -> None:
    with pytest.raises(
        BenchConfigError, match="unknown dataset 'gsm9k'.*humaneval, mbpp, gsm8k, math, drop, hotpotqa"
    ):
        load("gsm9k")
    with pytest.raises(
        BenchConfigError, match="unknown split 'dev' for drop; choose from: validate, test, full"
    ):
        load("drop", "dev")
    with pytest.raises(BenchConfigError, match="unknown split 'math500' for gsm8k"):
        load("gsm8k", "math500")
    with pytest.raises(BenchConfigError, match="unknown dataset"):
        splits("nope")


@pytest.mark.parametrize("limit", [-1, 1.5, True, "3"])
def test_bad_limit_is_a_config_error(limit: object) -> None:
    with pytest.raises(BenchConfigError, match="limit"):
        load("gsm8k", "validate", limit=limit)  # type: ignore[arg-type]


def test_full_without_data_dir_says_to_pass_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(BenchConfigError, match="--data-dir"):
        load("gsm8k", "full")
    with pytest.raises(BenchConfigError, match="not a folder"):
        load("gsm8k", "full", data_dir="/nonexistent/folder")
    with pytest.raises(BenchConfigError, match="not a folder"):
        load("gsm8k", "test", data_dir="/nonexistent/folder")


def test_env_var_is_the_default_full_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        {"question": "One plus one?", "answer": "1 + 1 = <<1+1=2>>2\n#### 2"},
        {"question": "Two times three?", "answer": "It is 6.\n#### 6"},
    ]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    problems = load("gsm8k", "full")
    assert [p.id for p in problems] == ["gsm8k-test-0", "gsm8k-test-1"]
    assert problems[1].answers == ("6",) and problems[1].extras["cot"] == "It is 6."


def test_missing_official_file_lists_the_paths_tried(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"drop_v0_dev\.jsonl\.gz .*not found \(looked for: .*drop_v0_dev"):
        load("drop", "full", data_dir=tmp_path)
    with pytest.raises(DataError, match="not bundled"):
        load("hotpotqa", "full", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"AFlow split file math_test\.jsonl not found"):
        load("math", "test", data_dir=tmp_path)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _good_gsm8k(i: int) -> str:
    return json.dumps({"question": f"q{i}", "answer": str(i), "cot": "c", "id": f"gsm8k-test-{i}"})


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path / "gsm8k_test.jsonl", [_good_gsm8k(0), _good_gsm8k(1), '{"question": "x", "answer": '])
    with pytest.raises(DataError, match=r"gsm8k_test\.jsonl:3: not valid JSON"):
        load("gsm8k", "test", data_dir=tmp_path)


def test_missing_or_mistyped_field_names_file_line_and_field(tmp_path: Path) -> None:
    _write(
        tmp_path / "gsm8k_test.jsonl",
        [_good_gsm8k(0), json.dumps({"question": "q", "answer": "1", "id": "x"})],
    )
    with pytest.raises(DataError, match=r"gsm8k_test\.jsonl:2: missing field 'cot'"):
        load("gsm8k", "test", data_dir=tmp_path)
    _write(
        tmp_path / "drop_test.jsonl",
        [json.dumps({"context": "c", "completion": " a", "ref_text": "a", "id": "7"})],
    )
    with pytest.raises(DataError, match=r"drop_test\.jsonl:1: field 'id' must be int, got str"):
        load("drop", "test", data_dir=tmp_path)
    _write(tmp_path / "mbpp_test.jsonl", ["[1, 2]"])
    with pytest.raises(DataError, match=r"mbpp_test\.jsonl:1: expected a JSON object"):
        load("mbpp", "test", data_dir=tmp_path)


def test_duplicate_ids_are_a_data_error(tmp_path: Path) -> None:
    _write(tmp_path / "gsm8k_validate.jsonl", [_good_gsm8k(4), _good_gsm8k(4)])
    with pytest.raises(DataError, match="'gsm8k-test-4' occurs twice"):
        load("gsm8k", "validate", data_dir=tmp_path)


def test_official_file_errors_name_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    _write(folder / "test.jsonl", [json.dumps({"question": "q", "answer": "no final line"})])
    with pytest.raises(DataError, match=r"test\.jsonl:1: answer has no final '#### ' line"):
        load("gsm8k", "full", data_dir=tmp_path)
    with gzip.open(tmp_path / "drop_v0_dev.jsonl.gz", "wt") as fh:
        fh.write(
            json.dumps({"context": "Passage: p\nQuestion: q\nAnswer:", "completion": " 3", "ref_text": "3"})
            + "\n"
        )
        fh.write("not json\n")
    with pytest.raises(DataError, match=r"drop_v0_dev\.jsonl\.gz:2: not valid JSON"):
        load("drop", "full", data_dir=tmp_path)


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "drop_v0_dev.jsonl.gz").write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match="cannot read"):
        load("drop", "full", data_dir=tmp_path)


def test_user_aflow_folder_can_be_gzipped(tmp_path: Path) -> None:
    src = bundled_aflow_dir() / "drop_validate.jsonl"
    with gzip.open(tmp_path / "drop_validate.jsonl.gz", "wb") as fh:
        fh.write(src.read_bytes())
    assert load("drop", "validate", data_dir=tmp_path) == load("drop", "validate")


def test_user_folder_without_public_tests_uses_bundled_ones(tmp_path: Path) -> None:
    shutil.copy(bundled_aflow_dir() / "humaneval_validate.jsonl", tmp_path)
    shutil.copy(bundled_aflow_dir() / "mbpp_validate.jsonl", tmp_path)
    assert load("humaneval", "validate", data_dir=tmp_path) == load("humaneval", "validate")
    assert load("mbpp", "validate", data_dir=tmp_path) == load("mbpp", "validate")
