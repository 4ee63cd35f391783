"""What one job can do to the next on the same container, to its own status, and to the kernel.

Each attack here broke a pool slot, passed data to the next job, forged a status or reached a
kernel interface before the hardening of issue #20; each must now fail.
"""

from __future__ import annotations

import errno
import os
import platform
from pathlib import Path
from types import ModuleType

import pytest

from sf_sandbox import Job, Limits, Sandbox, Status

# The work dir's own metadata and that of the other writable dirs, as a job sees it.
META = (
    "import os\nout = []\nfor d in ('/work', '/tmp', '/dev/shm'):\n"
    "    st = os.stat(d)\n"
    "    try:\n        xs = sorted(os.listxattr(d))\n    except OSError as e:\n        xs = e.errno\n"
    # /work's mtime is that of the job's own main.py (written at set-up): only whether it is ours
    "    mtime = st.st_mtime_ns if d != '/work' else st.st_mtime_ns == 12345\n"
    "    out.append((d, oct(st.st_mode), st.st_uid, st.st_gid, mtime, xs))\n"
    "print(out)\nprint(sorted(os.listdir('/work')))\n"
)


@pytest.mark.parametrize("mode", [0o500, 0o000, 0o300, 0o755, 0o1777])
def test_a_job_cannot_break_its_slot_by_chmod_of_the_work_dir(fresh_sandbox: Sandbox, mode: int) -> None:
    r = fresh_sandbox.run(Job(source=f"import os\nos.chmod('/work', {mode:#o})\nprint('done')"))
    assert r.ok and r.stdout == "done\n", (r.status, r.error, r.stderr)
    for _ in range(2):
        r = fresh_sandbox.run(Job(source="import os\nprint(oct(os.stat('/work').st_mode & 0o7777))"))
        assert r.ok, (r.status, r.error)
        assert r.stdout == "0o700\n"


def test_work_dir_metadata_is_no_channel_between_jobs(fresh_sandbox: Sandbox) -> None:
    before = fresh_sandbox.run(Job(source=META))
    assert before.ok, before.stderr
    attack = (
        "import os\n"
        "for d in ('/work', '/tmp', '/dev/shm'):\n"
        "    try:\n        os.setxattr(d, 'user.secret', b'42')\n    except OSError:\n        pass\n"
        "open('/tmp/x', 'w').close(); os.unlink('/tmp/x')\n"  # moves /tmp's mtime
        "open('/dev/shm/x', 'w').close(); os.unlink('/dev/shm/x')\n"
        "os.chmod('/work', 0o751)\nos.utime('/work', ns=(12345, 12345))\nprint(os.listxattr('/work'))\n"
    )
    r = fresh_sandbox.run(Job(source=attack))
    assert r.ok, (r.status, r.error, r.stderr)
    after = fresh_sandbox.run(Job(source=META))
    assert after.ok, after.stderr
    assert after.stdout == before.stdout
    assert fresh_sandbox.replaced == 0


def test_a_job_setup_failure_taints_and_replaces_the_container(fresh_sandbox: Sandbox) -> None:
    # 'a' is written as a file, then 'a/b' needs it as a directory: the set-up in the box fails
    r = fresh_sandbox.run(Job(source="print(1)", files={"a": b"x", "a/b": b"y"}))
    assert r.status is Status.SANDBOX_ERROR and "setup failed" in (r.error or ""), (r.status, r.error)
    assert fresh_sandbox.replaced == 1
    assert fresh_sandbox.run(Job(source="print('next')")).stdout == "next\n"


def test_a_slot_failing_setup_twice_is_replaced(fresh_sandbox: Sandbox) -> None:
    r = fresh_sandbox.run(Job(argv=("/no/such/program",)))
    assert r.status is Status.SANDBOX_ERROR and "cannot execute" in (r.error or "")
    assert fresh_sandbox.replaced == 0  # a missing program is the job's, the box is fine
    fresh_sandbox.run(Job(argv=("/no/such/program",)))
    assert fresh_sandbox.replaced == 1
    assert fresh_sandbox.run(Job(source="print('next')")).stdout == "next\n"


def test_a_deep_directory_tree_is_wiped_and_not_a_sandbox_error(fresh_sandbox: Sandbox) -> None:
    src = (
        "import os\nfor i in range(1200):\n    os.mkdir('d')\n    os.chdir('d')\n"
        "open('leaf', 'w').write('x')\nos.chmod('.', 0)\nprint('deep')"
    )
    r = fresh_sandbox.run(Job(source=src))
    assert r.status is Status.OK and r.stdout == "deep\n", (r.status, r.error)
    r = fresh_sandbox.run(Job(source="import os\nprint(os.listdir('/work'))"))
    assert r.ok and r.stdout == "['main.py']\n"
    assert fresh_sandbox.replaced == 0


@pytest.mark.parametrize(
    "source",
    [
        "import sys\nprint('MemoryError', file=sys.stderr)\nsys.exit(1)",
        "raise MemoryError",
        "x = bytearray(1 << 60)",  # refused by the allocator at once: Python's MemoryError, no OOM
        "def f(): f()\nf()",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    ],
    ids=["prints-MemoryError", "raises-MemoryError", "huge-allocation", "recursion", "kills-itself"],
)
def test_a_job_cannot_forge_memory_or_sandbox_error(sandbox: Sandbox, source: str) -> None:
    r = sandbox.run(Job(source=source))
    assert r.status is Status.ERROR, (r.status, r.error, r.stderr[-200:])


