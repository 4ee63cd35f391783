"""Several jobs per container (``jobs_per_container``): a job attacks a concurrent neighbour.

The neighbour runs in another lane of the same container; every attack must fail or be contained,
and the neighbour's result must be unaffected.

The two jobs meet through host calls (no sleeps): the victim publishes its pid, dirs and IPC key,
then waits; the attacker fetches them, attacks, and releases the victim, which then checks that
everything of its own is intact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sf_sandbox import Job, Limits, Sandbox, Status
from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.testing import Canary


class Meeting:
    """Host functions that let a victim and an attacker job meet."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.published = threading.Event()
        self.finished = threading.Event()

    def functions(self) -> dict[str, Any]:
        def publish(info: dict[str, Any]) -> bool:
            self.info = info
            self.published.set()
            return self.finished.wait(30)

        def victim() -> dict[str, Any]:
            assert self.published.wait(30), "the victim never published"
            return self.info

        def finish() -> bool:
            self.finished.set()
            return True

        return {"publish": publish, "victim": victim, "finish": finish}


VICTIM = """
import ctypes, os, socket
from sf_host import call
secret = 'hunter2-' + os.urandom(8).hex()
tmp = os.environ['TMPDIR']
for path in ('secret', os.path.join(tmp, 'secret')):
    with open(path, 'w') as fh:
        fh.write(secret)
    os.chmod(path, 0o644)  # even world-readable files stay out of reach
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(0x5f17, 4096, 0o1600)
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind('\\0sf-victim'); s.listen(1); bound = 'BOUND'
except OSError as e:
    bound = 'bind denied %d' % e.errno
info = {'pid': os.getpid(), 'pgid': os.getpgid(0), 'cwd': os.getcwd(), 'tmp': tmp, 'shmid': shmid}
released = call('publish', info)
intact = all(open(p).read() == secret for p in ('secret', os.path.join(tmp, 'secret')))
print('victim', released, intact, shmid >= 0, bound)
libc.shmctl(shmid, 0, None)  # IPC_RMID: leave nothing behind
"""

ATTACKER = """
import ctypes, os, signal, socket
from sf_host import call
v = call('victim')
pid, out = v['pid'], []
def attempt(name, fn):
    try:
        fn(); out.append('GOT ' + name)
    except OSError as e:
        out.append('denied')
for path in (v['cwd'] + '/secret', v['tmp'] + '/secret', v['cwd'], v['tmp']):
    attempt(path, lambda: open(path).read() if not os.path.isdir(path) or os.listdir(path) else None)
for what in ('environ', 'mem', 'maps', 'cmdline-of-fd', 'fd', 'cwd', 'root'):
    f = '/proc/%d/%s' % (pid, what)
    if what in ('fd',):
        attempt(f, lambda: os.listdir(f))
    elif what in ('cwd', 'root'):
        attempt(f, lambda: os.readlink(f))
    elif what == 'cmdline-of-fd':
        attempt(f, lambda: os.readlink('/proc/%d/fd/0' % pid))
    else:
        attempt(f, lambda: open(f, 'rb').read(1))
attempt('kill', lambda: os.kill(pid, signal.SIGKILL))
attempt('killpg', lambda: os.kill(-v['pgid'], signal.SIGKILL))
attempt('stop', lambda: os.kill(pid, signal.SIGSTOP))
try:
    os.kill(-1, signal.SIGKILL)  # reaches this uid's processes only: none but ourselves
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
out.append('ptrace ' + str(libc.ptrace(16, pid, 0, 0)))  # PTRACE_ATTACH
out.append('shmat ' + str(libc.shmat(v['shmid'], None, 0) in (-1, 2**64 - 1)))
out.append('shmrm ' + str(libc.shmctl(v['shmid'], 0, None)))  # IPC_RMID: the owner's right only
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
attempt('abstract socket', lambda: c.connect('\\0sf-victim'))
for shared in ('/tmp/x', '/dev/shm/x'):
    attempt(shared, lambda: open(shared, 'w').write('x'))
call('finish')
print(' '.join(out))
"""

LANES = 2


@pytest.fixture
def meeting() -> Meeting:
    return Meeting()


@pytest.fixture
def lanes(docker_ready: None, meeting: Meeting) -> Iterator[Sandbox]:
    """One container of two lanes, with the meeting's host calls."""
    with Sandbox(
        limits=Limits(timeout=20), pool_size=1, jobs_per_container=LANES, host_calls=meeting.functions()
    ) as sb:
        yield sb


def run_pair(sb: Sandbox, victim: str, attacker: str) -> tuple[Any, Any]:
    v, a = sb.run_many([Job(source=victim), Job(source=attacker)], concurrency=2)
    return v, a


def test_jobs_of_one_container_run_at_once_in_lanes_of_their_own(lanes: Sandbox) -> None:
    src = "import os\nprint(os.getuid(), os.getcwd(), os.environ['TMPDIR'], os.getpgid(0) == os.getpid())"
    rs = lanes.run_many([Job(source=src) for _ in range(LANES)], concurrency=LANES)
    assert all(r.ok for r in rs), rs
    uids = {r.stdout.split()[0] for r in rs}
    cwds = {r.stdout.split()[1] for r in rs}
    assert len(uids) == LANES and len(cwds) == LANES  # own uid and work dir each
    assert all(r.stdout.split()[3] == "True" for r in rs)  # own process group
    assert lanes.replaced == 0


