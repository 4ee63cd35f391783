"""User generators (``module:function``, ``path.py:name``, ``file:PATH``) end to end.

``--generator module:function`` / ``path.py:name`` and ``--generator file:PATH`` through the
real CLI (``main([...])``), sf-workflows' ScriptedServer as the executor (real HTTP, real
openai client) and the real sandbox. Good, raising, short, invalid, non-string and hanging
generators; pre-generated workflows in JSONL and in a folder, and their strictness.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import load
from sf_workflows import get_template
from sf_workflows.testing import ScriptedServer

GENERATORS = """
import asyncio, threading
from sf_workflows import get_template

COT = get_template("cot", "math")
CALLS = []

def good(problems, k):
    CALLS.append(len(problems))
    return [[COT] * k for _ in problems]

async def agood(problems, k):
    await asyncio.sleep(0)
    return [["<graph>\\n" + COT + "</graph>"] * k for _ in problems]

class Gen:
    async def generate(self, problems, k):
        return [[COT] * k for _ in problems]

def mixed(problems, k):
    out = []
    for p in problems:
        n = IDS.index(p.id)
        if n == 1:
            raise ValueError(f"boom on {p.id}")
        out.append(
            [COT] * k if n == 0
            else [COT] * (k - 1) if n == 2
            else ["import os\\nclass Workflow:\\n    pass\\n"] * k if n == 3
            else [COT] * (k - 1) + [42]
        )
    return out

def hangs(problems, k):
    threading.Event().wait()

async def ahangs(problems, k):
    await asyncio.Event().wait()

def wrong_outer(problems, k):
    return [[COT] * k] * (len(problems) + 1)

def gen_expr(problems, k):
    return ((COT for _ in range(k)) for _ in problems)

def exits(problems, k):
    raise SystemExit(3)

def nothing(problems, k):
    return None