def test_memory_is_decided_by_the_oom_killer(sandbox: Sandbox) -> None:
    r = sandbox.run(
        Job(source="b = bytearray(1)\nwhile True:\n    b = b + bytearray(len(b))", limits=Limits(timeout=30))
    )
    assert r.status is Status.MEMORY and r.exit_code == -9


@pytest.fixture(scope="module")
def supervisor() -> ModuleType:
    """The supervisor's source, exactly as sent, loaded as a module (it runs nothing under this name)."""
    from sf_sandbox.supervisor import supervisor_source

    module = ModuleType("sf_supervisor_under_test")
    exec(compile(supervisor_source(), "sf_supervisor", "exec"), module.__dict__)  # noqa: S102 - our own source
    return module


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.events": "low 0\nhigh 0\nmax 7\noom 3\noom_kill 2\n"}, 2),  # cgroup v2
        ({"memory/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"}, 5),  # v1
        ({"memory/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n"}, None),  # v1, old kernel
        ({}, None),
    ],
    ids=["v2", "v1", "v1-no-counter", "none"],
)
def test_the_oom_counter_is_read_on_cgroup_v1_and_v2(
    supervisor: ModuleType, tmp_path: Path, files: dict[str, str], expected: int | None
) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert supervisor.oom_kills(str(tmp_path)) == expected


def test_the_wipe_handles_any_depth_and_closed_dirs(supervisor: ModuleType, tmp_path: Path) -> None:
    top = tmp_path / "work"  # 300 levels of 40-character names: 12,000 characters, past PATH_MAX
    os.mkdir(top)
    cur = os.open(top, os.O_RDONLY)
    for _ in range(300):
        os.mkdir("d" * 40, dir_fd=cur)
        nxt = os.open("d" * 40, os.O_RDONLY, dir_fd=cur)
        os.close(cur)
        cur = nxt
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=cur))
    os.symlink("/etc", "link", dir_fd=cur)
    os.chmod(cur, 0o500)
    os.close(cur)
    (top / "closed").mkdir()
    (top / "closed" / "x").write_text("x")
    (top / "closed").chmod(0)
    assert supervisor.wipe_tree(str(top))
    assert os.listdir(top) == []
    assert Path("/etc/passwd").exists()


# --- kernel surface ------------------------------------------------------------------------------

SYSCALLS = {
    # name: (x86_64, aarch64) numbers; io_uring's are the same everywhere
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "perf_event_open": (298, 241),
    "ptrace": (101, 117),
    "unshare": (272, 97),
    "fsopen": (430, 430),
}


def test_io_uring_and_other_kernel_interfaces_are_denied(sandbox: Sandbox) -> None:
    arch = 0 if platform.machine() in ("x86_64", "AMD64") else 1
    calls = {name: nums[arch] for name, nums in SYSCALLS.items()}
    src = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(256)\n"
        f"out = {{}}\nfor name, nr in {calls!r}.items():\n"
        "    arg = 0x10000000 if name == 'unshare' else 8\n"  # CLONE_NEWUSER for unshare
        "    r = libc.syscall(nr, arg, buf, 0, 0, 0)\n"
        "    out[name] = (r, ctypes.get_errno())\nprint(out)"
    )
    r = sandbox.run(Job(source=src))
    assert r.ok, r.stderr
    results = eval(r.stdout)  # noqa: S307 - our own job's repr of a dict of int pairs
    allowed = {
        name: res
        for name, res in results.items()
        if res[0] != -1 or res[1] not in (errno.EPERM, errno.ENOSYS)
    }
    assert not allowed, f"reachable from a job: {allowed}"


def test_threads_subprocesses_and_ipc_still_work_under_the_profile(sandbox: Sandbox) -> None:
    src = (
        "import threading, subprocess, multiprocessing, asyncio, socket, mmap, os\n"
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
        "print(subprocess.run(['sh', '-c', 'echo sub'], capture_output=True, text=True).stdout.strip())\n"
        "with multiprocessing.Pool(2) as p:\n    print(sum(p.map(abs, [-1, -2])))\n"
        "a, b = socket.socketpair(); a.send(b'sock'); print(b.recv(4).decode())\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('listen')\n"
        "m = mmap.mmap(-1, 4096); m[:2] = b'mm'; print(m[:2].decode())\n"
        "print(asyncio.run(asyncio.sleep(0, 'async')))\nprint(len(os.urandom(8)))\n"
    )
    r = sandbox.run(Job(source=src))
    assert r.ok, r.stderr
    assert r.stdout.split() == ["thread", "sub", "3", "sock", "listen", "mm", "async", "8"]


def test_every_container_runs_under_our_profile(fresh_sandbox: Sandbox) -> None:
    from sf_sandbox.backends.seccomp import profile

    fresh_sandbox.run(Job(source="pass"))
    worker, _lane = fresh_sandbox._idle[0]  # free slots are (container, lane)
    opts = worker.conn.container.attrs["HostConfig"]["SecurityOpt"]  # type: ignore[attr-defined]
    profiles = [o for o in opts if o.startswith("seccomp=")]
    assert len(profiles) == 1 and '"io_uring_setup"' in profiles[0]
    assert profile()["defaultAction"] == "SCMP_ACT_ERRNO"
