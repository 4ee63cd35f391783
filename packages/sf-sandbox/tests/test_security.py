"""Hostile programs: each must end in a clean status, leaving the host and the next job unaffected.

The ``sb`` cases run twice: in a pool of one job per container, and in a container of three lanes
(``jobs_per_container=3``) where a neighbour's job runs all the while in another lane and must
end ``ok`` with its files intact (:class:`sf_sandbox.testing.Canary`).
"""

from __future__ import annotations

import os
import time

import pytest

from sf_sandbox import Job, Limits, Sandbox, Status
from sf_sandbox.testing import Canary

# Every process the job can see: besides itself, only the supervisor (PID 1) and its job forker
# (the zygote), both root; no process of the job uid may remain from an earlier job. In a lane
# (work dir under /lanes) the neighbours' supervisors and jobs are visible too (another uid), so
# the count is not checked there, and the dirs are the lane's own (work dir and TMPDIR).
PROBE = (
    "import os\n"
    "me = os.getpid()\n"
    "one = os.getcwd() == '/work'\n"
    "pids = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != me]\n"
    "mine = sorted(p for p in pids if os.stat(f'/proc/{p}').st_uid == os.getuid())\n"
    "root = sorted(p for p in pids if os.stat(f'/proc/{p}').st_uid == 0)\n"
    "dirs = ('/work', '/tmp', '/dev/shm') if one else (os.getcwd(), os.environ['TMPDIR'])\n"
    "left = [n for d in dirs for n in os.listdir(d)]\n"
    "print(mine, len(pids) if one else 2, root[0], left)\n"
)


def assert_clean_next_job(sb: Sandbox) -> None:
    for _ in range(2):  # both pool containers (or two lanes)
        r = sb.run(Job(source=PROBE))
        assert r.ok, (r.status, r.stderr)
        assert r.stdout.strip() == "[] 2 1 ['main.py']", r.stdout


@pytest.fixture(params=[1, 3], ids=["one-job", "lanes"])
def sb(docker_ready: None, request: pytest.FixtureRequest):
    lanes = request.param
    limits = Limits(timeout=3, pids=64)
    if lanes == 1:
        with Sandbox(limits=limits, pool_size=2) as box:
            yield box
        return
    with Sandbox(limits=limits, pool_size=1, jobs_per_container=lanes) as box, Canary(box):
        yield box


def test_fork_bomb(sb: Sandbox) -> None:
    src = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    r = sb.run(Job(source=src, limits=Limits(timeout=2)))
    assert r.status is Status.TIMEOUT
    assert_clean_next_job(sb)
    # the pids limit is free again: the next job can start many processes
    r = sb.run(
        Job(
            source="import subprocess\nps = [subprocess.Popen(['sleep', '0']) for _ in range(20)]\n"
            "print(sum(p.wait() == 0 for p in ps))"
        )
    )
    assert r.ok and r.stdout.strip() == "20"


def test_thread_bomb(sb: Sandbox) -> None:
    src = (
        "import threading, time\nn = 0\nwhile True:\n    try:\n"
        "        threading.Thread(target=time.sleep, args=(100,), daemon=True).start(); n += 1\n"
        "    except RuntimeError:\n        print('capped at', n); break\n"
    )
    r = sb.run(Job(source=src))
    assert r.status in (Status.OK, Status.ERROR, Status.TIMEOUT)
    assert "capped at" in r.stdout
    assert int(r.stdout.split()[-1]) < 100
    assert_clean_next_job(sb)


def test_memory_bomb(sb: Sandbox) -> None:
    r = sb.run(
        Job(source="b = bytearray(1)\nwhile True:\n    b = b + bytearray(len(b))", limits=Limits(timeout=30))
    )
    assert r.status is Status.MEMORY
    assert_clean_next_job(sb)


def test_double_forked_daemon_cannot_outlive_the_job(sb: Sandbox) -> None:
    src = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.close(1); os.close(2)\n"
        "        while True:\n"
        "            open('alive', 'w').write(str(time.time())); time.sleep(0.01)\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\nprint('parent done')\n"
    )
    r = sb.run(Job(source=src))
    assert r.ok and r.stdout == "parent done\n"
    assert_clean_next_job(sb)


def test_daemon_on_timeout(sb: Sandbox) -> None:
    src = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    while True: pass\n"
        "while True: time.sleep(1)"
    )
    r = sb.run(Job(source=src, limits=Limits(timeout=1)))
    assert r.status is Status.TIMEOUT
    assert_clean_next_job(sb)


def test_filling_the_work_dir(sb: Sandbox) -> None:
    src = (
        "n = 0\ntry:\n    with open('fill', 'wb') as f:\n        while True:\n"
        "            f.write(b'0' * (1 << 20)); f.flush(); n += 1\n"
        "except OSError as e:\n    print('stopped after', n, 'MiB:', e.strerror)\n"
    )
    r = sb.run(Job(source=src, limits=Limits(timeout=10, file_size_mb=8)))
    assert r.ok and "stopped after" in r.stdout
    assert_clean_next_job(sb)


