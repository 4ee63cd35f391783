"""Static checks of workflow source, with messages a generator can learn from.

**Validation is advice; the sandbox is the security boundary.** Validation exists to give
early, specific feedback (and to save a sandbox run on hopeless code); a determined workflow
can reach anything Python reaches at run time (``m = asyncio.base_events; m.os``), and only
the sandbox contains that. What the checks do catch statically: attribute paths from an
imported module to a module outside the allowlist (``asyncio.base_events.os`` reaches ``os``)
and ``from asyncio import base_events``-style imports of such modules, resolved against the
real standard-library modules. Checks: it parses; it defines ``class Workflow``
with ``__init__(self, config, problem)`` and ``async def run_workflow(self)`` that returns;
it uses only known operators allowed for the task, called with valid arguments; it imports only
allowlisted modules and not ``operator``/``create`` (they are provided); it uses no
``exec``/``eval``/``open``/dunder tricks; no string in it copies the problem text.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sf_workflows.operators import OPERATORS
from sf_workflows.operators._workflow import strip_scoreflow_imports

DEFAULT_OPERATORS: dict[str, tuple[str, ...]] = {
    "math": ("Custom", "Programmer", "ScEnsemble", "Review"),
    "qa": ("Custom", "AnswerGenerate", "ScEnsemble", "Review"),
    "code": ("CustomCodeGenerate", "ScEnsemble", "Test"),
}
"""Operators offered to the generator per task type (ScoreFlow's sets)."""

ALLOWED_OPERATORS: dict[str, tuple[str, ...]] = {
    "math": ("Custom", "AnswerGenerate", "Programmer", "ScEnsemble", "Review", "Revise", "Format"),
    "qa": ("Custom", "AnswerGenerate", "Programmer", "ScEnsemble", "Review", "Revise", "Format"),
    "code": ("Custom", "CustomCodeGenerate", "ScEnsemble", "Test", "Review", "Revise", "Format"),
}
"""Operators a workflow may use per task type when the caller names none (the offered ones
plus those the shipped reference workflows need)."""

ALLOWED_IMPORTS = frozenset(
    {
        "asyncio",
        "typing",
        "re",
        "math",
        "json",
        "random",
        "collections",
        "itertools",
        "functools",
        "string",
        "statistics",
        "fractions",
        "decimal",
        "dataclasses",
        "textwrap",
        "difflib",
        "heapq",
        "bisect",
        "copy",
    }
)
FORBIDDEN_CALLS = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "memoryview",
    }
)
PROVIDED_NAMES = frozenset({"operator", "create"})
MAX_SOURCE_CHARS = 30_000
LEAK_NGRAM = 8
"""A string literal sharing this many consecutive words with the problem is a leak."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation finding."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """All findings for one source; :attr:`ok` when there are none."""

    issues: tuple[Issue, ...] = ()
    operators_used: tuple[str, ...] = ()
    """Operator classes the workflow instantiates, in order of first use."""

    @property
    def ok(self) -> bool:
        """True when the workflow passed every check."""
        return not self.issues

    @property
    def message(self) -> str:
        """One line listing every issue (empty when ok)."""
        return "; ".join(str(i) for i in self.issues)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _leak_ngrams(problem_text: str) -> tuple[set[tuple[str, ...]], tuple[str, ...] | None]:
    words = _words(problem_text)
    if len(words) >= LEAK_NGRAM:
        return {tuple(words[i : i + LEAK_NGRAM]) for i in range(len(words) - LEAK_NGRAM + 1)}, None
    return set(), (tuple(words) if len(words) >= 4 else None)


def _string_constants(tree: ast.AST) -> Iterable[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno


def _call_signature(cls: type) -> inspect.Signature:
    sig = inspect.signature(cls.__call__)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def _init_signature(cls: type) -> inspect.Signature:
    sig = inspect.signature(cls.__init__)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def _bind_error(sig: inspect.Signature, call: ast.Call) -> str | None:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None  # *args/**kwargs: cannot check statically
    params = sig.parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for k in call.keywords:
            # k.arg is a str here: a **kwargs keyword (arg None) returned above
            if k.arg is None or k.arg not in params or params[k.arg].kind is inspect.Parameter.VAR_POSITIONAL:
                return f"got an unexpected keyword argument {k.arg!r}"
    try:
        sig.bind(*([None] * len(call.args)), **{k.arg: None for k in call.keywords if k.arg})
    except TypeError as exc:
        return str(exc)
    return None


def _operator_ref(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "operator":
        return node.attr
    return None


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


def _check_module_paths(tree: ast.Module, issues: list[Issue]) -> None:
    """Flag ``mod.a.b`` paths and ``from mod import x`` that reach a non-allowlisted module."""
    bound = _module_bindings(tree)
    seen: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (module := _allowed_from_module(node)) is not None:
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
        value: object = bound[chain[0]]
        path = chain[0]
        for attr in chain[1]:
            if attr.startswith("__"):
                break
            value = getattr(value, attr, None)
            path += f".{attr}"
            root = _module_root(value)
            if root is not None and root not in ALLOWED_IMPORTS:
                issues.append(
                    Issue(f"{path} reaches module {root!r}, which workflows may not use", node.lineno)
                )
                break
            if value is None:
                break


def validate_workflow(
    source: str,
    task_type: str | None = None,
    *,
    operators: Sequence[str] | None = None,
    problem_text: str | None = None,
) -> ValidationReport:
    """Check workflow source statically.

    Args:
        source: The workflow code.
        task_type: ``code``, ``math`` or ``qa``; selects the allowed operators when
            ``operators`` is not given (``None``: any known operator).
        operators: Operator class names allowed.
        problem_text: The problem the workflow was generated for; strings copying it are flagged.

    Returns:
        The report; never raises for bad source.
    """
    issues: list[Issue] = []
    if operators is not None:
        allowed = tuple(operators)
    elif task_type in ALLOWED_OPERATORS:
        allowed = ALLOWED_OPERATORS[task_type]
    else:
        allowed = tuple(OPERATORS)
    if len(source) > MAX_SOURCE_CHARS:
        return ValidationReport(
            issues=(Issue(f"the workflow is {len(source)} characters, over {MAX_SOURCE_CHARS}"),)
        )
    try:
        tree = ast.parse(strip_scoreflow_imports(source))
    except SyntaxError as exc:
        return ValidationReport(issues=(Issue(f"syntax error: {exc.msg}", exc.lineno),))
    _check_module_paths(tree, issues)

    workflow: ast.ClassDef | None = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Workflow":
            workflow = node
        elif isinstance(
            node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            pass
        elif isinstance(node, ast.Assign | ast.AnnAssign) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            pass
        else:
            issues.append(
                Issue(
                    "only imports, constants, functions and classes may appear outside class Workflow",
                    node.lineno,
                )
            )
    if workflow is None:
        issues.append(Issue("the source must define class Workflow (see the template)"))

    # imports and dangerous names, anywhere
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_import(alias.name, alias.asname, node.lineno, issues)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                issues.append(Issue("relative imports are not allowed", node.lineno))
            elif any(a.name in PROVIDED_NAMES or a.asname in PROVIDED_NAMES for a in node.names):
                issues.append(Issue("do not import operator or create: both are provided", node.lineno))
            else:
                _check_import(module, None, node.lineno, issues)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS
        ):
            issues.append(
                Issue(f"{node.func.id}() is not allowed in a workflow; use the operators", node.lineno)
            )
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr != "__init__":
            issues.append(Issue(f"attribute {node.attr} is not allowed", node.lineno))
        elif (
            isinstance(node, ast.Name)
            and node.id.startswith("__")
            and node.id.endswith("__")
            and node.id != "__name__"
        ):
            issues.append(Issue(f"name {node.id} is not allowed", node.lineno))
        elif isinstance(node, ast.Global | ast.Nonlocal):
            issues.append(Issue("global/nonlocal statements are not allowed", node.lineno))

    # operator references
    used: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = _operator_ref(node)
        if name is None:
            continue
        if name not in OPERATORS:
            issues.append(
                Issue(f"unknown operator operator.{name}; available: {', '.join(allowed)}", node.lineno)
            )
        elif name not in allowed:
            issues.append(
                Issue(
                    f"operator.{name} is not available for this task; available: {', '.join(allowed)}",
                    node.lineno,
                )
            )
        elif name not in used:
            used.append(name)

    if workflow is not None:
        _check_workflow_class(workflow, issues)

    if problem_text:
        grams, whole = _leak_ngrams(problem_text)
        for text, line in _string_constants(tree):
            words = _words(text)
            hit = any(tuple(words[i : i + LEAK_NGRAM]) in grams for i in range(len(words) - LEAK_NGRAM + 1))
            if not hit and whole is not None:
                n = len(whole)
                hit = any(tuple(words[i : i + n]) == whole for i in range(len(words) - n + 1))
            if hit:
                excerpt = text.strip().replace("\n", " ")[:60]
                issues.append(
                    Issue(
                        f"a string copies the problem text ({excerpt!r}); "
                        "the workflow must not contain problem-specific "
                        "information: operators already receive the problem",
                        line,
                    )
                )

    unique: list[Issue] = []
    for issue in issues:
        if issue not in unique:
            unique.append(issue)
    unique.sort(key=lambda i: i.line or 0)
    return ValidationReport(issues=tuple(unique), operators_used=tuple(used))


def _check_import(module: str, asname: str | None, line: int, issues: list[Issue]) -> None:
    root = module.split(".")[0]
    if root in PROVIDED_NAMES or asname in PROVIDED_NAMES:
        issues.append(Issue("do not import operator or create: both are provided", line))
    elif root not in ALLOWED_IMPORTS:
        issues.append(
            Issue(
                f"import of {module!r} is not allowed; workflows may import only "
                f"{', '.join(sorted(ALLOWED_IMPORTS))}",
                line,
            )
        )


def _check_workflow_class(cls_node: ast.ClassDef, issues: list[Issue]) -> None:
    methods = {n.name: n for n in cls_node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    init = methods.get("__init__")
    if init is None:
        issues.append(Issue("Workflow needs __init__(self, config, problem)", cls_node.lineno))
    else:
        args = init.args
        positional = args.posonlyargs + args.args
        required = len(positional) - len(args.defaults)
        if len(positional) < 3 or required > 3:
            issues.append(Issue("Workflow.__init__ must take (self, config, problem)", init.lineno))
    run = methods.get("run_workflow")
    if run is None:
        issues.append(
            Issue("Workflow needs 'async def run_workflow(self)' returning the answer str", cls_node.lineno)
        )
    else:
        if not isinstance(run, ast.AsyncFunctionDef):
            issues.append(Issue("run_workflow must be 'async def' (operators are awaited)", run.lineno))
        positional = run.args.posonlyargs + run.args.args
        if len(positional) - len(run.args.defaults) > 1:
            issues.append(Issue("run_workflow must take only self", run.lineno))
        if not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(run)):
            issues.append(Issue("run_workflow must return the final answer (a str)", run.lineno))

    # attributes bound to operators, and calls to them
    bound: dict[str, str] = {}
    assigned: set[str] = set()
    for node in ast.walk(cls_node):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    assigned.add(target.attr)
                    value = node.value
                    if isinstance(value, ast.Call) and (op := _operator_ref(value.func)) in OPERATORS:
                        bound[target.attr] = op
        if isinstance(node, ast.Call) and (op := _operator_ref(node.func)) in OPERATORS:
            error = _bind_error(_init_signature(OPERATORS[op]), node)
            if error is None and len(node.args) > 3:  # (llm, problem) or ScoreFlow MATH's (llm, gid, problem)
                error = "too many positional arguments"
            if error:
                issues.append(
                    Issue(
                        f"operator.{op}(...) {error}; construct it as operator.{op}(self.llm, self.problem)",
                        node.lineno,
                    )
                )
    calls = 0
    for node in ast.walk(cls_node):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
        ):
            continue
        attr = node.func.attr
        if attr in bound:
            calls += 1
            op_cls = OPERATORS[bound[attr]]
            error = _bind_error(_call_signature(op_cls), node)
            if error:
                issues.append(
                    Issue(
                        f"self.{attr}(...) ({op_cls.name}): {error}; call format: {op_cls.call_format}",
                        node.lineno,
                    )
                )
        elif attr not in methods and attr not in assigned:
            issues.append(
                Issue(
                    f"self.{attr}(...) is called but never created; create it in __init__, e.g. "
                    f"self.{attr} = operator.Custom(self.llm, self.problem)",
                    node.lineno,
                )
            )
    if run is not None and calls == 0:
        issues.append(
            Issue("run_workflow calls no operator; build the answer with the operators", run.lineno)
        )
