"""The supervisor's payload: its modules joined into the one program that python3 >= 3.8 runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sf_sandbox.supervisor as sup
from sf_sandbox.supervisor import PAYLOAD, _without_sibling_imports, supervisor_source

HERE = Path(sup.__file__).parent


def test_every_module_of_the_supervisor_is_joined_once() -> None:
    modules = sorted(p.stem for p in HERE.glob("*.py") if p.name not in ("__init__.py", "sf_host.py"))
    assert sorted(PAYLOAD) == modules
    assert len(set(PAYLOAD)) == len(PAYLOAD)
    assert PAYLOAD[-1] == "main"  # the entry point runs last, with every name defined


def test_the_joined_source_is_python_38_with_no_sibling_imports_left() -> None:
    tree = ast.parse(supervisor_source(), feature_version=(3, 8))
    relative = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert relative == []
    for name in PAYLOAD:
        assert f"# ---- sf_supervisor: {name}.py ----\n".encode() in supervisor_source()


def _bound_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level, imports left out."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.For)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def test_no_two_modules_bind_the_same_name() -> None:
    # joined, every module shares one namespace: a second binding would silently replace the first
    owner: dict[str, str] = {}
    for name in PAYLOAD:
        for bound in _bound_names(ast.parse((HERE / f"{name}.py").read_text())):
            assert bound not in owner, f"{bound} is bound in both {owner[bound]}.py and {name}.py"
            owner[bound] = name


def test_a_module_may_import_only_siblings_joined_before_it() -> None:
    text = '"""Doc."""\n\nfrom .frames import (\n    Channel,\n)\nX = 1\n'
    assert _without_sibling_imports("m", text, {"frames"}) == '"""Doc."""\n\nX = 1\n'
    with pytest.raises(ValueError, match="not joined before it"):
        _without_sibling_imports("m", text, set())
    nested = "def f():\n    from .frames import Channel\n"
    with pytest.raises(ValueError, match="below its top level"):
        _without_sibling_imports("m", nested, {"frames"})


def test_joining_the_source_defines_everything_and_starts_nothing() -> None:
    namespace: dict[str, object] = {"__name__": "sf_supervisor_under_test"}
    exec(compile(supervisor_source(), "sf_supervisor", "exec"), namespace)  # noqa: S102 - our own source
    for name in ("main", "Supervisor", "Multiplexer", "JobRun", "Relay", "Channel", "serve", "wipe_tree"):
        assert callable(namespace[name])