def test_network_egress_is_impossible(sb: Sandbox) -> None:
    src = (
        "import socket\nfor host in [('1.1.1.1', 53), ('8.8.8.8', 443), ('172.17.0.1', 2375)]:\n"
        "    try:\n        socket.create_connection(host, timeout=1); print('CONNECTED', host)\n"
        "    except OSError as e:\n        print('blocked', e.errno)\n"
        "print(sorted(n for n in open('/proc/net/dev').read().split() if n.endswith(':')))"
    )
    r = sb.run(Job(source=src))
    assert r.ok and "CONNECTED" not in r.stdout
    assert r.stdout.strip().endswith("['lo:']")


def test_host_environment_secrets_are_not_visible(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_TEST_SECRET_KEY", "hunter2")
    r = sb.run(
        Job(
            source="import os\nprint(sorted(os.environ))\n"
            "print(open('/proc/1/environ', 'rb').read() if os.access('/proc/1/environ', os.R_OK) "
            "else 'no access')"
        )
    )
    assert r.ok and "hunter2" not in r.stdout and "SF_TEST_SECRET_KEY" not in r.stdout
    assert "no access" in r.stdout


def test_writing_outside_the_work_dir_fails(sb: Sandbox) -> None:
    src = (
        "import os\nfor path in ['/etc/passwd', '/usr/bin/evil', '/root/x', '/sf/sf_host.py', '/evil']:\n"
        "    try:\n        open(path, 'a').write('x'); print('WROTE', path)\n"
        "    except OSError as e:\n        print('denied', path, e.errno)\n"
    )
    r = sb.run(Job(source=src))
    assert r.ok and "WROTE" not in r.stdout and r.stdout.count("denied") == 5


def test_job_cannot_signal_or_trace_the_supervisor(sb: Sandbox) -> None:
    src = (
        "import os, signal\nfor sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):\n"
        "    try:\n        os.kill(1, sig); print('SIGNALLED')\n"
        "    except PermissionError:\n        print('denied')\n"
        "try:\n    open('/proc/1/mem', 'rb'); print('OPENED MEM')\nexcept OSError:\n    print('denied')\n"
        "print(os.getuid() != 0, open('/proc/self/status').read().split('CapEff:')[1].split()[0])"
    )
    r = sb.run(Job(source=src))
    assert r.ok, r.stderr
    assert r.stdout.count("denied") == 4 and "SIGNALLED" not in r.stdout
    assert r.stdout.strip().endswith("True 0000000000000000")
    assert_clean_next_job(sb)


def test_no_state_leaks_between_jobs(fresh_sandbox: Sandbox) -> None:
    sb = fresh_sandbox
    w = sb.run(
        Job(
            source="import os\nopen('/work/secret', 'w').write('1')\nopen('/tmp/secret', 'w').write('1')\n"
            "open('/dev/shm/secret', 'w').write('1')\nos.makedirs('/tmp/d/e')\n"
            "os.chmod('/tmp/d', 0)\nprint(os.getpid())"
        )
    )
    assert w.ok, w.stderr
    assert fresh_sandbox.replaced == 0
    assert_clean_next_job(sb)


def test_sysv_ipc_object_taints_the_container(fresh_sandbox: Sandbox) -> None:
    # SysV shared memory outlives processes; the container must be replaced, not reused.
    src = (
        "import ctypes\nlibc = ctypes.CDLL(None)\nshmid = libc.shmget(0x5f5f, 4096, 0o1666)\n"
        "print('created' if shmid >= 0 else 'refused')"
    )
    r = fresh_sandbox.run(Job(source=src))
    assert r.ok
    if r.stdout.strip() == "created":
        assert fresh_sandbox.replaced == 1
    # the next job finds no segment under that key (portable: gVisor has no /proc/sysvipc)
    probe = fresh_sandbox.run(Job(source="import ctypes\nprint(ctypes.CDLL(None).shmget(0x5f5f, 0, 0))"))
    assert probe.ok and probe.stdout.strip() == "-1", probe


def test_host_is_unaffected(sb: Sandbox) -> None:
    before = set(os.listdir("/tmp"))
    src = (
        "import tempfile\np = tempfile.gettempdir() + '/from_job'\n"
        "open(p, 'w').write('x')\nprint(open(p).read())"
    )
    r = sb.run(Job(source=src))
    assert r.ok and r.stdout == "x\n", r  # the job wrote its own /tmp ...
    assert "from_job" not in set(os.listdir("/tmp")) - before  # ... and the host's is untouched


def test_killed_job_processes_do_not_burn_cpu_after_timeout(sb: Sandbox) -> None:
    sb.run(Job(source="while True: pass", limits=Limits(timeout=1)))
    t0 = time.monotonic()
    r = sb.run(Job(source="import time\nt = time.process_time()\nx = sum(range(3_000_000))\nprint('ok')"))
    assert r.ok and time.monotonic() - t0 < 3
    assert_clean_next_job(sb)


def test_non_dumpable_daemon_is_killed_too(sb: Sandbox) -> None:
    # PR_SET_DUMPABLE 0 makes /proc/<pid> root-owned: the sweep must not rely on ownership
    src = (
        "import ctypes, os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
        "    while True: time.sleep(0.01)\n"
        "time.sleep(0.2)\nprint('parent done')"
    )
    r = sb.run(Job(source=src))
    assert r.ok and r.stdout == "parent done\n"
    assert_clean_next_job(sb)
