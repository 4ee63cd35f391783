"""The sandbox job of one workflow run: the operator runtime it carries and the spec it reads.

:func:`build_job` turns a workflow source and a :class:`~sf_workflows.Task` into an
``sf_sandbox.Job`` whose boot script starts ``operators/_bootstrap.py`` inside the sandbox;
:func:`runtime_bundle` is the operator package that job imports (zipped, with bytecode), and
:func:`runtime_preload` the same package preloaded into every job of a pool.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import io
import json
import marshal
import zipfile
from importlib import resources
from typing import TYPE_CHECKING

from sf_workflows.llm_calls import JOB_FILE
from sf_workflows.types import Task

if TYPE_CHECKING:
    from sf_sandbox import Job, Limits, Preload
    from sf_workflows.operators._style import OperatorStyle

__all__ = [
    "BOOT",
    "JOB_GRACE_S",
    "RESULT_FILE",
    "RUNTIME_PACKAGE",
    "ZIP_FILE",
    "build_job",
    "runtime_bundle",
    "runtime_preload",
]

RUNTIME_PACKAGE = "sfw_operators"
"""Name of the operator package inside the sandbox (``sf_workflows.operators``, zipped)."""
RESULT_FILE = "sfw_result.json"
"""The file the job writes its result to (collected by the host)."""
ZIP_FILE = "sfw_runtime.zip"
"""The runtime zip's name in the job's (or the preload's) files."""
BOOT = (
    "import os, sys\n"
    "sys.modules.setdefault('ssl', None)  # no network in the sandbox; skips loading OpenSSL with asyncio\n"
    f"sys.path.insert(0, os.path.abspath({ZIP_FILE!r}))\n"
    f"from {RUNTIME_PACKAGE}._bootstrap import main\n"
    f"main({JOB_FILE!r}, {RESULT_FILE!r})\n"
)
"""The job's source: put the runtime on ``sys.path`` and run the workflow."""
JOB_GRACE_S = 5.0
"""Default seconds the sandbox job may run past the workflow timeout (start-up, result writing)."""
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
"""Every zip entry's timestamp, so the bundle's bytes depend on the sources only."""


@functools.lru_cache(maxsize=1)
def runtime_bundle() -> bytes:
    """The operator package as a zip.

    Sources plus unchecked-hash ``.pyc`` for this Python, which the sandbox uses when its Python has
    the same bytecode version, else the sources.
    """
    buf = io.BytesIO()
    root = resources.files("sf_workflows.operators")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in sorted(root.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".py"):
                continue
            source = entry.read_bytes()
            name = f"{RUNTIME_PACKAGE}/{entry.name}"
            zf.writestr(zipfile.ZipInfo(name, _ZIP_DATE), source)
            code = compile(source, name, "exec", dont_inherit=True)
            pyc = bytearray(importlib.util.MAGIC_NUMBER)
            pyc += (1).to_bytes(4, "little")  # hash-based, unchecked
            pyc += importlib.util.source_hash(source)
            pyc += marshal.dumps(code)
            zf.writestr(zipfile.ZipInfo(name + "c", _ZIP_DATE), bytes(pyc))
    return buf.getvalue()


def runtime_preload() -> Preload:
    """An ``sf_sandbox.Preload`` of the operator runtime.

    Every job of the pool starts with it imported, so :func:`~sf_workflows.run_workflow` ships
    neither the runtime zip nor imports it per job.
    """
    from sf_sandbox import Preload

    return Preload(
        files={ZIP_FILE: runtime_bundle()}, path=(ZIP_FILE,), modules=(f"{RUNTIME_PACKAGE}._bootstrap",)
    )


def build_job(
    source: str,
    task: Task,
    token: str,
    *,
    timeout: float,
    code_timeout: float,
    max_llm_calls: int,
    max_answer_bytes: int,
    base_limits: Limits | None,
    pipelined: bool = True,
    grace: float = JOB_GRACE_S,
    tag: str = "0",
    runtime_preloaded: bool = False,
    operator_style: OperatorStyle | None = None,
) -> Job:
    """The sandbox job that runs ``source`` on ``task`` (see ``operators/_bootstrap.py``).

    ``base_limits``: the sandbox's limits (``None`` or anything else: ``Limits()``), of which the
    job keeps all but its timeout (``timeout + grace``), its host-call count and its output bytes.
    ``runtime_preloaded``: the sandbox's jobs start with the runtime imported
    (:func:`runtime_preload`), so the job does not carry the runtime zip.
    ``operator_style``: an ``OperatorStyle`` (``None``: ours) the operators use in the job.

    The spec's ``host`` entry (the run's cache ``tag`` and call limit) is read by a remote node's
    :class:`~sf_workflows.remote.WorkflowHost` from the job as the driver built it; the job
    itself ignores it.
    """
    from sf_sandbox import Job, Limits

    spec: dict[str, object] = {
        "source": source,
        "problem": task.workflow_input(),
        "task_type": task.task_type,
        "entry_point": task.entry_point,
        "public_tests": list(task.public_tests),
        "timeout": timeout,
        "code_timeout": code_timeout,
        "token": token,
        "max_answer_bytes": max_answer_bytes,
        "pipelined": pipelined,
        "host": {"tag": tag, "max_llm_calls": max_llm_calls},
    }
    if operator_style is not None:
        spec["operator_style"] = operator_style.to_json()
    base = base_limits if isinstance(base_limits, Limits) else Limits()
    limits = dataclasses.replace(
        base,
        timeout=timeout + grace,
        host_calls=max_llm_calls + 16,
        files_out_bytes=max(base.files_out_bytes, max_answer_bytes * 2 + 4096),
    )
    return Job(
        source=BOOT,
        files={
            **({} if runtime_preloaded else {ZIP_FILE: runtime_bundle()}),
            JOB_FILE: json.dumps(spec).encode(),
        },
        collect=(RESULT_FILE,),
        limits=limits,
        id=task.id,
    )
