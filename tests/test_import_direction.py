"""Packages import only downward, and the supervisor imports only the standard library.

sf-workflows → sf-sandbox; sf-bench → sf-workflows, sf-sandbox; sf-train → sf-bench,
sf-workflows, sf-sandbox. The supervisor imports only the standard library.

"Import" means every way Python code names a module to load: ``import``, ``from … import``, and any
call whose first argument is a literal string or f-string naming one of our packages
(``importlib.import_module("sf_bench…")``, ``__import__(…)``, or a helper that forwards the name to
them), so a lazy or hidden arrow is seen too.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "sf_sandbox": set(),
    "sf_workflows": {"sf_sandbox"},
    "sf_bench": {"sf_sandbox", "sf_workflows"},
    "sf_train": {"sf_sandbox", "sf_workflows", "sf_bench"},
}


def _literal_head(node: ast.expr) -> str | None:
    """The module name a dynamic import's first argument spells out, as far as it is literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module name ``path`` imports, statically or through importlib/__import__."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args and (head := _literal_head(node.args[0])):
            if head.split(".")[0] in ALLOWED:
                names.add(head)
    return names


def upward_imports(pkg: str, src: Path) -> list[str]:
    """``path imports name`` for each import under ``src`` that package ``pkg`` may not make."""
    bad = []
    for path in sorted(src.rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in ALLOWED and top != pkg and top not in ALLOWED[pkg]:
                bad.append(f"{path} imports {name}")
    return bad


def test_no_upward_imports() -> None:
    bad = []
    for pkg in ALLOWED:
        bad += upward_imports(pkg, ROOT / "packages" / pkg.replace("_", "-") / "src" / pkg)
    assert not bad, "\n".join(bad)


def test_a_planted_dynamic_import_is_caught(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('import importlib\nimportlib.import_module("sf_bench")\n')
    (tmp_path / "b.py").write_text('from importlib import import_module\nimport_module(f"sf_bench.{x}")\n')
    (tmp_path / "c.py").write_text('__import__("sf_train.loop")\n')
    (tmp_path / "d.py").write_text('import importlib\nimportlib.import_module("sf_sandbox")\n')  # allowed
    found = upward_imports("sf_workflows", tmp_path)
    assert [line.rsplit(" imports ", 1)[1] for line in found] == ["sf_bench", "sf_bench.", "sf_train.loop"]


def test_every_imported_sibling_is_a_declared_dependency() -> None:
    for pkg, allowed in ALLOWED.items():
        folder = ROOT / "packages" / pkg.replace("_", "-")
        declared = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["dependencies"]
        dists = {d.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for d in declared}
        used = {
            name.split(".")[0]
            for path in (folder / "src" / pkg).rglob("*.py")
            for name in imported_modules(path)
        } & set(allowed)
        missing = sorted(u for u in used if u.replace("_", "-") not in dists)
        assert not missing, f"{pkg} imports {missing} without declaring them in {folder}/pyproject.toml"


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


def _module_imports() -> dict[str, set[str]]:
    """Our modules → the modules of ours each imports (anywhere in it, lazily too)."""
    files: dict[str, Path] = {}
    for pkg in ALLOWED:
        src = ROOT / "packages" / pkg.replace("_", "-") / "src"
        for path in (src / pkg).rglob("*.py"):
            parts = path.relative_to(src).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def ours(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        # a module importing its own package (``from sf_x import errors`` in sf_x.y) is not a circle
        graph[module] = {
            t for name in targets if (t := ours(name)) and t != module and not module.startswith(t + ".")
        }
    return graph


def test_no_import_cycles_between_modules() -> None:
    graph = _module_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
