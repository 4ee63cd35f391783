"""Built-in systems and the ``--solver``/``--generator`` spec parsers.

``--solver`` accepts:

==================== ===============================================================
``canonical``        the datasets' reference answers (no model; proves the harness)
``file:PATH``        answers from a JSONL file or a folder of ``<dataset>.jsonl``
``io``/``cot``/``cot-sc``  executor baselines (sf-workflows; ``--executor-model``/``--base-url``)
``template:NAME``    same as ``--generator template:NAME``
``llm[:MODEL]``      same as ``--generator llm --generator-model MODEL``
``NAME[:ARG]``       a system registered under the entry-point group ``sf_bench.systems``
                     (its factory gets ``ARG`` or nothing)
``module:attr``      your own solver/system/generator, imported from an installed module
``path/x.py:attr``   the same, from a Python file
==================== ===============================================================

``--generator`` (:func:`resolve_generator`) accepts ``template:NAME`` (a shipped sf-workflows
workflow, ``cot_sc``, ``scoreflow``...), ``llm`` (an LLM writes ``--k`` workflows per
problem), ``file:PATH`` (pre-generated workflows), ``aflow:PATH`` (AFlow's published
``graph.py``) and ``module:function`` / ``path/x.py:name`` (your generator); the workflows run
in sf-sandbox through ``sf_workflows.run_workflow`` on the executor.
LLM endpoints come from one :class:`~sf_bench.systems.baselines.Endpoints` per run.

For ``module:attr``, a class is instantiated with no arguments; the object may be a solver
(``async def`` or plain function ``problem -> answer``), a :class:`~sf_bench.protocols.System`
or a zero-argument factory returning one of those.

Only this package (``systems/``) may import sf_workflows, and only lazily (``import sf_bench``
and ``sf bench --help`` stay light); the harness never does.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_bench.errors import BenchConfigError
from sf_bench.protocols import SolverSystem, System, WorkflowGenerator, as_system

if TYPE_CHECKING:
    from sf_bench.systems.baselines import Endpoints
    from sf_sandbox.settings import SandboxSettings

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "GENERATORS", "resolve", "resolve_generator"]

ENTRY_POINT_GROUP = "sf_bench.systems"

Factory = Callable[..., System]
"""A built-in factory: ``(text after NAME:, endpoints, sandbox pool size, sandbox settings) -> System``."""


def _canonical(
    arg: str | None,
    endpoints: Endpoints | None = None,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> System:
    from sf_bench.systems.canonical import CanonicalSystem

    if arg:
        raise BenchConfigError("--solver canonical takes no argument")
    return CanonicalSystem()


def _file(
    arg: str | None,
    endpoints: Endpoints | None = None,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> System:
    from sf_bench.systems.file import FileSystem

    if not arg:
        raise BenchConfigError("--solver file:PATH needs a path, e.g. --solver file:samples.jsonl")
    return FileSystem(arg)


def _baseline(name: str) -> Factory:
    def make(
        arg: str | None,
        endpoints: Endpoints | None = None,
        pool_size: int = 2,
        sandbox: SandboxSettings | None = None,
    ) -> System:
        from sf_bench.systems.baselines import BaselineSolver, Endpoints

        if arg:
            raise BenchConfigError(
                f"--solver {name} takes no argument (the executor comes from --executor-model, "
                "--base-url or SF_EXECUTOR_*)"
            )
        return SolverSystem(BaselineSolver(name, (endpoints or Endpoints()).executor()), name=name)

    return make


def _template(
    arg: str | None,
    endpoints: Endpoints | None = None,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> System:
    from sf_bench.systems.template import template_system

    return template_system(arg, endpoints, pool_size=pool_size, sandbox=sandbox)


def _llm(
    arg: str | None,
    endpoints: Endpoints | None = None,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> System:
    from sf_bench.systems.llm_generator import llm_system

    return llm_system(arg or None, endpoints, pool_size=pool_size, sandbox=sandbox)


BUILTIN: dict[str, Factory] = {
    "canonical": _canonical,
    "file": _file,
    "io": _baseline("io"),
    "cot": _baseline("cot"),
    "cot-sc": _baseline("cot-sc"),
    "template": _template,
    "llm": _llm,
}
"""Built-in system factories by name; each takes the text after ``NAME:`` (or None), the run's
endpoints, the sandbox pool size and the sandbox settings."""

GENERATORS: dict[str, Factory] = {"template": _template, "llm": _llm}
"""The built-in ``--generator`` factories (``template:NAME``, ``llm``); :func:`resolve_generator`
also takes ``file:PATH``, ``aflow:PATH`` and ``module:function``."""


def load_attr(target: str, attr: str, spec: str, flag: str = "--solver") -> Any:  # Any: user code
    """Attribute ``attr`` of the module ``target``: a ``.py`` path (run now) or an importable name.

    ``spec`` and ``flag`` only word the error messages (``--solver mod:attr``).

    Raises:
        BenchConfigError: no such file or module, a file that is not Python, or no ``attr``.
        Exception: whatever the user's module raises while it is imported (its own fault).
    """
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_file():
            raise BenchConfigError(f"{flag} {spec}: file {path} does not exist")
        name = f"_sf_bench_user_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise BenchConfigError(f"{flag} {spec}: cannot load {path} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name and target.startswith(e.name):
                raise BenchConfigError(
                    f"{flag} {spec}: no module {target!r}; "
                    + (
                        "use canonical, file:PATH, module:attr or path.py:attr"
                        if flag == "--solver"
                        else "use llm, template:NAME, file:PATH, aflow:PATH, module:function or file.py:name"
                    )
                ) from e
            raise
    try:
        return getattr(module, attr)
    except AttributeError:
        raise BenchConfigError(f"{flag} {spec}: {target} has no attribute {attr!r}") from None


def _from_object(obj: Any, spec: str) -> System:
    if inspect.isclass(obj):
        obj = obj()
    elif callable(obj) and not isinstance(obj, System | WorkflowGenerator):
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None and not params and not inspect.iscoroutinefunction(obj):
            obj = obj()  # a zero-argument factory
    system = as_system(obj)
    if isinstance(system, SolverSystem):
        system.name = spec
    return system


def resolve(
    spec: str,
    endpoints: Endpoints | None = None,
    *,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> System:
    """Build the system a ``--solver`` spec names (see the module docstring).

    Args:
        spec: The ``--solver`` value.
        endpoints: The run's LLM endpoints (built-in LLM systems; default: the environment).
        pool_size: Sandbox containers for systems that run workflows.
        sandbox: How their sandbox pool is opened (backend, image, runtime, limits).

    Raises:
        BenchConfigError: unknown name, missing file, an object that is not a system, or an
            LLM system without an endpoint.
        DataError: an answers file is malformed.
    """
    spec = spec.strip()
    name, sep, arg = spec.partition(":")
    if name in BUILTIN:
        return BUILTIN[name](arg if sep else None, endpoints, pool_size, sandbox)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory = ep.load()
            return as_system(factory(arg) if sep else factory())
    if sep and arg and name:
        target, _, attr = spec.rpartition(":")
        return _from_object(load_attr(target, attr, spec), spec)
    registered = sorted({*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
    raise BenchConfigError(
        f"unknown solver {spec!r}: use {', '.join(registered)} (file:PATH), "
        "or module:function / path.py:function"
    )


def resolve_generator(
    spec: str,
    endpoints: Endpoints | None = None,
    *,
    pool_size: int = 2,
    timeout: float | None = None,
    batch_size: int = 1,
    sandbox: SandboxSettings | None = None,
) -> System:
    """Build the system a ``--generator`` spec names.

    ``llm`` (an LLM writes the workflows with the generator prompt, on
    ``endpoints.generator()``), ``template:NAME`` (a shipped workflow ``k`` times),
    ``file:PATH`` (pre-generated workflows, :mod:`sf_bench.systems.workflow_file`),
    ``aflow:PATH`` (an AFlow ``graph.py`` + ``prompt.py``, :mod:`sf_bench.systems.aflow`), or
    ``module:function`` / ``path/to/file.py:name`` (your generator,
    :mod:`sf_bench.systems.user_generator`; ``timeout`` and ``batch_size`` apply to it). Every
    workflow runs in a sandbox pool of ``pool_size`` (opened as ``sandbox`` says) through
    ``sf_workflows.run_workflow`` on ``endpoints.executor()``.

    Raises:
        BenchConfigError: unknown generator or template, a bad file or module, or no
            generator/executor endpoint.
        DataError: a workflows file is malformed.
    """
    spec = spec.strip()
    name, sep, arg = spec.partition(":")
    if name == "llm" and sep:
        raise BenchConfigError("--generator llm takes no argument: name the model with --generator-model")
    if name in GENERATORS:
        return GENERATORS[name](arg if sep else None, endpoints, pool_size, sandbox)
    if name == "file":
        from sf_bench.systems.workflow_file import file_generator_system

        return file_generator_system(arg, endpoints, pool_size=pool_size, sandbox=sandbox)
    if name == "aflow":
        from sf_bench.systems.aflow import aflow_system

        return aflow_system(arg, endpoints, pool_size=pool_size, sandbox=sandbox)
    if sep and arg and name:
        from sf_bench.systems.user_generator import DEFAULT_TIMEOUT, user_generator_system

        return user_generator_system(
            spec,
            endpoints,
            pool_size=pool_size,
            sandbox=sandbox,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            batch_size=batch_size,
        )
    raise BenchConfigError(
        f"unknown generator {spec!r}: use llm (with --generator-model), template:NAME (io, cot, "
        "cot_sc, medprompt, multipersona, self_refine, scoreflow, base), file:PATH (pre-generated "
        "workflows), aflow:PATH (an AFlow graph.py) or your own module:function / path.py:function"
    )
