"""The tree passes its static checks: ruff (with the docstring rules) and pyright, as configured.

Both tools run over the whole workspace with the root ``pyproject.toml``'s settings (``[tool.ruff]``,
``[tool.pyright]``: basic for every member's ``src/``, strict for sf-sandbox, sf-workflows and
sf-bench). ruff must report nothing; pyright may not report more in any file than
``tests/pyright_baseline.json`` allows (the strict typing of the rest is unfinished: the
baseline only falls); a failure prints every finding, one per line. Both come from
the workspace venv's dev group (``uv sync``; ``scripts/setup.sh`` runs it). pyright takes about a
minute on two cores, so these tests carry the ``lint`` marker: ``pytest tests/test_tooling.py`` (or
``-m lint``) runs them alone, ``-m "not lint"`` leaves them out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.lint, pytest.mark.timeout(900)]


def _tool(name: str) -> Path:
    """The dev group's ``name`` script in the venv running the tests (else the workspace's ``.venv``)."""
    for bin_dir in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        if (bin_dir / name).is_file():
            return bin_dir / name
    pytest.fail(f"{name} is not installed: run `uv sync` (or scripts/setup.sh), which installs the dev group")


def test_ruff_reports_nothing() -> None:
    proc = subprocess.run(
        [str(_tool("ruff")), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"ruff check found problems:\n{proc.stdout}{proc.stderr}", pytrace=False)


BASELINE = ROOT / "tests" / "pyright_baseline.json"
"""Per file, the pyright findings the tree still has (the strict typing is not finished there):
the count may only fall. A file not listed must have none. Rewrite it after a clean-up with
``python tests/test_tooling.py --write-baseline``."""


def _pyright_findings() -> list[dict[str, Any]]:
    # --outputjson: parseable, and no PyPI version check (pyright-python skips it with this flag)
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}
    proc = subprocess.run(
        [str(_tool("pyright")), "--outputjson"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return [d for d in report["generalDiagnostics"] if d["severity"] in ("error", "warning")]


def _per_file(findings: list[dict[str, Any]]) -> Counter[str]:
    return Counter(os.path.relpath(d["file"], ROOT) for d in findings)


def test_pyright_findings_only_fall() -> None:
    findings = _pyright_findings()
    allowed: dict[str, int] = json.loads(BASELINE.read_text(encoding="utf-8"))
    per_file = _per_file(findings)
    worse = {path: n for path, n in per_file.items() if n > allowed.get(path, 0)}
    if worse:
        lines = []
        for d in findings:
            path = os.path.relpath(d["file"], ROOT)
            if path in worse:
                start = d["range"]["start"]
                message = d["message"].replace("\n", " ")
                lines.append(
                    f"{path}:{start['line'] + 1}:{start['character'] + 1}: {message} ({d.get('rule', '')})"
                )
        summary = "\n".join(f"{n:5d} (allowed {allowed.get(p, 0)})  {p}" for p, n in sorted(worse.items()))
        pytest.fail(
            f"pyright: {len(worse)} files have more findings than tests/pyright_baseline.json allows:\n"
            + "\n".join(lines)
            + f"\n\nper file:\n{summary}",
            pytrace=False,
        )


def test_pyright_baseline_lists_only_real_files() -> None:
    allowed: dict[str, int] = json.loads(BASELINE.read_text(encoding="utf-8"))
    missing = [path for path in allowed if not (ROOT / path).is_file()]
    assert not missing, f"tests/pyright_baseline.json lists files that are gone: {missing}"


if __name__ == "__main__" and sys.argv[1:] == ["--write-baseline"]:
    counts = _per_file(_pyright_findings())
    BASELINE.write_text(json.dumps(dict(sorted(counts.items())), indent=1) + "\n", encoding="utf-8")
    print(f"{sum(counts.values())} findings in {len(counts)} files -> {BASELINE}")
