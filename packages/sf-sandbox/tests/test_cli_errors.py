"""The one error rule every ``sf`` command follows (sf_sandbox._cli_errors, sf_sandbox.errors)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from sf_sandbox._cli_errors import exit_code_for, handle_errors, run_group
from sf_sandbox.errors import (
    MissingDependencyError,
    SandboxConfigError,
    SandboxError,
    ScoreFlowError,
    UserError,
)


def _group_raising(exc: BaseException) -> click.Group:
    @click.group()
    def g() -> None:
        pass

    @g.command()
    @handle_errors("interrupted: nothing lost")
    def go() -> None:
        raise exc

    return g


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SandboxConfigError("bad limits"), 2),
        (MissingDependencyError('pip install "x[y]"'), 2),
        (SandboxError("engine went away"), 1),
        (ScoreFlowError("ours"), 1),
    ],
)
def test_sf_errors_print_one_line_with_their_code(
    exc: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_group(_group_raising(exc), ["go"], "t") == code
    err = capsys.readouterr().err
    assert err == f"error: {exc}\n"


def test_a_foreign_exception_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        run_group(_group_raising(ZeroDivisionError("bug")), ["go"], "t")
    assert exit_code_for(ValueError("x")) is None


def test_ctrl_c_says_what_was_kept(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_group(_group_raising(KeyboardInterrupt()), ["go"], "t") == 130
    assert "interrupted: nothing lost" in capsys.readouterr().err


def test_every_package_shares_the_roots() -> None:
    from sf_bench.errors import BenchConfigError, BenchError, DataError
    from sf_train.errors import MissingDependencyError as TrainMissing
    from sf_train.errors import TrainConfigError, TrainError
    from sf_workflows.errors import MissingDependencyError as WorkflowsMissing
    from sf_workflows.errors import WorkflowConfigError, WorkflowError

    for user in (SandboxConfigError, BenchConfigError, DataError, WorkflowConfigError, TrainConfigError):
        assert issubclass(user, UserError) and exit_code_for(user("x")) == 2
    for base in (SandboxError, BenchError, WorkflowError, TrainError):
        assert issubclass(base, ScoreFlowError) and not issubclass(base, UserError)
    assert TrainMissing is WorkflowsMissing is MissingDependencyError  # one class for a missing extra


def test_the_shared_rule_does_not_load_the_sandbox() -> None:
    code = (
        "import sys, sf_sandbox, sf_sandbox._cli_errors, sf_bench.cli\n"
        "print([m for m in ('docker', 'sf_sandbox.sandbox') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
