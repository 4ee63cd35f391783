"""Programs in languages other than Python: compile, then run, each phase with its own limit and status.

:func:`run_code` (and :func:`arun_code`) run one :class:`CodeRequest` on a :class:`~sf_sandbox.Sandbox`
whose image has the language's toolchain (``sf sandbox build-image --languages all`` builds
``sf-sandbox:all``) and return a :class:`CodeResult`:

* Python runs as a plain ``source`` job (the warm interpreter); bash and JavaScript run as
  ``argv`` jobs. Their one phase is ``run``.
* C, C++, Go, Java and Rust run a small stdlib-only driver (``_lang_driver.py``) as the job: it
  compiles (stdin from /dev/null, output captured and capped, killed at ``compile_timeout``),
  then runs the program on the job's own stdin/stdout/stderr (killed at ``run_timeout``). A
  failed compile is :attr:`~sf_sandbox.Status.COMPILE_ERROR`, never ``error``.

Everything else is the sandbox's: the same container isolation, warm pool, supervisor, output
caps and end-of-job kill of every process.

The modules, one job each: :mod:`~sf_sandbox.languages.table` (the languages: names, toolchains,
argv), :mod:`~sf_sandbox.languages.code` (the request and result types),
:mod:`~sf_sandbox.languages.jobs` (request → job, job result → code result) and
:mod:`~sf_sandbox.languages.report` (reading the driver's untrusted report). Import from here.
"""

from __future__ import annotations

from sf_sandbox.languages.code import CodeRequest, CodeResult, Phase
from sf_sandbox.languages.jobs import arun_code, code_job, code_result, run_code
from sf_sandbox.languages.table import (
    EXTENSIONS,
    LANGUAGES,
    PROFILES,
    Language,
    debian_packages,
    get_language,
    resolve_languages,
)

__all__ = [
    "EXTENSIONS",
    "LANGUAGES",
    "PROFILES",
    "CodeRequest",
    "CodeResult",
    "Language",
    "Phase",
    "arun_code",
    "code_job",
    "code_result",
    "debian_packages",
    "get_language",
    "resolve_languages",
    "run_code",
]