"""


@pytest.fixture
def server(no_llm_env: None, oracle: Any) -> Iterator[dict[str, Any]]:
    """A scripted server answering operator prompts with the gold answers of gsm8k validate[:5]."""
    problems = load("gsm8k", "validate", limit=5)
    with ScriptedServer(oracle(problems)) as srv:
        yield {"server": srv, "url": srv.base_url, "problems": problems}


@pytest.fixture
def gens(tmp_path: Path) -> Path:
    path = tmp_path / "my_generators.py"
    ids = [p.id for p in load("gsm8k", "validate", limit=5)]
    path.write_text(f"IDS = {ids!r}\n" + GENERATORS)
    return path


def records(out: Path, dataset: str = "gsm8k") -> dict[tuple[str, int], dict[str, Any]]:
    lines = (out / f"{dataset}.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines if x.strip()]
    return {(r["problem_id"], r["sample"]): r for r in recs}


def run(url: str, generator: str, out: Path, *extra: str) -> int:
    args = ["run", "gsm8k", "--split", "validate", "--generator", generator, "--out", str(out)]
    return main([*args, "--base-url", url, "--executor-model", "m", "-q", *extra])


@pytest.mark.docker
@pytest.mark.parametrize("name", ["good", "agood", "Gen", "gen_expr"])
def test_a_good_generator_scores_like_the_template(
    server: dict[str, Any], gens: Path, tmp_path: Path, docker_ready: None, name: str
) -> None:
    out = tmp_path / name
    assert run(server["url"], f"{gens}:{name}", out, "--limit", "2", "--k", "2") == 0
    recs = records(out)
    assert len(recs) == 4
    assert all(r["score"] == 1.0 and r["status"] == "scored" for r in recs.values()), recs
    assert all(r["runs"][0]["metadata"]["workflow"] == get_template("cot", "math") for r in recs.values())
    assert json.loads((out / "run.json").read_text())["system"] == f"{gens}:{name}"


@pytest.mark.docker
def test_failures_are_recorded_per_problem_and_the_batch_goes_on(
    server: dict[str, Any], gens: Path, tmp_path: Path, docker_ready: None, capsys: Any
) -> None:
    out = tmp_path / "mixed"
    assert run(server["url"], f"{gens}:mixed", out, "--limit", "5", "--k", "8") == 0
    recs = records(out)
    ids = [p.id for p in server["problems"]]
    assert len(recs) == 5 * 8
    # problem 0: a good generator's 8 workflows all run and pass
    assert all(recs[(ids[0], s)]["score"] == 1.0 for s in range(8))
    # problem 1: the generator raised -> every slot is a recorded error, nothing ran
    for s in range(8):
        rec = recs[(ids[1], s)]
        assert rec["status"] == "solver_error" and rec["score"] == 0.0
        assert f"the generator raised ValueError: boom on {ids[1]}" in rec["error"]
    # problem 2: 7 of 8 -> the count is named
    short = f"returned 7 workflow(s) for {ids[2]}, expected 8"
    assert all(short in recs[(ids[2], s)]["error"] for s in range(8))
    # problem 3: invalid workflows run through validation and score 0 with the reason
    for s in range(8):
        run0 = recs[(ids[3], s)]["runs"][0]
        assert run0["status"] == "scored" and run0["score"] == 0.0
        assert run0["metadata"]["workflow_status"] == "invalid"
        assert "import of 'os' is not allowed" in run0["metadata"]["workflow_error"]
    # problem 4: seven strings run, the non-string slot is an error
    assert all(recs[(ids[4], s)]["score"] == 1.0 for s in range(7))
    assert "workflow 7 for " + ids[4] + " is int, not a str" in recs[(ids[4], 7)]["error"]
    summary = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert summary["solver_errors"] == 8 + 8 + 1
    # resuming reruns nothing and keeps the same records
    before = server["server"].chat_requests
    assert run(server["url"], f"{gens}:mixed", out, "--limit", "5", "--k", "8") == 0
    assert server["server"].chat_requests == before and records(out) == recs


@pytest.mark.docker
@pytest.mark.parametrize("name", ["hangs", "ahangs"])
def test_a_generator_that_never_returns_times_out(
    server: dict[str, Any], gens: Path, tmp_path: Path, docker_ready: None, name: str
) -> None:
    out = tmp_path / name
    args = ("--limit", "2", "--k", "2", "--generator-timeout", "0.5", "--generator-batch", "2")
    assert run(server["url"], f"{gens}:{name}", out, *args) == 0
    recs = records(out)
    assert len(recs) == 4 and all(r["status"] == "solver_error" for r in recs.values())
    assert all("did not return within --generator-timeout 0.5 s" in r["error"] for r in recs.values())
    assert server["server"].chat_requests == 0


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("wrong_outer", "returned 3 list(s) for 2 problem(s)"),
        ("exits", "the generator raised SystemExit: 3"),
        ("nothing", "the generator returned NoneType, expected a list of 2 list(s)"),
    ],
)
def test_a_broken_batch_fails_its_problems_not_the_run(
    server: dict[str, Any], gens: Path, tmp_path: Path, docker_ready: None, name: str, error: str
) -> None:
    out = tmp_path / name
    assert run(server["url"], f"{gens}:{name}", out, "--limit", "2", "--generator-batch", "2") == 0
    recs = records(out)
    assert len(recs) == 2 and all(error in r["error"] and r["score"] == 0.0 for r in recs.values())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{gens}:nope", "has no attribute 'nope'"),
        ("{tmp}/missing.py:gen", "does not exist"),
        ("no_such_module_xyz:gen", "no module 'no_such_module_xyz'"),
        ("{broken}:gen", "importing"),
    ],
)
def test_bad_generator_specs_are_one_error_line(
    no_llm_env: None, gens: Path, tmp_path: Path, capsys: Any, spec: str, message: str
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('bad import')\n")
    spec = spec.format(gens=gens, tmp=tmp_path, broken=broken)
    code = main(["run", "gsm8k", "--generator", spec, "--base-url", "http://127.0.0.1:9/v1", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_an_installed_module_is_imported_by_name(
    server: dict[str, Any], gens: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(gens.parent))
    out = tmp_path / "module"
    assert run(server["url"], "my_generators:nothing", out, "--limit", "2") == 0
    assert all("returned NoneType" in r["error"] for r in records(out).values())


def test_generator_options_need_a_user_generator(no_llm_env: None, capsys: Any) -> None:
    code = main(["run", "gsm8k", "--generator", "template:cot", "--generator-timeout", "5", "-q"])
    assert code == 2 and "--generator-timeout applies to your own" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- file:PATH
def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.docker
def test_file_jsonl_and_folder_score_like_the_template(
    server: dict[str, Any], tmp_path: Path, docker_ready: None, capsys: Any
) -> None:
    ids = [p.id for p in server["problems"]][:2]
    cot = get_template("cot", "math")
    rows = [{"id": i, "workflow": "<graph>\n" + cot + "</graph>", "cost": 0.25, "tokens": 10} for i in ids]
    rows += [{"task_id": i, "workflow": cot} for i in ids]
    rows.append({"id": "gsm8k-test-999999", "workflow": cot})  # unknown: a warning
    path = _jsonl(tmp_path / "wf.jsonl", rows)
    out = tmp_path / "jsonl"
    assert run(server["url"], f"file:{path}", out, "--limit", "2") == 0
    err = capsys.readouterr().err
    assert "warning: 1 id(s) in" in err and "gsm8k-test-999999" in err
    recs = records(out)
    assert sorted(recs) == sorted((i, s) for i in ids for s in range(2))  # k defaults to 2 per id
    assert all(r["score"] == 1.0 for r in recs.values())
    summary = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert summary["generator_cost"] == pytest.approx(0.5) and summary["generator_tokens"] == 20

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / f"{ids[0].replace('/', '_')}.py").write_text(cot)
    (folder / ids[1]).mkdir()
    for j in range(2):
        (folder / ids[1] / f"{j}.py").write_text(cot)
    out2 = tmp_path / "folder-run"
    assert run(server["url"], f"file:{folder}", out2, "--limit", "2", "--k", "1") == 0
    assert all(r["score"] == 1.0 for r in records(out2).values()) and len(records(out2)) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": "gsm8k-test-677", "workflow": "x"}\n{"id": 1\n', ":2: not valid JSON"),
        (b'{"id": "gsm8k-test-677", "workflow": "caf\xe9"}\n', ":1: not UTF-8 (byte 0xe9 at column"),
        (b'{"workflow": "x"}\n', ":1: needs an id"),
        (b'{"id": "a", "workflow": 3}\n', ":1: needs the workflow source as a string"),
        (
            b'{"id": "a", "workflow": "x", "sample": 0}\n{"id": "a", "workflow": "y", "sample": 0}\n',
            ":2: duplicate sample 0 of id 'a'",
        ),
        (b'{"id": "gsm8k-test-677", "workflow": "x"}\n', "has fewer than 1 workflow(s) for 1 of 2"),
        (
            b'{"id": "gsm8k-test-677", "workflow": "x"}\n'
            b'{"id": "gsm8k-test-677", "dataset": "gsm8k", "workflow": "y"}\n',
            "both name problem gsm8k-test-677",
        ),
    ],
)
def test_bad_workflow_files_are_one_error_line(
    no_llm_env: None, tmp_path: Path, capsys: Any, content: bytes, message: str
) -> None:
    path = tmp_path / "wf.jsonl"
    path.write_bytes(content)
    args = ["run", "gsm8k", "--split", "validate", "--limit", "2", "--generator", f"file:{path}"]
    code = main([*args, "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and err.startswith("error: ")
    assert not (tmp_path / "o" / "gsm8k.jsonl").exists()  # refused before anything ran


def test_a_bom_is_accepted_and_folder_duplicates_are_refused(tmp_path: Path) -> None:
    from sf_bench.errors import DataError
    from sf_bench.systems.workflow_file import WorkflowFile

    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "x", "workflow": "class Workflow: pass"}\n')
    assert WorkflowFile(path).samples([]) == 0 and WorkflowFile(path)._ordered[(None, "x")]
    folder = tmp_path / "dup"
    folder.mkdir()
    (folder / "HumanEval_0.py").write_text("a")
    (folder / "HumanEval_0.txt").write_text("b")
    with pytest.raises(DataError, match="are both workflows of HumanEval_0"):
        WorkflowFile(folder)


def test_generation_shows_progress(server: dict[str, Any], gens: Path, tmp_path: Path, capsys: Any) -> None:
    args = ["run", "gsm8k", "--split", "validate", "--limit", "2", "--generator", f"{gens}:nothing"]
    assert main([*args, "--out", str(tmp_path / "o"), "--base-url", server["url"]]) == 0
    assert "generating workflows: 2/2 problems" in capsys.readouterr().err


def test_dataset_files_in_a_folder_keep_colliding_ids_apart(tmp_path: Path, make_problem: Any) -> None:
    import asyncio

    from sf_bench.systems.workflow_file import WorkflowFile

    _jsonl(tmp_path / "drop.jsonl", [{"id": "2", "workflow": "class Workflow:  # drop\n    pass\n"}])
    _jsonl(tmp_path / "mbpp.jsonl", [{"id": "2", "workflow": "class Workflow:  # mbpp\n    pass\n"}])
    file = WorkflowFile(tmp_path)
    drop, mbpp = make_problem("drop", "2"), make_problem("mbpp", "Mbpp/2")
    file.check([drop], 1)
    file.check([mbpp], 1)
    (d,), (m,) = asyncio.run(file.generate([drop, mbpp], 1))
    assert "# drop" in d and "# mbpp" in m
    assert file.warnings({"drop": [drop], "mbpp": [mbpp]}, 1) == []
