"""``--generator aflow:PATH``: AFlow's published workflows, run in the sandbox on our executor and scorers.

AFlow (FoundationAgents/AFlow, and earlier ``metagpt/ext/aflow`` in geekan/MetaGPT; MIT licence)
publishes each optimised workflow as ``workspace/<DATASET>/workflows/round_<N>/graph.py`` plus the
prompts it uses in ``prompt.py``, written against AFlow's MetaGPT-style operators. ``PATH`` is

- a ``graph.py`` (its ``prompt.py`` is read from the same folder), or a ``round_<N>`` folder;
- or a workspace folder holding ``<DATASET>/workflows/round_<N>/graph.py``: each dataset of
  the run gets its own dataset's best round by AFlow's ``workflows/results.json`` (the highest
  mean ``score``), else its highest round (dataset names matched case-insensitively).

:func:`convert` turns the graph into one self-contained workflow in ScoreFlow's shape
(``sf bench aflow-convert`` prints it): the compatibility layer of
:mod:`sf_bench.systems._aflow_runtime`, ``prompt.py`` as a namespace class under the name the
graph imported it as, the graph's own code with its imports removed and its ``Workflow``
renamed ``AFlowGraph``, and a ``class Workflow`` whose ``run_workflow`` calls the graph as
AFlow's benchmarks do and returns the answer of its ``(answer, cost)`` tuple.

Supported (:data:`SUPPORTED_OPERATORS`): ``Custom(input, instruction)``,
``AnswerGenerate(input)``, ``CustomCodeGenerate(problem, entry_point, instruction)``,
``ScEnsemble(solutions, problem)``, ``Programmer(problem, analysis)``,
``Test(problem, solution, entry_point, test_loop)``, ``Format(problem, solution)``,
``Review(problem, solution)`` and ``Revise(problem, solution, feedback)``, each constructed as
``operator.X(self.llm)`` and returning AFlow's dict. Idioms: ``create_llm_instance(llm_config)``,
``self.llm.cost_manager = CostManager()``, ``self.llm.cost_manager.total_cost``,
``self.llm.get_usage_summary()["total_cost"]`` (all 0: the cost is counted on the host),
``await self.llm(prompt)``, ``prompt_custom.NAME``, ``DatasetType``, ``async def
__call__(self, problem)`` (math, QA) and ``(self, problem, entry_point)`` (code), returning
``(answer, cost)``, a bare answer or a dict with ``response``/``solution``. Not supported:
``MdEnsemble`` and any other operator, imports outside the standard library, and a ``prompt.py``
with anything but constants (each is a one-line error naming it).

Differences from AFlow's own runs, by design: the LLM calls are sf-workflows' operator prompts
(ScoreFlow's) on our executor, not AFlow's prompts; ``Test`` runs only the public tests (never
the hidden ones, AFlow issue #41) and reports ``result`` True when the solution came back
unchanged; ``Review``'s ``review_result`` is True when the reviewer kept the solution; the
graph receives the problem text ScoreFlow's workflows receive (``Problem.prompt``; for code
the function prompt and entry point), not AFlow's own input strings; there is no retry of the
whole workflow (AFlow retries 5 times). Converted graphs are not held to ScoreFlow's workflow
validator (their shape differs); the sandbox is the security boundary, as for every workflow.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sf_bench import registry
from sf_bench.errors import BenchConfigError
from sf_bench.systems.generated import GeneratedWorkflowSystem
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

__all__ = ["SUPPORTED_OPERATORS", "AFlowGenerator", "aflow_system", "convert", "find_graph"]

SUPPORTED_OPERATORS = (
    "Custom",
    "AnswerGenerate",
    "CustomCodeGenerate",
    "ScEnsemble",
    "Programmer",
    "Test",
    "Format",
    "Review",
    "Revise",
)
"""AFlow operators the adapter maps onto sf-workflows' (see the module docstring)."""


def _aflow_name(dataset: str) -> str:
    """AFlow's name of ``dataset``: the registry entry's ``title``, else ``dataset`` itself.

    The name is the ``dataset`` argument of its ``Workflow`` and its workspace folder (e.g.
    ``HumanEval``).
    """
    spec = registry.find(dataset)
    return spec.title if spec is not None else dataset


