"""Load and run one workflow source (stdlib only; used in the sandbox and by the unsafe runner).

``execute`` returns a plain dict ``{"status", "answer", "error"}`` with status ``ok``, ``error``
(syntax error, no ``Workflow``, exception), ``timeout`` or ``bad_return``; it never raises for
anything the workflow does.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import traceback
import typing
from typing import Any

WORKFLOW_FILENAME = "<workflow>"

_SCOREFLOW_IMPORTS = re.compile(
    r"^[ \t]*(?:import ScoreFlow\.scripts\.\w+\.operator as operator"
    r"|from metagpt\.provider\.llm_provider_registry import create_llm_instance as create)[ \t]*$",
    re.MULTILINE,
)


def strip_scoreflow_imports(source: str) -> str:
    """The source with the two imports of ScoreFlow's workflow files blanked out.

    ScoreFlow writes each workflow as ``PYTHON_START + class + PYTHON_END``, where
    ``PYTHON_START`` imports ``ScoreFlow.scripts.<DS>.operator as operator`` and MetaGPT's
    ``create_llm_instance as create``. Both names are provided here (our operators and
    ``create``), so those exact lines become empty lines (line numbers stay the same); every
    other import is kept and checked as usual. ``PYTHON_END``'s ``async def __call__`` wrapper
    is ordinary code and runs as it is.
    """
    return _SCOREFLOW_IMPORTS.sub("", source)


def workflow_globals(operator_module: Any) -> dict[str, Any]:
    """The names a workflow sees without importing them.

    ScoreFlow's ``PYTHON_START`` (``asyncio``, ``operator``, ``create``) plus the ``typing``
    names its templates use.
    """
    names: dict[str, Any] = {"__name__": "workflow", "__builtins__": __builtins__}
    names.update(asyncio=asyncio, operator=operator_module, create=operator_module.create)
    for name in ("Any", "Dict", "List", "Literal", "Optional", "Tuple", "Union"):
        names[name] = getattr(typing, name)
    return names


def describe_exception(exc: BaseException) -> str:
    """``Type: message (workflow line N)`` with the innermost line of the workflow's own code."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == WORKFLOW_FILENAME:
            line = frame.lineno
    if isinstance(exc, SyntaxError) and exc.filename == WORKFLOW_FILENAME:
        line = exc.lineno
        text = f"SyntaxError: {exc.msg}"
    else:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip() or type(exc).__name__
    if len(text) > 2000:
        text = text[:2000] + "…"
    return text + (f" (workflow line {line})" if line else "")


async def execute(
    source: str, config: Any, problem: Any, timeout: float, operator_module: Any
) -> dict[str, Any]:
    """Compile ``source``, build ``Workflow(config, problem)`` and await ``run_workflow()``.

    Args:
        source: The workflow code (a ``class Workflow`` in ScoreFlow's shape).
        config: Passed as the constructor's first argument (``create(config)`` turns it into the LLM).
        problem: Passed as the constructor's second argument.
        timeout: Seconds ``run_workflow`` may take (checked at ``await`` points only; a workflow
            that blocks without awaiting is stopped by the sandbox's wall timeout instead).
        operator_module: The module bound to the name ``operator``.
    """
    try:
        code = compile(strip_scoreflow_imports(source), WORKFLOW_FILENAME, "exec")
        namespace = workflow_globals(operator_module)
        exec(code, namespace)
        cls = namespace.get("Workflow")
        if not isinstance(cls, type):
            return {"status": "error", "answer": None, "error": "the source defines no class Workflow"}
        workflow = cls(config, problem)
        run = getattr(workflow, "run_workflow", None)
        if run is None or not callable(run):
            return {"status": "error", "answer": None, "error": "Workflow has no run_workflow method"}
        pending = run()
        if not inspect.isawaitable(pending):
            return {
                "status": "bad_return",
                "answer": None,
                "error": "run_workflow must be 'async def' (it returned without awaiting)",
            }
        async with asyncio.timeout(timeout):  # same task: the workflow's SystemExit is caught below
            answer = await pending
    except TimeoutError:
        return {
            "status": "timeout",
            "answer": None,
            "error": f"run_workflow did not finish within {timeout:g}s",
        }
    except BaseException as exc:  # noqa: BLE001 - the workflow's failure is the result
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, SystemExit):
            return {"status": "error", "answer": None, "error": f"the workflow called exit({exc.code!r})"}
        return {"status": "error", "answer": None, "error": describe_exception(exc)}
    if not isinstance(answer, str):
        kind = type(answer).__name__
        return {
            "status": "bad_return",
            "answer": None,
            "error": f"run_workflow returned {kind}, expected str",
        }
    return {"status": "ok", "answer": answer, "error": None}
