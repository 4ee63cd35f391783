"""The validator's check of attribute paths and ``from`` imports that reach forbidden modules.

``asyncio.base_events.os`` reaches ``os`` through an allowlisted module; so does
``from asyncio import base_events``. Paths are resolved against the real standard-library
modules, by name, without running the workflow.
"""

from __future__ import annotations

import ast
import importlib
import types

from sf_workflows.generator._rules import ALLOWED_IMPORTS, Issue

__all__ = ["check_module_paths"]


def check_module_paths(tree: ast.Module, issues: list[Issue]) -> None:
    """Flag ``mod.a.b`` paths and ``from mod import x`` that reach a non-allowlisted module."""
    bound = _module_bindings(tree)
    seen: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            _check_from_import(node, issues)
        if not isinstance(node, ast.Attribute) or id(node) in seen:
            continue
        chain = _attribute_chain(node)
        if chain is None or chain[0] not in bound:
            continue
        # mark the inner attribute nodes of this chain so each path is reported once
        inner: ast.expr = node.value
        while isinstance(inner, ast.Attribute):
            seen.add(id(inner))
            inner = inner.value
        _check_path(bound[chain[0]], chain[0], chain[1], node.lineno, issues)


def _check_from_import(node: ast.ImportFrom, issues: list[Issue]) -> None:
    """Flag ``from allowed import x`` where ``x`` is a module outside the allowlist."""
    module = _allowed_from_module(node)
    if module is None:
        return
    for alias in node.names:
        root = _module_root(getattr(module, alias.name, None))
        if root is not None and root not in ALLOWED_IMPORTS:
            issues.append(
                Issue(
                    f"from {node.module} import {alias.name} reaches module {root!r}, which "
                    "workflows may not use",
                    node.lineno,
                )
            )


def _check_path(start: types.ModuleType, path: str, attrs: list[str], line: int, issues: list[Issue]) -> None:
    """Follow ``attrs`` from the module ``start`` (bound as ``path``); flag the first forbidden module.

    The walk stops at a dunder attribute (those are flagged elsewhere) and at a missing one.
    """
    value: object = start
    for attr in attrs:
        if attr.startswith("__"):
            break
        value = getattr(value, attr, None)
        path += f".{attr}"
        root = _module_root(value)
        if root is not None and root not in ALLOWED_IMPORTS:
            issues.append(Issue(f"{path} reaches module {root!r}, which workflows may not use", line))
            break
        if value is None:
            break


def _module_root(value: object) -> str | None:
    name = getattr(value, "__name__", None) if isinstance(value, types.ModuleType) else None
    return name.split(".")[0] if isinstance(name, str) else None


def _allowed_from_module(node: ast.ImportFrom) -> types.ModuleType | None:
    """The module an absolute ``from X import …`` names, when X is allowlisted and importable."""
    if node.level or not node.module:
        return None
    if node.module.split(".")[0] not in ALLOWED_IMPORTS:
        return None
    try:
        return importlib.import_module(node.module)
    except ImportError:
        return None


def _module_bindings(tree: ast.Module) -> dict[str, types.ModuleType]:
    """Local names bound to allowlisted modules, plus ``asyncio``, which every workflow gets.

    The bindings are ``import re``, ``import json as j``, ``from asyncio import events``.
    """
    bound: dict[str, types.ModuleType] = {"asyncio": importlib.import_module("asyncio")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in ALLOWED_IMPORTS:
                    try:
                        if alias.asname:
                            bound[alias.asname] = importlib.import_module(alias.name)
                        else:
                            bound[root] = importlib.import_module(root)
                    except ImportError:
                        continue
        elif isinstance(node, ast.ImportFrom) and (module := _allowed_from_module(node)) is not None:
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if isinstance(value, types.ModuleType):
                    bound[alias.asname or alias.name] = value
    return bound


def _attribute_chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    attrs: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        attrs.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    return current.id, attrs[::-1]
