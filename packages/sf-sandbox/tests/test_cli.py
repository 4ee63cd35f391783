"""The `sf` root command and `sf sandbox …`, run through main() and as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sf_sandbox.cli import main


def test_root_help_lists_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sandbox" in out and "Examples" in out


def test_run_json(tmp_path: Path, docker_ready: None, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "p.py"
    prog.write_text("import sys\nprint(sys.stdin.read() * 2)\nsys.exit(3)")
    assert main(["sandbox", "run", str(prog), "--stdin", "ab", "--json"]) == 0  # the sandbox worked
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "error" and data["exit_code"] == 3 and data["stdout"] == "abab\n"
    assert set(data) >= {
        "status",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "duration",
        "stdout_lossy",
        "stderr_lossy",
    }


def test_run_timeout_plain(tmp_path: Path, docker_ready: None, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "loop.py"
    prog.write_text("while True: pass")
    assert main(["sandbox", "run", str(prog), "--timeout", "0.5"]) == 0
    assert "status=timeout exit_code=-9" in capsys.readouterr().err


def test_bad_input_gives_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read") and "Traceback" not in err
    assert main(["sandbox", "run", str(tmp_path / "x.py"), "--timeout", "abc"]) == 2


def test_missing_engine_is_actionable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prog = tmp_path / "p.py"
    prog.write_text("print(1)")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    assert main(["sandbox", "run", str(prog)]) == 1
    err = capsys.readouterr().err
    assert "no Docker engine answers" in err and "sf sandbox doctor" in err and "Traceback" not in err


def test_missing_image_is_actionable(
    tmp_path: Path, docker_ready: None, capsys: pytest.CaptureFixture[str]
) -> None:
    prog = tmp_path / "p.py"
    prog.write_text("print(1)")
    assert main(["sandbox", "run", str(prog), "--image", "sf-no-such-image:1"]) == 1
    assert "is not in the Docker engine" in capsys.readouterr().err


def test_doctor(docker_ready: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "[ok ] engine" in out and "network blocked" in out


def test_build_image_is_cached(docker_ready: None, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.monotonic()
    assert main(["sandbox", "build-image"]) == 0
    assert "cached" in capsys.readouterr().err and time.monotonic() - t0 < 10


def test_gc_after_killed_host_process(docker_ready: None, tmp_path: Path) -> None:
    import docker

    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys, time
        from sf_sandbox import Sandbox
        sb = Sandbox(pool_size=2)
        sb.start()
        print(os.getpid(), flush=True)
        time.sleep(120)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    pid = proc.stdout.readline().strip()
    client = docker.from_env()
    mine = {"label": [f"sf-sandbox.owner-pid={pid}"]}
    assert len(client.containers.list(all=True, filters=mine)) == 2
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup code runs
    proc.wait()
    assert main(["sandbox", "gc"]) == 0
    assert client.containers.list(all=True, filters=mine) == []


def test_sf_console_script() -> None:
    out = subprocess.run([sys.executable, "-m", "sf_sandbox", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "build-image" in out.stdout
