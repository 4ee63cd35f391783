"""The tree passes its static checks: ruff (with the docstring rules) and pyright, as configured.

Both tools run over the whole workspace with the root ``pyproject.toml``'s settings (``[tool.ruff]``,
``[tool.pyright]``: basic for every member's ``src/``, strict for sf-sandbox, sf-workflows and
sf-bench). Both must report nothing (no errors, no warnings); a failure prints every finding,
one per line. Both come from
the workspace venv's dev group (``uv sync``; ``scripts/setup.sh`` runs it). pyright takes about a
minute on two cores, so these tests carry the ``lint`` marker: ``pytest tests/test_tooling.py`` (or
``-m lint``) runs them alone, ``-m "not lint"`` leaves them out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_pyright_reports_nothing() -> None:
    findings = _pyright_findings()
    if findings:
        lines = []
        for d in findings:
            start = d["range"]["start"]
            message = d["message"].replace("\n", " ")
            path = os.path.relpath(d["file"], ROOT)
            lines.append(
                f"{path}:{start['line'] + 1}:{start['character'] + 1}: {message} ({d.get('rule', '')})"
            )
        pytest.fail(f"pyright found {len(findings)} problems:\n" + "\n".join(lines), pytrace=False)
