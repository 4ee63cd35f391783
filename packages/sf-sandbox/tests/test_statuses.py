"""Every Status, exit codes, output capping and encoding, through the real Docker sandbox."""

from __future__ import annotations

import time

import pytest

from sf_sandbox import Job, Limits, Sandbox, SandboxConfigError, Status


def test_ok_and_stdout(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(source="import sys\nprint('out')\nprint('err', file=sys.stderr)"))
    assert (r.status, r.exit_code, r.stdout, r.stderr) == (Status.OK, 0, "out\n", "err\n")
    assert 0 < r.duration < 5


def test_error_exit_code_and_traceback(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(source="raise ValueError('boom')"))
    assert r.status is Status.ERROR and r.exit_code == 1
    assert "ValueError: boom" in r.stderr
    r = sandbox.run(Job(source="import sys\nsys.exit(7)"))
    assert (r.status, r.exit_code) == (Status.ERROR, 7)
    r = sandbox.run(Job(source="def f(:\n  pass"))
    assert r.status is Status.ERROR and "SyntaxError" in r.stderr


def test_argv_job_and_stdin(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(argv=("python3", "-c", "import sys; print(sys.stdin.read().upper())"), stdin=b"abc"))
    assert r.ok and r.stdout == "ABC\n"
    r = sandbox.run(Job(source="print(input()[::-1])", stdin="xyz\n"))
    assert r.ok and r.stdout == "zyx\n"


def test_missing_command_is_a_clear_sandbox_error(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(argv=("no-such-binary",)))
    assert r.status is Status.SANDBOX_ERROR and "no-such-binary" in (r.error or "")


def test_timeout_kills_a_loop_that_ignores_sigterm(sandbox: Sandbox) -> None:
    src = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass"
    t0 = time.monotonic()
    r = sandbox.run(Job(source=src, limits=Limits(timeout=1)))
    assert r.status is Status.TIMEOUT and r.exit_code == -9
    assert time.monotonic() - t0 < 3


def test_memory_status(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(source="x = []\nwhile True:\n    x.append(bytearray(32 << 20))"))
    assert r.status is Status.MEMORY, (r.status, r.stderr[-300:])


def test_output_limit_stops_a_flood_fast(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    r = sandbox.run(
        Job(
            source="import os\nwhile True:\n    os.write(1, b'y' * 65536)",
            limits=Limits(timeout=30, output_bytes=1000),
        )
    )
    assert r.status is Status.OUTPUT_LIMIT and r.stdout_truncated and len(r.stdout_bytes) == 1000
    assert time.monotonic() - t0 < 10  # ends at the cap, not at the 30 s timeout
    r = sandbox.run(
        Job(
            source="import sys\nwhile True:\n    sys.stderr.write('e' * 4096)",
            limits=Limits(timeout=30, output_bytes=5000),
        )
    )
    assert r.status is Status.OUTPUT_LIMIT and r.stderr_truncated and not r.stdout_truncated


def test_100mb_of_stdout(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    r = sandbox.run(
        Job(
            source="import sys\nfor _ in range(1600):\n    sys.stdout.write('z' * 65536)",
            limits=Limits(timeout=30),
        )
    )
    assert r.status is Status.OUTPUT_LIMIT and len(r.stdout_bytes) == Limits().output_bytes
    assert time.monotonic() - t0 < 15


def test_non_utf8_output_is_flagged_and_exact(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(source="import os\nos.write(1, b'ok \\xff\\xfe end')"))
    assert r.ok and r.stdout_lossy and r.stdout_bytes == b"ok \xff\xfe end"
    assert "\ufffd" in r.stdout
    data = r.to_json()
    assert data["stdout_lossy"] is True and "stdout_base64" in data


def test_program_that_closes_stdout(sandbox: Sandbox) -> None:
    r = sandbox.run(
        Job(
            source="import os, sys\nprint('before', flush=True)\nos.close(1)\nsys.stdout = None\n"
            "import time\ntime.sleep(0.1)\nprint('after', file=sys.stderr)"
        )
    )
    assert r.ok and r.stdout == "before\n" and r.stderr == "after\n"


def test_files_in_and_out(sandbox: Sandbox) -> None:
    r = sandbox.run(
        Job(
            source="import json\nd = json.load(open('data/in.json'))\n"
            "open('out.txt', 'w').write(str(d['x'] * 2))",
            files={"data/in.json": b'{"x": 21}'},
            collect=("out.txt", "missing.txt"),
        )
    )
    assert r.ok and r.files == {"out.txt": b"42"}


def test_input_too_large_is_a_clear_status(sandbox: Sandbox) -> None:
    r = sandbox.run(
        Job(source="print(1)", files={"big.bin": b"0" * (2 << 20)}, limits=Limits(file_size_mb=1))
    )
    assert r.status is Status.SANDBOX_ERROR and "file_size_mb" in (r.error or "")


def test_bad_job_definitions_raise_config_errors() -> None:
    with pytest.raises(SandboxConfigError):
        Job()
    with pytest.raises(SandboxConfigError):
        Job(source="x", argv=("y",))
    with pytest.raises(SandboxConfigError):
        Job(source="x", files={"../escape": b""})
    with pytest.raises(SandboxConfigError):
        Limits(timeout=0)


def test_env_and_args(sandbox: Sandbox) -> None:
    r = sandbox.run(
        Job(
            source="import os, sys\nprint(os.environ['MY_VAR'], sys.argv[1:], __name__)",
            env={"MY_VAR": "v"},
            args=("a", "b"),
        )
    )
    assert r.ok and r.stdout == "v ['a', 'b'] __main__\n"
