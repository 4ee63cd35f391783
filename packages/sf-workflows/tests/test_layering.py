"""Import direction and the in-sandbox runtime's stdlib-only rule, checked on the source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sf_workflows

SRC = Path(sf_workflows.__file__).parent


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.level if hasattr(node, "level") else 0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_sf_workflows_never_imports_sf_bench_or_sf_train() -> None:
    for path in SRC.rglob("*.py"):
        for _level, name in imports(path):
            assert name.split(".")[0] not in ("sf_bench", "sf_train"), f"{path} imports {name}"
    # problems come through the sf.problem_sources entry point, never by importing sf_bench
    assert "sf_bench" not in (SRC / "_bench.py").read_text().split('"""', 2)[2]


def test_operators_package_is_stdlib_only_with_relative_imports() -> None:
    for path in (SRC / "operators").glob("*.py"):
        for level, name in imports(path):
            if level:
                continue
            root = name.split(".")[0]
            assert root in sys.stdlib_module_names or root == "sf_host" or root == "__future__", (
                f"{path.name} imports {name}: the operators run inside the sandbox with the stdlib only"
            )


def test_import_is_light() -> None:
    code = (
        "import sys, sf_workflows, sf_workflows.cli; "
        "print('openai' in sys.modules, 'sf_bench' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