def __getattr__(name: str) -> Any:
    """``AFLOW_DATASETS``: our dataset names → AFlow's (the registry's titles), read now."""
    if name == "AFLOW_DATASETS":
        return {s.name: s.title for s in registry.specs()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_DROPPED = {"create_llm_instance", "CostManager", "DatasetType"}
"""Names AFlow graphs import from AFlow/MetaGPT that the compatibility layer provides."""
_RUNTIME_NAMES = {"aflow_operator", "AFlowGraph", "Workflow", "aflow_call", "aflow_answer"}
_ROUND = re.compile(r"round_(\d+)$")


def _runtime_source() -> str:
    text = resources.files("sf_bench.systems").joinpath("_aflow_runtime.py").read_text(encoding="utf-8")
    body = text.split('"""', 2)[2]  # without its module docstring and lint pragmas
    return "\n".join(line for line in body.splitlines() if not line.startswith("# ruff:")).lstrip("\n") + "\n"


def find_graph(path: str | Path, dataset: str | None = None) -> Path:
    """The ``graph.py`` that ``path`` names for ``dataset`` (see the module docstring).

    Raises:
        BenchConfigError: no such path, or no graph in it (for that dataset).
    """
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise BenchConfigError(f"aflow:{path}: no such file or folder (expected a graph.py or round_<N>/)")
    if (path / "graph.py").is_file():
        return path / "graph.py"
    if dataset is None:
        raise BenchConfigError(f"aflow:{path}: no graph.py there")
    wanted = _aflow_name(dataset).lower()
    folders = [d for d in path.iterdir() if d.is_dir() and d.name.lower() == wanted]
    rounds: dict[int, Path] = {}
    scores: dict[int, list[float]] = {}
    for folder in folders:
        for d in (folder / "workflows").glob("round_*"):
            m = _ROUND.search(d.name)
            if m and (d / "graph.py").is_file():
                rounds[int(m.group(1))] = d / "graph.py"
        for round_, score in _results(folder / "workflows" / "results.json"):
            scores.setdefault(round_, []).append(score)
    scored = {r: sum(v) / len(v) for r, v in scores.items() if r in rounds}
    if scored:  # AFlow's own record of its search: the round that scored best (ties: the later)
        return rounds[max(scored, key=lambda r: (scored[r], r))]
    if rounds:
        return rounds[max(rounds)]
    name = _aflow_name(dataset)
    raise BenchConfigError(
        f"aflow:{path}: no graph.py for {dataset} (looked for {path}/{name}/workflows/"
        "round_<N>/graph.py; or pass a round folder)"
    )


def _results(path: Path) -> list[tuple[int, float]]:
    """``(round, score)`` entries of AFlow's ``results.json`` (none when absent or unreadable)."""
    try:
        data: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out: list[tuple[int, float]] = []
    for item in cast("list[object]", data) if isinstance(data, list) else []:  # checked: a list
        if isinstance(item, dict):
            entry = cast("dict[str, Any]", item)  # a JSON object; int() and float() check its values
            try:
                out.append((int(entry["round"]), float(entry["score"])))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _fail(graph: Path, line: int | None, message: str) -> BenchConfigError:
    where = f"{graph}:{line}" if line else str(graph)
    return BenchConfigError(f"aflow adapter: {where}: {message}")


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def convert(graph: str | Path, dataset: str) -> str:
    """One ScoreFlow-shaped workflow source running the AFlow ``graph`` on ``dataset``'s problems.

    Args:
        graph: An AFlow ``graph.py``; its ``prompt.py`` is read from the same folder.
        dataset: Our dataset name (``gsm8k``...): the graph's ``dataset`` argument, and the
            calling convention (code: ``graph(prompt, entry_point)``).

    Raises:
        BenchConfigError: the graph cannot be read or parsed, or uses something the adapter does
            not support (the message names it and the line).
    """
    graph = Path(graph)
    parts = _split_graph(_parse_file(graph), graph)
    workflow = _checked_workflow(parts.workflow, graph, dataset)
    module = ast.Module(body=parts.body, type_ignores=[])
    used = _rename_operator(module, parts.operator_alias, graph)
    if parts.prompt_alias is not None:
        module.body.insert(0, _prompt_namespace(graph, parts.prompt_alias))
    clash = sorted(
        _RUNTIME_NAMES
        & {n.name for n in module.body if isinstance(n, ast.ClassDef | ast.FunctionDef) and n is not workflow}
    )
    if clash:
        raise _fail(graph, None, f"defines {', '.join(clash)}, which the adapter needs for itself")
    header = (
        f"# AFlow graph {graph} on {dataset}, converted by sf-bench's AFlow adapter "
        "(sf_bench.systems.aflow).\n"
        f"# Operators used: {', '.join(used) or 'none'}. AFlow (FoundationAgents/AFlow) is MIT-licensed.\n\n"
    )
    wrapper = (
        f"\n\nAFLOW_DATASET = {_aflow_name(dataset)!r}\n\n\n"
        "class Workflow:\n"
        '    """ScoreFlow-shaped entry point around the AFlow graph above."""\n\n'
        "    def __init__(self, config, problem):\n"
        "        self.problem = problem\n"
        "        self.llm = create(config)\n"
        '        self.graph = AFlowGraph("aflow", create_llm_instance(self.llm), AFLOW_DATASET)\n\n'
        "    async def run_workflow(self):\n"
        "        return aflow_answer(await aflow_call(self.graph, self.problem))\n"
    )
    return header + _runtime_source() + "\n\n" + ast.unparse(module) + wrapper


def _parse_file(path: Path, missing: BenchConfigError | None = None) -> ast.Module:
    """``path`` read (UTF-8, a BOM allowed) and parsed.

    Raises:
        BenchConfigError: it cannot be read (``missing`` when given and the file does not
            exist) or is not valid Python (the message names the line).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        if missing is not None:
            raise missing from None
        raise _fail(path, None, f"cannot read it ({e})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, None, f"cannot read it ({e})") from e
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as e:
        raise _fail(path, e.lineno, f"not valid Python: {e.msg}") from None


@dataclass(slots=True)
class _GraphParts:
    """What :func:`_split_graph` keeps of a ``graph.py``, and the names its imports bound."""

    body: list[ast.stmt] = field(default_factory=list[ast.stmt])
    """The module's statements less AFlow's imports (the standard library's stay)."""
    operator_alias: str = "operator"
    """The name AFlow's ``operator`` module is imported as."""
    prompt_alias: str | None = None
    """The name ``prompt.py`` is imported as (None: not imported)."""
    workflow: ast.ClassDef | None = None
    """The (last) ``class Workflow``, renamed ``AFlowGraph`` in ``body``."""


def _split_graph(tree: ast.Module, graph: Path) -> _GraphParts:
    """Sort the graph's top-level statements: AFlow's imports dropped (their names noted), the rest kept.

    Raises:
        BenchConfigError: an import the sandbox cannot satisfy (outside the standard library).
    """
    parts = _GraphParts()
    for node in tree.body:
        if isinstance(node, ast.Import):
            _split_import(node, parts, graph)
        elif isinstance(node, ast.ImportFrom):
            _split_import_from(node, parts, graph)
        elif isinstance(node, ast.ClassDef) and node.name == "Workflow":
            parts.workflow = node
            node.name = "AFlowGraph"
            parts.body.append(node)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DatasetType" for t in node.targets
        ):
            continue  # the compatibility layer defines it
        else:
            parts.body.append(node)
    return parts


def _split_import(node: ast.Import, parts: _GraphParts, graph: Path) -> None:
    """``import X [as Y]``: note AFlow's operator and prompt modules, keep the standard library's."""
    for alias in node.names:
        name = alias.asname or alias.name.split(".")[-1]
        if alias.name.endswith(".operator") or alias.name == "operator":
            parts.operator_alias = name
        elif alias.name.endswith(".prompt"):
            parts.prompt_alias = name
        elif _stdlib(alias.name):
            parts.body.append(ast.Import(names=[alias]))
        else:
            raise _fail(graph, node.lineno, f"imports {alias.name}, which the sandbox does not have")


def _split_import_from(node: ast.ImportFrom, parts: _GraphParts, graph: Path) -> None:
    """``from M import X``: the same, and the names the compatibility layer provides dropped."""
    module = node.module or ""
    kept: list[ast.alias] = []
    for alias in node.names:
        name = alias.asname or alias.name
        if alias.name == "operator" or module.endswith(".operator"):
            parts.operator_alias = name if alias.name == "operator" else parts.operator_alias
        elif alias.name == "prompt" or module.endswith(".prompt"):
            parts.prompt_alias = name if alias.name == "prompt" else parts.prompt_alias
        elif alias.name in _DROPPED:
            continue
        elif node.level == 0 and _stdlib(module):
            kept.append(alias)
        else:
            raise _fail(graph, node.lineno, f"imports {alias.name} from {module or '.'}, not supported")
    if kept:
        parts.body.append(ast.ImportFrom(module=module, names=kept, level=0))


def _checked_workflow(workflow: ast.ClassDef | None, graph: Path, dataset: str) -> ast.ClassDef:
    """The graph's ``class Workflow``, once its ``__call__`` is known to fit ``dataset``'s problems.

    Raises:
        BenchConfigError: no such class, no ``async def __call__``, or one taking the other kind
            of dataset's arguments (code graphs take ``(problem, entry_point)``, others ``(problem)``).
    """
    if workflow is None:
        raise _fail(graph, None, "defines no class Workflow (is it an AFlow round's graph.py?)")
    call = next(
        (n for n in workflow.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "__call__"), None
    )
    if call is None:
        raise _fail(graph, workflow.lineno, "class Workflow has no 'async def __call__(self, problem, ...)'")
    required = len(call.args.posonlyargs + call.args.args) - len(call.args.defaults) - 1
    spec = registry.find(dataset)
    code = spec is not None and spec.is_code
    if code and required != 2 or not code and required != 1:
        shape = "(problem, entry_point)" if required == 2 else f"{required} argument(s)"
        kind = "code" if code else "math/QA"
        want = "(problem, entry_point)" if code else "(problem)"
        raise _fail(
            graph,
            call.lineno,
            f"__call__ takes {shape} but {dataset} is a {kind} dataset, whose graphs take {want}: "
            "use the graph of the matching dataset",
        )
    return workflow


def _rename_operator(module: ast.Module, alias: str, graph: Path) -> list[str]:
    """Point ``alias.X`` at the compatibility layer's ``aflow_operator.X``; return the X used.

    Raises:
        BenchConfigError: an operator the adapter does not support.
    """
    used: list[str] = []
    for node in ast.walk(module):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == alias:
            if node.attr not in SUPPORTED_OPERATORS:
                raise _fail(
                    graph,
                    node.lineno,
                    f"AFlow operator {node.attr} is not supported by the adapter "
                    f"(supported: {', '.join(SUPPORTED_OPERATORS)})",
                )
            if node.attr not in used:
                used.append(node.attr)
        if isinstance(node, ast.Name) and node.id == alias:
            node.id = "aflow_operator"
    return used


def _prompt_namespace(graph: Path, alias: str) -> ast.ClassDef:
    """``prompt.py`` as ``class <alias>:`` holding its constants.

    Raises:
        BenchConfigError: ``prompt.py`` is missing or holds more than constants.
    """
    path = graph.with_name("prompt.py")
    missing = _fail(graph, None, f"imports its prompts as {alias}, but {path} does not exist")
    tree = _parse_file(path, missing=missing)
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign | ast.AnnAssign)
            or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ):
            raise _fail(path, node.lineno, 'prompt.py may hold only constants (NAME = "...")')
    body: list[ast.stmt] = list(tree.body) or [ast.Pass()]
    if sys.version_info >= (3, 12):  # the field exists (and ast.unparse needs it) from 3.12
        return ast.ClassDef(name=alias, bases=[], keywords=[], body=body, decorator_list=[], type_params=[])
    return ast.ClassDef(name=alias, bases=[], keywords=[], body=body, decorator_list=[])


