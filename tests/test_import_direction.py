"""Packages import only downward: sf-workflows → sf-sandbox; sf-bench → sf-workflows, sf-sandbox;
sf-train → sf-bench, sf-workflows. The supervisor imports only the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "sf_sandbox": set(),
    "sf_workflows": {"sf_sandbox"},
    "sf_bench": {"sf_sandbox", "sf_workflows"},
    "sf_train": {"sf_sandbox", "sf_workflows", "sf_bench"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_upward_imports() -> None:
    bad = []
    for pkg, allowed in ALLOWED.items():
        src = ROOT / "packages" / pkg.replace("_", "-") / "src" / pkg
        for path in src.rglob("*.py"):
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top in ALLOWED and top != pkg and top not in allowed:
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_supervisor_is_stdlib_only() -> None:
    sup = ROOT / "packages" / "sf-sandbox" / "src" / "sf_sandbox" / "supervisor"
    for path in sup.glob("*.py"):
        if path.name == "__init__.py":
            continue  # host-side loader of the supervisor's source
        for name in imported_modules(path):
            assert name.split(".")[0] in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_sf_help_does_not_import_heavy_modules() -> None:
    import subprocess

    code = (
        "import sys\nfrom sf_sandbox.cli import main\nmain(['--help'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'openai', 'docker', 'ray')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("HEAVY []"), out
