"""The tree passes its static checks: ruff (with the docstring rules) and pyright, as configured.

Both tools run over the whole workspace with the root ``pyproject.toml``'s settings (``[tool.ruff]``,
``[tool.pyright]``: basic for every member's ``src/``, strict for sf-sandbox, sf-workflows and
sf-bench) and must report nothing; a failure prints every finding, one per line. Both come from
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


def test_pyright_reports_nothing() -> None:
    # --outputjson: parseable, and no PyPI version check (pyright-python skips it with this flag)
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}
    proc = subprocess.run(
        [str(_tool("pyright")), "--outputjson"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    findings = [d for d in report["generalDiagnostics"] if d["severity"] in ("error", "warning")]
    lines = []
    for d in findings:
        start = d["range"]["start"]
        path = os.path.relpath(d["file"], ROOT)
        message = d["message"].replace("\n", " ")
        where = f"{path}:{start['line'] + 1}:{start['character'] + 1}"
        lines.append(f"{where}: {d['severity']}: {message} ({d.get('rule', '')})")
    per_file = Counter(os.path.relpath(d["file"], ROOT) for d in findings)
    summary = "\n".join(f"{n:5d}  {path}" for path, n in sorted(per_file.items()))
    if findings:
        pytest.fail(
            f"pyright found {len(findings)} problems in {len(per_file)} files:\n"
            + "\n".join(lines)
            + f"\n\nper file:\n{summary}",
            pytrace=False,
        )
    assert proc.returncode == 0, f"pyright exited {proc.returncode}:\n{proc.stderr}"
