"""``sf bench run … --ray ADDRESS`` on a real 2-node Ray cluster.

One dockerd per node, loopback only: the same records, files and summary as the single-machine
run, resume included, and a hanging answer times out exactly as it does locally.

The cluster (``sf_sandbox.testing.shared_ray_cluster``) is shared with sf-sandbox's Ray tests when
both run in one pytest process; this process is its Ray driver, so ``main([...])`` runs in-process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

DATASETS = ["humaneval", "mbpp", "gsm8k", "math", "drop", "hotpotqa"]
VOLATILE = {"latency", "finished_at"}


@pytest.fixture(scope="session")  # one cluster for every Ray test of the session (shared_ray_cluster)
def cluster() -> Iterator[Any]:
    from sf_sandbox.testing import require_ray_cluster, shared_ray_cluster

    require_ray_cluster()
    with shared_ray_cluster() as c:
        yield c


def _bench(*args: str) -> int:
    from sf_bench.cli import main

    return main(list(args))


def _strip(value: Any) -> Any:
    """A record or summary without what differs between any two runs (timings)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _records(path: Path) -> list[dict[str, Any]]:
    rows = [_strip(json.loads(line)) for line in path.read_text().splitlines()]
    return sorted(rows, key=lambda r: (r["problem_id"], r["sample"]))  # file order is finishing order


def _same_run(local: Path, ray: Path) -> None:
    assert sorted(p.name for p in ray.iterdir()) == sorted(p.name for p in local.iterdir())
    assert json.loads((ray / "run.json").read_text()) == json.loads((local / "run.json").read_text())
    for jsonl in sorted(local.glob("*.jsonl")):
        assert _records(ray / jsonl.name) == _records(jsonl), jsonl.name
    assert _strip(json.loads((ray / "summary.json").read_text())) == _strip(
        json.loads((local / "summary.json").read_text())
    )


def test_ray_run_matches_the_local_run_and_resumes(
    cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.heal()
    common = ["run", *DATASETS, "--solver", "canonical", "--split", "validate", "--limit", "3", "--quiet"]
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert _bench(*common, "--out", str(local)) == 0
    local_out = capsys.readouterr().out
    assert _bench(*common, "--out", str(ray), "--ray", cluster.address) == 0
    captured = capsys.readouterr()
    assert "ray: 2 node(s), 6 job(s)" in captured.err  # 3 HumanEval + 3 MBPP tests ran on the cluster
    assert captured.out.replace(str(ray), str(local)) == local_out  # the same table
    _same_run(local, ray)
    assert all(r["score"] == 1.0 for r in _records(ray / "humaneval.jsonl") + _records(ray / "mbpp.jsonl"))

    # resume: lose the last two HumanEval records; the rerun on Ray writes exactly those again
    path = ray / "humaneval.jsonl"
    kept = path.read_text().splitlines()[:-2]
    path.write_text("".join(line + "\n" for line in kept))
    assert _bench(*common, "--out", str(ray), "--ray", cluster.address) == 0
    assert "ray: 2 node(s), 2 job(s)" in capsys.readouterr().err
    assert path.read_text().splitlines()[:-2] == kept
    _same_run(local, ray)


def test_hanging_answer_times_out_on_ray_as_locally(cluster: Any, tmp_path: Path) -> None:
    from sf_bench.datasets import load

    cluster.heal()
    problems = load("humaneval", "validate", limit=3)
    body = ["    while True:\n        pass\n", "    return None\n", problems[2].reference]
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"task_id": p.id, "completion": c}) + "\n" for p, c in zip(problems, body, strict=True)
        )
    )
    common = [
        "run",
        "humaneval",
        "--split",
        "validate",
        "--limit",
        "3",
        "--solver",
        f"file:{answers}",
        "--test-timeout",
        "1",
        "--quiet",
    ]
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert _bench(*common, "--out", str(local)) == 0
    assert _bench(*common, "--out", str(ray), "--ray", cluster.address) == 0
    _same_run(local, ray)
    by_id = {r["problem_id"]: r for r in _records(ray / "humaneval.jsonl")}
    assert [by_id[p.id]["failure"] for p in problems] == ["timeout", "assertion", None]
    assert [by_id[p.id]["score"] for p in problems] == [0.0, 0.0, 1.0]


def test_ray_option_needs_an_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _bench("run", "humaneval", "--limit", "1", "--ray", " ", "--out", str(tmp_path / "x"), "--quiet")
    assert code == 2 and "--ray needs 'auto' or the head's HOST:PORT" in capsys.readouterr().err
