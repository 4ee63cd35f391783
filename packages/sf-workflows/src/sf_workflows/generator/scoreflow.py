"""ScoreFlow's own prompts and rules, read from the user's checkout of Gen-Verse/ScoreFlow.

**License.** Gen-Verse/ScoreFlow (https://github.com/Gen-Verse/ScoreFlow, checked at commit
``2492563838f7``, its HEAD) publishes no license: no LICENSE file, no license in the README or
in the files under ``ScoreFlow/scripts/`` (only ``DPOtrainer.py``/``DPOconfig.py`` carry TRL's
Apache-2.0 header). Without a license nothing grants the right to redistribute its text, so this
package does **not** ship ScoreFlow's prompts. The ``scoreflow`` profile reads them, byte for
byte, from a checkout you make yourself (``git clone https://github.com/Gen-Verse/ScoreFlow``),
named by ``source=`` or the environment variable ``SF_SCOREFLOW_SOURCE``. Files are parsed
with :mod:`ast` (top-level string, number and list literals only); nothing of the checkout is
imported or executed. What we do ship are SHA-256 digests of those strings at the pinned
commit (facts about the text, not the text), so a checkout that differs is reported by name.
MetaGPT's strings that ScoreFlow's operators add (the system message, the XML answer-format
note) are MIT-licensed and quoted in ``sf_workflows/operators/_style.py`` with attribution.

What is read, per dataset (``ScoreFlow/scripts/<DS>/``):

* ``conditions.py``: ``START_PORMPT``/``END_PROMPT`` (the generator prompt is
  ``START_PORMPT + task text + END_PROMPT``), ``TEMP_AVOID`` (the template the similarity
  filter compares with), ``NO_EXCEPTION_LIST`` (banned substrings), ``sim_threshold``,
  ``TIME_LIMIT`` (seconds per workflow run: 120, 240 for code), ``PYTHON_START``/``PYTHON_END``;
* ``op_prompt.py``: every operator prompt (``SC_ENSEMBLE_PROMPT``, ``REVIEW_PROMPT``, …);
* ``operator.py``: the defaults of ``Test.__call__(test_loop=…)`` and
  ``Programmer.exec_code(timeout=…)``;
* ``extraction.py``: the answer-extraction prompt (``"Given the question: " + question + …``).
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sf_workflows.errors import WorkflowConfigError
from sf_workflows.generator._scoreflow_pins import PINNED_DIGESTS
from sf_workflows.generator.filters import FilterRules
from sf_workflows.operators._style import SCOREFLOW_SYSTEM_MESSAGE, OperatorStyle
from sf_workflows.protocols import ProblemLike
from sf_workflows.types import as_task

__all__ = [
    "DATASET_DIRS",
    "ENV_VAR",
    "SCOREFLOW_COMMIT",
    "SCOREFLOW_REPO",
    "OfficialStrings",
    "extraction_prompt",
    "filter_rules",
    "generator_input_text",
    "generator_prompt",
    "load_official",
    "operator_style",
    "resolve_source",
]

SCOREFLOW_REPO = "https://github.com/Gen-Verse/ScoreFlow"
SCOREFLOW_COMMIT = "2492563838f75d00c6830b6c5373fa3a81b2dbc8"
"""The commit whose strings the digests pin (HEAD, 2025-05-22)."""
ENV_VAR = "SF_SCOREFLOW_SOURCE"
"""Environment variable naming the checkout when no ``source`` is given."""

DATASET_DIRS = {
    "humaneval": "HumanEval",
    "mbpp": "MBPP",
    "gsm8k": "GSM8K",
    "math": "MATH",
    "drop": "DROP",
    "hotpotqa": "HotpotQA",
}
"""sf-bench dataset name → ScoreFlow's ``scripts/`` directory."""

