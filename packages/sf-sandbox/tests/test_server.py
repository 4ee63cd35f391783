"""`sf sandbox serve`: the real server as a subprocess on 127.0.0.1, driven by plain HTTP clients.

SandboxFusion compatibility is checked with SandboxFusion's own published client
(`sandbox_fusion` on PyPI, written to its documented API) and with raw urllib against the
documented reply shape.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from sf_sandbox.server.testing import ServerProcess, owned_containers

pytestmark = pytest.mark.docker

FUSION_REPLY_KEYS = {"status", "message", "compile_result", "run_result", "executor_pod_name", "files"}
FUSION_COMMAND_KEYS = {"status", "execution_time", "return_code", "stdout", "stderr"}


def fusion_post(url: str, payload: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """What any SandboxFusion caller does: POST JSON to {url}/run_code and read JSON back."""
    req = urllib.request.Request(
        url.rstrip("/") + "/run_code",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def host_pids_with(marker: str) -> list[int]:
    """Host-side pids whose command line contains ``marker`` (container processes are visible under runc)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def shared_server(docker_ready: None) -> Any:
    """One server for the read-only tests of this module (pool 2, small body limit)."""
    server = ServerProcess(["--pool-size", "2", "--max-body-bytes", "65536", "--timeout", "5"])
    yield server
    assert server.terminate() == 0


def test_sandboxfusion_official_client(shared_server: Any) -> None:
    from sandbox_fusion import RunCodeRequest, RunStatus, SummaryMapping, run_code, summary_run_code_result

    ok = run_code(
        RunCodeRequest(code="print(input()[::-1])", language="python", stdin="abc\n"),
        endpoint=shared_server.url,
    )
    assert ok.status == RunStatus.Success and ok.run_result.stdout == "cba\n" and ok.compile_result is None
    assert ok.run_result.return_code == 0 and ok.run_result.execution_time > 0
    bad = run_code(
        RunCodeRequest(code="import sys; sys.exit(3)", language="python"), endpoint=shared_server.url
    )
    assert bad.status == RunStatus.Failed and bad.run_result.return_code == 3
    assert summary_run_code_result(bad, SummaryMapping(RunFailed="run failed")) == "run failed"
    slow = run_code(
        RunCodeRequest(code="while True: pass", language="python", run_timeout=0.5),
        endpoint=shared_server.url,
    )
    assert slow.status == RunStatus.Failed and slow.run_result.status == "TimeLimitExceeded"


def test_sandboxfusion_reply_shape_files_and_fetch(shared_server: Any) -> None:
    payload = {
        "code": "data = open('in/data.txt').read()\nopen('out.txt', 'w').write(data.upper())\nprint('done')",
        "language": "python",
        "compile_timeout": 10,
        "run_timeout": 5,
        "memory_limit_MB": 1024,
        "stdin": "",
        "files": {"in/data.txt": base64.b64encode(b"hello").decode()},
        "fetch_files": ["/work/out.txt", "missing.txt"],
    }
    reply = fusion_post(shared_server.url, payload)
    assert set(reply) == FUSION_REPLY_KEYS
    assert set(reply["run_result"]) == FUSION_COMMAND_KEYS
    assert reply["status"] == "Success" and reply["message"] == ""
    assert reply["run_result"]["status"] == "Finished" and reply["run_result"]["stdout"] == "done\n"
    assert reply["files"] == {"/work/out.txt": base64.b64encode(b"HELLO").decode()}  # named as asked