def test_a_job_cannot_read_signal_trace_or_reach_a_concurrent_neighbour(lanes: Sandbox) -> None:
    v, a = run_pair(lanes, VICTIM, ATTACKER)
    assert a.ok, (a.stdout, a.stderr)
    assert "GOT" not in a.stdout and a.stdout.count("denied") == 17, a.stdout
    assert "ptrace -1" in a.stdout and "shmat True" in a.stdout and "shmrm -1" in a.stdout
    # the victim was neither killed, stopped nor touched, and could not listen for the attacker
    assert v.ok and v.stdout == "victim True True True bind denied 1\n", (v.stdout, v.stderr)


def test_fill_the_shared_disk_does_not_reach_the_neighbour(docker_ready: None) -> None:
    fill = (
        "import os\nfor d in ('.', os.environ['TMPDIR'], '/tmp', '/dev/shm', '/lanes'):\n"
        "    n = 0\n    try:\n        with open(os.path.join(d, 'fill'), 'wb') as f:\n"
        "            while True:\n                f.write(b'0' * (1 << 20)); f.flush(); n += 1\n"
        "    except OSError as e:\n        print(d, n, e.errno)\n"
    )
    limits = Limits(timeout=10, file_size_mb=16)
    with Sandbox(limits=limits, pool_size=1, jobs_per_container=3) as sb, Canary(sb):
        r = sb.run(Job(source=fill, limits=Limits(timeout=10, file_size_mb=128)))
        assert r.ok, r.stderr
        lines = r.stdout.split("\n")
        assert lines[0].split()[1] in ("15", "16") and lines[1].split()[1] in ("0", "15", "16"), r.stdout
        assert [line.split()[1] for line in lines[2:5]] == ["0", "0", "0"], r.stdout  # not writable
        # the neighbour meanwhile wrote and checked its own files (Canary); the lane's next job is clean
        probe = sb.run(Job(source="import os\nprint(os.listdir('.'), os.listdir(os.environ['TMPDIR']))"))
        assert probe.ok and probe.stdout == "['main.py'] []\n", probe.stdout


def test_a_taint_replaces_the_container_once_its_other_lanes_finish(lanes: Sandbox, meeting: Meeting) -> None:
    # a victim holds its lane; the other lane times out (taint); the victim still ends ok, then
    # the container is replaced and the next jobs run in a fresh one
    hold = "from sf_host import call\nprint(call('publish', {}))"
    spin = "from sf_host import call\ncall('victim')\nwhile True: pass"
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(lanes.run(Job(source=hold))))
    t.start()
    r = lanes.run(Job(source=spin, limits=Limits(timeout=1)))
    assert r.status is Status.TIMEOUT
    assert lanes.replaced == 0  # the victim's lane is still running
    meeting.finished.set()
    t.join(30)
    assert results and results[0].ok and results[0].stdout == "True\n"
    rs = lanes.run_many([Job(source="print('fresh')") for _ in range(LANES)], concurrency=LANES)
    assert all(r.ok and r.stdout == "fresh\n" for r in rs)
    assert lanes.replaced == 1


def test_lanes_need_a_container_backend() -> None:
    from sf_sandbox.backends.local_unsafe import UNSAFE_BACKEND_NAME

    with pytest.raises(SandboxConfigError, match="container backend"):
        Sandbox(backend=UNSAFE_BACKEND_NAME, jobs_per_container=2)
    with pytest.raises(SandboxConfigError, match="jobs_per_container"):
        Sandbox(jobs_per_container=0)


CHAIN = """
import os
if os.fork() == 0:  # an escaped daemon that never stays one process for long: fork, parent exits, ...
    os.setsid()
    while True:
        if os.fork():
            os._exit(0)
print('chain started')
"""

MY_UID_PROCESSES = """
import os
me, n = str(os.getuid()), 0
for p in os.listdir('/proc'):
    if p.isdigit() and int(p) != os.getpid():
        try:
            with open('/proc/%s/status' % p) as fh:
                n += any(line.startswith('Uid:') and me in line.split()[1:4] for line in fh)
        except OSError:
            pass
print(n)
"""


def test_a_fork_chain_left_by_a_lane_job_is_killed_before_the_lanes_next_job(docker_ready: None) -> None:
    # a process that forks and exits in a loop is listed by no scan of /proc for long: the lane's
    # kill (kill(-1) as the lane's uid, from one helper) must reach it all the same
    with Sandbox(limits=Limits(timeout=10), pool_size=1, jobs_per_container=LANES) as sb:
        for i in range(3):
            r = sb.run(Job(source=CHAIN))
            assert r.stdout == "chain started\n", (r.stdout, r.stderr)
            probes = sb.run_many([Job(source=MY_UID_PROCESSES) for _ in range(LANES)], concurrency=LANES)
            assert [p.stdout for p in probes] == ["0\n"] * LANES, [(p.stdout, p.stderr) for p in probes]
            assert sb.replaced == i + 1  # stray processes: the container is replaced all the same


def test_a_lane_collects_its_files_as_its_uid(docker_ready: None) -> None:
    # the lane's kill helper reads the files once no process of the job is left: a symlink the job
    # planted to a file only root may read is skipped, the regular files come back
    src = (
        "import os\nopen('out.txt', 'w').write('result')\nos.makedirs('d')\n"
        "open('d/x', 'wb').write(b'\\0' * 3)\nos.symlink('/proc/1/environ', 'leak')\n"
    )
    with Sandbox(limits=Limits(timeout=10), pool_size=1, jobs_per_container=LANES) as sb:
        rs = sb.run_many(
            [Job(source=src, collect=("out.txt", "d/x", "leak", "missing")) for _ in range(LANES * 2)],
            concurrency=LANES,
        )
        for r in rs:
            assert r.ok, (r.status, r.stderr)
            assert dict(r.files) == {"out.txt": b"result", "d/x": b"\0\0\0"}
        assert sb.replaced == 0