_CONDITIONS = (
    "PYTHON_START",
    "PYTHON_END",
    "START_PORMPT",
    "END_PROMPT",
    "TEMP_AVOID",
    "NO_EXCEPTION_LIST",
    "TIME_LIMIT",
    "sim_threshold",
)
_DROP_QUESTION = re.compile(r"Question:(.*?)Answer:", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfficialStrings:
    """ScoreFlow's strings and rules for one dataset, as read from a checkout."""

    dataset: str
    """sf-bench's name (``math``...)."""
    source: str
    """The checkout they were read from."""
    start_prompt: str
    end_prompt: str
    template: str
    """``TEMP_AVOID``: the template workflow class."""
    python_start: str
    python_end: str
    """``PYTHON_END`` with its ``{time}`` placeholder unfilled."""
    banned: tuple[str, ...]
    sim_threshold: float
    time_limit: float
    """``TIME_LIMIT``: seconds a workflow run may take at scoring time."""
    op_prompts: Mapping[str, str] = field(default_factory=dict[str, str])
    test_loop: int | None = None
    """``Test.__call__``'s default ``test_loop`` (code datasets)."""
    programmer_timeout: float | None = None
    """``Programmer.exec_code``'s default ``timeout`` (math datasets)."""
    extraction: tuple[tuple[str, str], ...] | None = None
    """The extraction prompt as parts: ``("text", literal)`` or ``("var", name)``; ``None``
    for code datasets (no extraction)."""


def resolve_source(source: str | os.PathLike[str] | None = None) -> Path:
    """The ScoreFlow checkout to read: ``source``, else ``$SF_SCOREFLOW_SOURCE``.

    Raises:
        WorkflowConfigError: neither is set, or the directory is not a ScoreFlow checkout.
    """
    raw = source if source is not None else os.environ.get(ENV_VAR)
    if not raw:
        raise WorkflowConfigError(
            "the scoreflow profile reads ScoreFlow's own prompts from your checkout, because "
            "ScoreFlow publishes no license and we do not redistribute them: run "
            f"`git clone {SCOREFLOW_REPO}` "
            f"(commit {SCOREFLOW_COMMIT[:12]}) and pass --scoreflow-source DIR or set {ENV_VAR}=DIR"
        )
    path = Path(raw).expanduser()
    if not (path / "ScoreFlow" / "scripts").is_dir():
        raise WorkflowConfigError(
            f"{path} is not a ScoreFlow checkout (no ScoreFlow/scripts/ inside); clone {SCOREFLOW_REPO}"
        )
    return path.resolve()


def _literals(path: Path) -> dict[str, Any]:
    """Top-level ``NAME = <literal>`` assignments of a Python file, without running it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise WorkflowConfigError(f"cannot read {path}: {exc}") from exc
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _arg_default(tree: ast.Module, cls: str, method: str, arg: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == method:
                    args = item.args.args
                    defaults = item.args.defaults
                    offset = len(args) - len(defaults)
                    for i, a in enumerate(args):
                        if a.arg == arg and i >= offset:
                            return ast.literal_eval(defaults[i - offset])
    return None


def _concat_parts(node: ast.AST) -> list[tuple[str, str]] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _concat_parts(node.left), _concat_parts(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [("text", node.value)]
    if isinstance(node, ast.Name):
        return [("var", node.id)]
    return None


def _extraction_parts(path: Path) -> tuple[tuple[str, str], ...] | None:
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "prompt"
        ):
            parts = _concat_parts(node.value)
            if parts:
                return tuple(parts)
    return None


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _verify(directory: str, values: Mapping[str, Any], source: Path) -> None:
    for name, value in values.items():
        key = f"{directory}/{name}"
        pinned = PINNED_DIGESTS.get(key)
        if pinned is not None and _digest(value) != pinned:
            raise WorkflowConfigError(
                f"{source} differs from ScoreFlow commit {SCOREFLOW_COMMIT[:12]} in {key}; check out that "
                "commit (git -C DIR checkout "
                f"{SCOREFLOW_COMMIT[:12]}) or pass verify=False to use your version"
            )


@lru_cache(maxsize=64)
def _load(source: Path, dataset: str, verify: bool) -> OfficialStrings:
    directory = DATASET_DIRS[dataset]
    base = source / "ScoreFlow" / "scripts" / directory
    conditions = _literals(base / "conditions.py")
    missing = [n for n in _CONDITIONS if n not in conditions]
    if missing:
        raise WorkflowConfigError(f"{base / 'conditions.py'} lacks {', '.join(missing)}")
    op_prompts = {k: v for k, v in _literals(base / "op_prompt.py").items() if isinstance(v, str)}
    operator_tree = ast.parse((base / "operator.py").read_text(encoding="utf-8"))
    test_loop = _arg_default(operator_tree, "Test", "__call__", "test_loop")
    prog_timeout = _arg_default(operator_tree, "Programmer", "exec_code", "timeout")
    extraction = _extraction_parts(base / "extraction.py")
    if verify:
        _verify(f"{directory}/conditions.py", {n: conditions[n] for n in _CONDITIONS}, source)
        _verify(f"{directory}/op_prompt.py", op_prompts, source)
        _verify(
            f"{directory}/operator.py",
            {"Test.test_loop": test_loop, "Programmer.timeout": prog_timeout},
            source,
        )
        _verify(f"{directory}/extraction.py", {"prompt": extraction}, source)
    return OfficialStrings(
        dataset=dataset,
        source=str(source),
        start_prompt=conditions["START_PORMPT"],
        end_prompt=conditions["END_PROMPT"],
        template=conditions["TEMP_AVOID"],
        python_start=conditions["PYTHON_START"],
        python_end=conditions["PYTHON_END"],
        banned=tuple(conditions["NO_EXCEPTION_LIST"]),
        sim_threshold=float(conditions["sim_threshold"]),
        time_limit=float(conditions["TIME_LIMIT"]),
        op_prompts=op_prompts,
        test_loop=None if test_loop is None else int(test_loop),
        programmer_timeout=None if prog_timeout is None else float(prog_timeout),
        extraction=extraction,
    )


def load_official(
    dataset: str, source: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> OfficialStrings:
    """ScoreFlow's strings for ``dataset`` from the checkout ``source`` (or ``$SF_SCOREFLOW_SOURCE``).

    Args:
        dataset: sf-bench's name: humaneval, mbpp, gsm8k, math, drop or hotpotqa.
        source: The checkout's root directory.
        verify: Check every string against the digests of commit :data:`SCOREFLOW_COMMIT`.

    Raises:
        WorkflowConfigError: unknown dataset, no checkout, an unreadable file, or (``verify``)
            a string that differs from the pinned commit (the message names it).
    """
    if dataset not in DATASET_DIRS:
        raise WorkflowConfigError(
            f"ScoreFlow has no prompts for dataset {dataset!r}; it covers {', '.join(DATASET_DIRS)}"
        )
    return _load(resolve_source(source), dataset, verify)


def generator_input_text(problem: ProblemLike) -> str:
    """The task text ScoreFlow puts between its prompt halves (``get_graph_input_text``).

    That is the problem (MATH), the question (GSM8K, HotpotQA: without context), the question
    cut out of DROP's context by ``Question:(.*?)Answer:``, or the function prompt (code).
    """
    task = as_task(problem)
    if task.dataset == "drop":
        match = _DROP_QUESTION.search(task.prompt)
        if match:
            return match.group(1).strip()
    return task.generator_text


def generator_prompt(official: OfficialStrings, problem: ProblemLike) -> str:
    """ScoreFlow's generator prompt for ``problem``: ``START_PORMPT + text + END_PROMPT``.

    Byte for byte as ``generate.py`` builds it; fed to the generator as a raw string, with no
    chat template.
    """
    return official.start_prompt + generator_input_text(problem) + official.end_prompt


def filter_rules(official: OfficialStrings) -> FilterRules:
    """ScoreFlow's validity filters for the dataset (see :mod:`sf_workflows.generator.filters`)."""
    return FilterRules(
        sim_threshold=official.sim_threshold,
        template=official.template,
        banned=official.banned,
        file_prefix=official.python_start,
        file_suffix=official.python_end,
        require_graph=True,
    )


def operator_style(official: OfficialStrings) -> OperatorStyle:
    """ScoreFlow's operators for the dataset, as an operator style.

    Its prompts, MetaGPT's system message, ``Test``'s rounds and ``Programmer``'s timeout, as
    its ``operator.py`` sets them.
    """
    return OperatorStyle(
        name="scoreflow",
        system_message=SCOREFLOW_SYSTEM_MESSAGE,
        prompts=dict(official.op_prompts),
        test_loop=official.test_loop if official.test_loop is not None else 3,
        programmer_timeout=official.programmer_timeout,
        programmer_attempts=3,
    )


def extraction_prompt(official: OfficialStrings, question: str, context: str) -> str:
    """ScoreFlow's extraction prompt with ``question`` and ``context`` filled in.

    ``context`` is the workflow's output; the prompt is sent as a ``Custom`` instruction with
    an empty problem.

    Raises:
        WorkflowConfigError: the dataset has no extraction step (code datasets).
    """
    if official.extraction is None:
        raise WorkflowConfigError(f"ScoreFlow extracts no answer for {official.dataset}")
    values = {"question": question, "context": context}
    return "".join(text if kind == "text" else values.get(text, "") for kind, text in official.extraction)