def test_sandboxfusion_validation_errors_are_422(shared_server: Any) -> None:
    status, _, body = shared_server.request("POST", "/run_code", {"language": "python"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "code"]
    status, _, body = shared_server.request("POST", "/run_code", {"code": "1", "language": "cobol"})
    assert status == 422 and "unknown language 'cobol'" in body["detail"][0]["msg"]
    status, _, body = shared_server.request(
        "POST", "/run_code", {"code": "1", "language": "python", "run_timeout": 999}
    )
    assert status == 422 and "maximum" in body["detail"][0]["msg"]
    status, _, body = shared_server.request("POST", "/run_code", b"{not json")
    assert status == 422


def test_language_missing_from_image_is_a_sandbox_error(shared_server: Any) -> None:
    reply = fusion_post(shared_server.url, {"code": "int main(){}", "language": "cpp"})
    assert reply["status"] == "SandboxError" and "build-image --languages all" in reply["message"]
    assert reply["run_result"] is None


def test_native_run_maps_to_job_and_result(shared_server: Any) -> None:
    status, _, body = shared_server.request(
        "POST",
        "/v1/run",
        {
            "argv": ["sh", "-c", "cat in.txt; echo $GREETING; cat > out.bin; exit 4"],
            "stdin_base64": base64.b64encode(b"\x00\xff").decode(),
            "files": {"in.txt": base64.b64encode(b"file\n").decode()},
            "collect": ["out.bin"],
            "env": {"GREETING": "hi"},
            "limits": {"timeout": 3, "output_bytes": 1000},
            "id": "job-1",
        },
    )
    assert status == 200
    assert (body["status"], body["exit_code"], body["stdout"], body["id"]) == (
        "error",
        4,
        "file\nhi\n",
        "job-1",
    )
    assert base64.b64decode(body["files"]["out.bin"]) == b"\x00\xff"
    status, _, body = shared_server.request(
        "POST", "/v1/run", {"source": "print('x' * 5000)", "limits": {"output_bytes": 100}}
    )
    assert body["status"] == "output_limit" and len(body["stdout"]) == 100 and body["stdout_truncated"]


def test_native_bad_jobs_are_400_with_the_reason(shared_server: Any) -> None:
    cases = [
        ({"source": "1", "argv": ["x"]}, "exactly one of source= or argv="),
        ({"source": "1", "limits": {"memory_mb": 4096}}, "belong to the server's containers"),
        ({"source": "1", "limits": {"timeout": 1000}}, "above the server's maximum"),
        ({"source": "1", "limits": {"output_bytes": 1 << 30}}, "above the server's"),
        ({"source": "1", "files": {"../x": "AA=="}}, "without '..'"),
        ({"source": "1", "files": {"a": "***"}}, "not valid base64"),
        ({"source": "1", "bogus": 1}, "unknown job field"),
    ]
    for job, reason in cases:
        status, _, body = shared_server.request("POST", "/v1/run", job)
        assert status == 400 and reason in body["error"], (job, body)
    status, _, body = shared_server.request("POST", "/v1/batch", {"jobs": [{"source": "1"}, {"argv": "ls"}]})
    assert status == 400 and body["error"].startswith("jobs[1]:")


def test_batch_keeps_order(shared_server: Any) -> None:
    jobs = [
        {"source": f"import time; time.sleep({0.3 if i % 2 else 0}); print({i})", "id": str(i)}
        for i in range(6)
    ]
    status, _, body = shared_server.request("POST", "/v1/batch", {"jobs": jobs})
    assert status == 200
    assert [r["stdout"] for r in body["results"]] == [f"{i}\n" for i in range(6)]
    assert [r["id"] for r in body["results"]] == [str(i) for i in range(6)]


def test_oversized_requests_are_413(shared_server: Any) -> None:
    big = {"source": "print(1)", "stdin": "x" * 100_000}
    status, _, body = shared_server.request("POST", "/v1/run", big)
    assert status == 413 and "65536 bytes" in body["error"]
    # chunked, no Content-Length: refused while reading, not after
    parsed = urllib.parse.urlsplit(shared_server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.putrequest("POST", "/run_code")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    chunk = b"x" * 16384
    try:
        for _ in range(8):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close before we finish sending
    assert conn.getresponse().status == 413
    conn.close()
    assert shared_server.metric("sf_sandbox_rejected_total", reason="too_large") >= 2


def test_health_ready_and_metrics(shared_server: Any) -> None:
    assert shared_server.request("GET", "/health")[2]["status"] == "ok"
    assert shared_server.request("GET", "/ready")[0] == 200
    shared_server.request("POST", "/v1/run", {"source": "raise SystemExit(2)"})
    _, headers, text = shared_server.request("GET", "/metrics")
    assert headers["content-type"].startswith("text/plain")
    assert shared_server.metric("sf_sandbox_jobs_total", endpoint="run", status="error") >= 1
    for name in ("sf_sandbox_queue_depth", "sf_sandbox_jobs_running", "sf_sandbox_capacity"):
        assert f"# TYPE {name} gauge" in text
    assert 'sf_sandbox_job_latency_seconds_bucket{endpoint="run",le="+Inf"}' in text
    assert shared_server.request("GET", "/nope")[0] == 404


def test_overload_gives_429_and_the_queue_depth_shows(start_server: Callable[..., Any]) -> None:
    server = start_server("--pool-size", "1", "--max-queue", "2")
    slow = {"source": "import time; time.sleep(2)"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(server.request, "POST", "/v1/run", slow) for _ in range(3)]
        wait_for(lambda: server.metric("sf_sandbox_queue_depth") == 2, 30, "two queued jobs")
        status, headers, body = server.request("POST", "/v1/run", slow)
        assert status == 429 and headers["retry-after"] == "1" and "queue full" in body["error"]
        status, _, body = server.request("POST", "/v1/batch", {"jobs": [slow, slow]})
        assert status == 429
        status, _, body = server.request("POST", "/v1/batch", {"jobs": [slow] * 4})  # can never fit: 400
        assert status == 400 and "split the batch" in body["error"]
        assert [f.result()[2]["status"] for f in futures] == ["ok"] * 3
    assert server.metric("sf_sandbox_rejected_total", reason="queue_full") == 2
    assert server.request("POST", "/v1/run", {"source": "print(1)"})[2]["status"] == "ok"


def test_bearer_token(start_server: Callable[..., Any]) -> None:
    server = start_server("--pool-size", "1", env={"SF_SANDBOX_SERVE_TOKEN": "s3cret"})
    job = {"source": "print(1)"}
    status, headers, _ = server.request("POST", "/v1/run", job)
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert server.request("POST", "/v1/run", job, {"Authorization": "Bearer wrong"})[0] == 401
    assert server.request("GET", "/metrics")[0] == 401
    assert server.request("GET", "/health")[0] == 200  # liveness needs no token
    status, _, body = server.request("POST", "/v1/run", job, {"Authorization": "Bearer s3cret"})
    assert status == 200 and body["stdout"] == "1\n"


def test_disconnect_mid_job_kills_it(start_server: Callable[..., Any]) -> None:
    server = start_server("--pool-size", "1", "--max-timeout", "120")
    marker = f"sf-disconnect-{os.getpid()}-{time.monotonic_ns()}"
    job = {
        "argv": ["python3", "-c", f"import time\n# {marker}\nwhile True: time.sleep(0.05)"],
        "limits": {"timeout": 100},
    }
    parsed = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    conn.request("POST", "/v1/run", body=json.dumps(job), headers={"Content-Type": "application/json"})
    wait_for(lambda: bool(host_pids_with(marker)), 30, "the job to start")
    conn.sock.shutdown(2)
    conn.close()
    wait_for(lambda: not host_pids_with(marker), 10, "the job to be killed after the disconnect")
    wait_for(
        lambda: server.metric("sf_sandbox_jobs_cancelled_total", endpoint="run") == 1, 10, "the cancel metric"
    )
    assert server.request("POST", "/v1/run", {"source": "print('next')"})[2]["stdout"] == "next\n"


def test_sigterm_drains_then_fails_what_is_left(start_server: Callable[..., Any]) -> None:
    server = start_server("--pool-size", "2", "--drain-timeout", "2")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        short = pool.submit(
            server.request, "POST", "/v1/run", {"source": "import time; time.sleep(1); print('done')"}
        )
        long = pool.submit(
            server.request,
            "POST",
            "/v1/run",
            {"source": "import time; time.sleep(30)", "limits": {"timeout": 60}},
        )
        wait_for(lambda: server.metric("sf_sandbox_jobs_running") == 2, 30, "both jobs running")
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert short.result()[2]["stdout"] == "done\n"  # finished within the drain time
        status, _, body = long.result()
        assert status == 200 and body["status"] == "sandbox_error" and "shut down" in body["error"]
    assert server.proc.wait(timeout=60) == 0 and time.monotonic() - t0 < 20
    assert owned_containers(server.pid) == []
    assert "containers removed" in "".join(server.log)


def test_killed_server_leaves_nothing_after_gc(start_server: Callable[..., Any]) -> None:
    server = start_server("--pool-size", "2")
    server.request("POST", "/v1/run", {"source": "print(1)"})
    assert len(owned_containers(server.pid)) == 2
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    gc = subprocess.run(
        [sys.executable, "-m", "sf_sandbox", "gc"], capture_output=True, text=True, timeout=120
    )
    assert gc.returncode == 0, gc.stderr
    assert owned_containers(server.pid) == []


def test_serve_refuses_an_open_host_without_a_token() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sf_sandbox", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --host 0.0.0.0 exposes the sandbox") and "--token" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "sf_sandbox", "serve", "--pool-size", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: invalid server settings: pool_size")


def test_serve_help_teaches() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sf_sandbox", "serve", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    for word in ("/run_code", "/v1/batch", "429", "--drain-timeout", "--runtime", "curl"):
        assert word in proc.stdout


def test_serve_names_the_build_command_for_a_missing_image(docker_ready: None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sf_sandbox", "serve", "--port", "0", "--languages", "c,go"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(
        "is not in the Docker engine: sf sandbox build-image --languages c,go"
    )
