"""The validator's checks of ``class Workflow`` itself.

Its constructor and ``run_workflow`` have ScoreFlow's shape; every operator it builds is built
with valid arguments, every operator attribute it calls is called with valid arguments, every
``self.x(...)`` it calls exists, and ``run_workflow`` calls at least one operator. Arguments are
checked against the real operator classes' signatures (:data:`~sf_workflows.operators.OPERATORS`).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable

from sf_workflows.generator._rules import Issue
from sf_workflows.operators import OPERATORS

__all__ = ["check_workflow_class", "operator_ref"]

_Method = ast.FunctionDef | ast.AsyncFunctionDef


def operator_ref(node: ast.AST) -> str | None:
    """The operator name of an ``operator.Name`` expression, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "operator":
        return node.attr
    return None


def check_workflow_class(cls_node: ast.ClassDef, issues: list[Issue]) -> None:
    """Append to ``issues`` what is wrong with the ``class Workflow`` definition ``cls_node``."""
    methods = {n.name: n for n in cls_node.body if isinstance(n, _Method)}
    _check_init(cls_node, methods.get("__init__"), issues)
    run = methods.get("run_workflow")
    _check_run(cls_node, run, issues)
    bound, assigned = _operator_attributes(cls_node, issues)
    calls = _check_self_calls(cls_node, bound, assigned | set(methods), issues)
    if run is not None and calls == 0:
        issues.append(
            Issue("run_workflow calls no operator; build the answer with the operators", run.lineno)
        )


def _check_init(cls_node: ast.ClassDef, init: _Method | None, issues: list[Issue]) -> None:
    """``__init__`` exists and takes ``(self, config, problem)``."""
    if init is None:
        issues.append(Issue("Workflow needs __init__(self, config, problem)", cls_node.lineno))
        return
    args = init.args
    positional = args.posonlyargs + args.args
    required = len(positional) - len(args.defaults)
    if len(positional) < 3 or required > 3:
        issues.append(Issue("Workflow.__init__ must take (self, config, problem)", init.lineno))


def _check_run(cls_node: ast.ClassDef, run: _Method | None, issues: list[Issue]) -> None:
    """``run_workflow`` exists, is ``async``, takes only ``self`` and returns a value."""
    if run is None:
        issues.append(
            Issue("Workflow needs 'async def run_workflow(self)' returning the answer str", cls_node.lineno)
        )
        return
    if not isinstance(run, ast.AsyncFunctionDef):
        issues.append(Issue("run_workflow must be 'async def' (operators are awaited)", run.lineno))
    positional = run.args.posonlyargs + run.args.args
    if len(positional) - len(run.args.defaults) > 1:
        issues.append(Issue("run_workflow must take only self", run.lineno))
    if not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(run)):
        issues.append(Issue("run_workflow must return the final answer (a str)", run.lineno))


def _operator_attributes(cls_node: ast.ClassDef, issues: list[Issue]) -> tuple[dict[str, str], set[str]]:
    """The ``self.x = operator.Name(...)`` bindings and every ``self.x`` assigned.

    Flags operator constructions whose arguments do not fit the operator's constructor.

    Returns:
        ``({attribute: operator name}, {every attribute assigned on self})``.
    """
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
                    if isinstance(value, ast.Call) and (op := operator_ref(value.func)) in OPERATORS:
                        bound[target.attr] = op
        if isinstance(node, ast.Call) and (op := operator_ref(node.func)) in OPERATORS:
            _check_construction(op, node, issues)
    return bound, assigned


def _check_construction(op: str, node: ast.Call, issues: list[Issue]) -> None:
    """``operator.<op>(...)`` (``node``) fits the operator's constructor."""
    error = _bind_error(_signature(OPERATORS[op].__init__), node)
    if error is None and len(node.args) > 3:  # (llm, problem) or ScoreFlow MATH's (llm, gid, problem)
        error = "too many positional arguments"
    if error:
        issues.append(
            Issue(
                f"operator.{op}(...) {error}; construct it as operator.{op}(self.llm, self.problem)",
                node.lineno,
            )
        )


def _check_self_calls(
    cls_node: ast.ClassDef, bound: dict[str, str], known: set[str], issues: list[Issue]
) -> int:
    """Check every ``self.x(...)`` call: operator calls fit the operator, others name something known.

    ``bound`` maps attributes to operators, ``known`` holds the methods and assigned attributes.

    Returns:
        How many operator calls there are.
    """
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
            error = _bind_error(_signature(op_cls.__call__), node)
            if error:
                issues.append(
                    Issue(
                        f"self.{attr}(...) ({op_cls.name}): {error}; call format: {op_cls.call_format}",
                        node.lineno,
                    )
                )
        elif attr not in known:
            issues.append(
                Issue(
                    f"self.{attr}(...) is called but never created; create it in __init__, e.g. "
                    f"self.{attr} = operator.Custom(self.llm, self.problem)",
                    node.lineno,
                )
            )
    return calls


def _signature(method: Callable[..., object]) -> inspect.Signature:
    """The signature of an operator's method (a function of the class), without ``self``."""
    sig = inspect.signature(method)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def _bind_error(sig: inspect.Signature, call: ast.Call) -> str | None:
    """Why ``call``'s arguments do not bind to ``sig`` (None when they do, or cannot be told)."""
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