class AFlowGenerator:
    """A :class:`~sf_bench.protocols.WorkflowGenerator` returning the converted AFlow graph.

    Each problem gets it ``k`` times; each dataset's graph is converted once.
    """

    def __init__(self, path: str | Path) -> None:
        """Remember ``path``; nothing is read until :meth:`source` (or :meth:`check`)."""
        self.path = Path(path).expanduser()
        self._sources: dict[str, str] = {}

    def source(self, dataset: str) -> str:
        """The converted workflow for ``dataset``.

        Raises:
            BenchConfigError: no graph for it, or an unsupported graph.
        """
        if dataset not in self._sources:
            self._sources[dataset] = convert(find_graph(self.path, dataset), dataset)
        return self._sources[dataset]

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        """The converted graph ``k`` times for each problem."""
        return [[self.source(p.dataset)] * k for p in problems]


class AFlowSystem(GeneratedWorkflowSystem):
    """The ``aflow:PATH`` system: converts every dataset's graph before the run starts."""

    def check_workflows(self, problems: Mapping[str, Sequence[Problem]], k: int) -> list[str]:
        """Convert the graph of every selected dataset now (so a bad graph fails before anything runs).

        Raises:
            BenchConfigError: a dataset has no graph, or its graph is not supported.
        """
        generator: AFlowGenerator = self.generator  # type: ignore[assignment]
        for name, ps in problems.items():
            if ps:
                generator.source(name)
        return []


def aflow_system(
    path: str | None, endpoints: Any = None, *, pool_size: int = 2, sandbox: SandboxSettings | None = None
) -> AFlowSystem:
    """The system behind ``--generator aflow:PATH`` (see the module docstring).

    Raises:
        BenchConfigError: no or missing path, or no executor endpoint.
    """
    from sf_bench.systems.baselines import Endpoints
    from sf_bench.systems.template import SandboxRunner

    if not path:
        raise BenchConfigError(
            "--generator aflow:PATH needs a path: an AFlow graph.py, its round_<N> folder, or a "
            "workspace folder with <DATASET>/workflows/round_<N>/"
        )
    if not Path(path).expanduser().exists():
        raise BenchConfigError(f"--generator aflow:{path}: no such file or folder")
    executor = (endpoints or Endpoints()).executor()
    runner = SandboxRunner(executor, pool_size=pool_size, validate=False, sandbox=sandbox)
    return AFlowSystem(AFlowGenerator(path), runner, name=f"aflow:{path}")
