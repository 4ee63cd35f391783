"""Host-call relay under attack: no job's calls outlive it, stall its neighbours, or wedge the relay.

Nor do they tax the host's memory; oversized, deep and flooding requests get an answer, not a hang.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sf_sandbox import Job, Limits, Sandbox, Status
from sf_sandbox.backends.base import Connection
from sf_sandbox.backends.docker import LABEL, DockerBackend, docker_client

# A job that writes raw host-call frames without waiting (what a pipelining runtime does).
PIPE = (
    "import json, os, struct, sys\n"
    "H = struct.Struct('>I')\n"
    "fd = int(os.environ['SF_HOST_FD'])\n"
    "def send(name, *args, cid=None):\n"
    "    d = json.dumps({'name': name, 'args': list(args), 'kwargs': {}, 'call_id': cid}).encode()\n"
    "    os.write(fd, H.pack(len(d)) + d)\n"
    "def exact(n):\n"
    "    b = b''\n"
    "    while len(b) < n:\n"
    "        c = os.read(fd, n - len(b))\n"
    "        if not c:\n"
    "            raise EOFError\n"
    "        b += c\n"
    "    return b\n"
    "def recv():\n"
    "    (n,) = H.unpack(exact(4))\n"
    "    return json.loads(exact(n))\n"
)


class Gauge:
    """Counts calls of a host function: started, running now, most at once."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.started = 0
        self.running = 0
        self.peak = 0

    def enter(self) -> None:
        with self.cond:
            self.started += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.cond.notify_all()

    def leave(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[Gauge], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)


@pytest.fixture
def gauge() -> Gauge:
    return Gauge()


def test_calls_of_a_finished_job_never_run(docker_ready: None, gauge: Gauge) -> None:
    def slow(i: int) -> int:
        gauge.enter()
        time.sleep(0.1)
        gauge.leave()
        return i

    with Sandbox(host_calls={"slow": slow}, pool_size=1) as sb:
        # a thread pipelines 400 calls (the supervisor takes them as slots free); the job exits
        # as soon as the first calls run
        src = PIPE + (
            "import threading, time\n"
            "threading.Thread(target=lambda: [send('slow', i) for i in range(400)], daemon=True).start()\n"
            "time.sleep(0.3)\nprint('leaving', flush=True)\nos._exit(0)"
        )
        r = sb.run(Job(source=src))
        assert r.ok and r.stdout == "leaving\n", (r.status, r.stderr)
        at_end = gauge.started
        assert gauge.wait_for(lambda g: g.running == 0, timeout=30)
        # the calls running when the job ended finish unseen; nothing queued ever starts
        assert gauge.started == at_end, (at_end, gauge.started)
        assert 0 < at_end < 100
        # and the next job's call is served at once
        t0 = time.monotonic()
        r = sb.run(Job(source="from sf_host import call\nprint(call('slow', 7))"))
        assert r.ok and r.stdout == "7\n" and time.monotonic() - t0 < 2


def test_one_job_cannot_stall_another_jobs_calls(docker_ready: None, gauge: Gauge) -> None:
    release = threading.Event()

    def slow(i: int) -> int:
        gauge.enter()
        release.wait(20)
        gauge.leave()
        return i

    funcs = {"slow": slow, "echo": lambda x: x}
    with Sandbox(host_calls=funcs, pool_size=2, limits=Limits(timeout=30)) as sb:
        hog = threading.Thread(
            target=sb.run,
            args=(
                Job(
                    source=PIPE + "for i in range(16):\n    send('slow', i)\nfor i in range(16):\n    recv()"
                ),
            ),
        )
        hog.start()
        try:
            assert gauge.wait_for(lambda g: g.running >= 8, timeout=20)
            r = sb.run(
                Job(
                    source="import time\nfrom sf_host import call\nt = time.perf_counter()\n"
                    "call('echo', 1)\nprint(time.perf_counter() - t)",
                    limits=Limits(timeout=8),
                )
            )
            assert r.ok, (r.status, r.error)
            assert float(r.stdout) < 1.0, r.stdout
            assert gauge.peak <= Limits().host_calls_in_flight
        finally:
            release.set()
            hog.join()


def test_async_host_calls_are_under_the_same_cap(docker_ready: None, gauge: Gauge) -> None:
    async def aslow(i: int) -> int:
        gauge.enter()
        await asyncio.sleep(0.02)
        gauge.leave()
        return i

    with Sandbox(host_calls={"aslow": aslow}, pool_size=1) as sb:
        src = PIPE + (
            "for i in range(200):\n    send('aslow', i, cid=i)\n"
            "got = sorted(recv()['value'] for _ in range(200))\nprint(got == list(range(200)))"
        )
        r = sb.run(Job(source=src, limits=Limits(timeout=30, host_calls_in_flight=3)))
    assert r.ok and r.stdout == "True\n", (r.status, r.stderr)
    assert gauge.started == 200 and gauge.peak <= 3, gauge.peak


def test_queued_arguments_are_held_to_the_byte_budget(docker_ready: None, gauge: Gauge) -> None:
    def hold(blob: str) -> int:
        gauge.enter()
        time.sleep(3)  # longer than the job needs to send all four, even on a loaded machine
        gauge.leave()
        return len(blob)

    with Sandbox(host_calls={"hold": hold}, pool_size=1) as sb:
        src = PIPE + (
            "blob = 'x' * (3 << 20)\nfor i in range(4):\n    send('hold', blob, cid=i)\n"
            "rs = [recv() for _ in range(4)]\n"
            "print(sum(r['ok'] for r in rs), [r['error'] for r in rs if not r['ok']][:1])"
        )
        r = sb.run(Job(source=src, limits=Limits(timeout=20, host_call_bytes=8 << 20)))
    assert r.ok, (r.status, r.stderr)
    ok, _, error = r.stdout.partition(" ")
    assert int(ok) == 2 and "Limits.host_call_bytes" in error, r.stdout
    assert gauge.started == 2


def test_replies_larger_than_the_job_reads(docker_ready: None, gauge: Gauge) -> None:
    def blob(n: int) -> str:
        gauge.enter()
        gauge.leave()
        return "y" * n

    with Sandbox(host_calls={"blob": blob}, pool_size=1) as sb:
        src = (
            PIPE + "for i in range(40):\n    send('blob', 8 << 20)\nimport time\nwhile True: time.sleep(1)\n"
        )
        r = sb.run(Job(source=src, limits=Limits(timeout=3)))
        assert r.status is Status.TIMEOUT and r.duration < 5, (r.status, r.duration)
        # the job reads no reply, so it holds its slots: the host ran no more than the cap
        assert gauge.started <= Limits().host_calls_in_flight
        assert sb.run(Job(source="print('next')")).stdout == "next\n"


@pytest.mark.parametrize(
    "attack",
    [
        "os.write(fd, H.pack(0xFFFFFFFF) + b'x' * 1000)\nprint(recv()['error'])",
        "from sf_host import call, HostCallError\ntry:\n    call('echo', 'x' * 100_000_000)\n"
        "except HostCallError as e:\n    print(e)",
    ],
    ids=["declares-4GiB", "100MB-payload"],
)
def test_oversized_frames_get_an_answer(docker_ready: None, attack: str) -> None:
    with Sandbox(host_calls={"echo": lambda x: x}, pool_size=1) as sb:
        r = sb.run(Job(source=PIPE + attack, limits=Limits(timeout=20)))
        assert r.ok, (r.status, r.error, r.stderr[-300:])
        assert "refused" in r.stdout and "limit" in r.stdout, r.stdout
        assert r.duration < 10  # building 100 MB of JSON in the job is most of it
        assert sb.run(Job(source="print('next')")).stdout == "next\n"


def test_a_large_reply_is_forwarded_as_soon_as_ready(docker_ready: None) -> None:
    with Sandbox(host_calls={"blob": lambda n: "z" * n}, pool_size=1) as sb:
        src = (
            "import time\nfrom sf_host import call\nbest = 9.0\nfor _ in range(3):\n"
            "    t = time.perf_counter(); v = call('blob', 4 << 20)\n"
            "    best = min(best, time.perf_counter() - t)\n"
            "    assert len(v) == 4 << 20\nprint(best)"
        )
        r = sb.run(Job(source=src, limits=Limits(timeout=30)))
    assert r.ok, (r.status, r.stderr)
    # 18-21 s before the fix (the supervisor forwarded once per 1 s poll); 0.1-0.5 s measured after
    # on the shared 2-core box under load 12-17 (benchmarks/sandbox_throughput.py). The bound
    # leaves room for a loaded CI machine.
    assert float(r.stdout) < 1.0, f"4 MiB reply took {r.stdout.strip()} s"


def nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("direction", ["argument", "reply"])
def test_deep_nesting_is_answered_with_an_error(docker_ready: None, direction: str) -> None:
    with Sandbox(host_calls={"echo": lambda x: x, "deep": lambda: nest(985)}, pool_size=1) as sb:
        if direction == "argument":  # raw JSON: the job's own json.dumps could not nest this deep
            attack = (
                "d = b'{\"name\":\"echo\",\"args\":[' + b'[' * 985 + b'0' + b']' * 985 + b']}'\n"
                "os.write(fd, H.pack(len(d)) + d)\nprint('error:', recv()['error'])\n"
            )
        else:
            attack = (
                "from sf_host import call, HostCallError\ntry:\n    call('deep')\n    print('answered')\n"
                "except HostCallError as e:\n    print('error:', e)\n"
            )
        src = PIPE + attack + "from sf_host import call\nw = [[[1]]]\nprint(call('echo', w) == w)"
        r = sb.run(Job(source=src, limits=Limits(timeout=10)))
        assert r.ok, (r.status, r.error, r.stderr[-300:])
        first, second = r.stdout.splitlines()
        assert first.startswith("error:") and "deeper than" in first, first
        assert second == "True"
        assert r.duration < 5


# --- faults on the host side: a reader that stops, a kill that never finishes -----------------


class FaultyBackend(DockerBackend):
    """The real Docker backend with a fault on the host side of each connection."""

    def __init__(self, fault: Callable[[Connection, Callable[[bytes], None]], Callable[[bytes], None]]):
        super().__init__()
        self.fault = fault
        self.conns: list[Connection] = []

    def start(self, limits: Limits, on_data: Callable[[bytes], None], on_close: Callable[[], None]) -> Any:
        box: list[Connection] = []
        wrapped = self.fault(_Late(box), on_data)
        conn, config = super().start(limits, wrapped, on_close)
        box.append(conn)
        self.conns.append(conn)
        return conn, config


class _Late:
    """The connection, once it exists (the callbacks are made before it)."""

    def __init__(self, box: list[Connection]) -> None:
        self.box = box

    def __getattr__(self, name: str) -> Any:
        return getattr(self.box[0], name)


@pytest.fixture
def unblock() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_supervisor_enforces_the_timeout_when_the_host_stops_reading(
    docker_ready: None, unblock: threading.Event
) -> None:
    stalled = threading.Event()

    def stall_on_first_hostcall(conn: Any, on_data: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def feed(chunk: bytes) -> None:
            if b'"op":"hostcall"' in chunk and not stalled.is_set():
                stalled.set()
                unblock.wait(8)  # the host's reader stops draining the container for 8 s
            on_data(chunk)

        return feed

    backend = FaultyBackend(stall_on_first_hostcall)
    with Sandbox(backend=backend, host_calls={"echo": lambda x: len(x)}, pool_size=1) as sb:
        src = PIPE + "for i in range(16):\n    send('echo', 'x' * (1 << 20))\nwhile True: pass\n"
        r = sb.run(Job(source=src, limits=Limits(timeout=2)))
        assert stalled.is_set()
        assert r.status is Status.TIMEOUT, (r.status, r.error)
        assert r.duration < 4, f"the job ran {r.duration:.1f} s past a 2 s limit"
        assert sb.run(Job(source="print('next')")).stdout == "next\n"


def test_host_never_waits_on_a_kill_that_cannot_finish(
    docker_ready: None, unblock: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sf_sandbox.worker

    monkeypatch.setattr(sf_sandbox.worker, "GRACE", 1.0)

    def lose_results_and_hang_kills(conn: Any, on_data: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def feed(chunk: bytes) -> None:
            if b'"op":"result"' not in chunk:
                on_data(chunk)

        return feed

    backend = FaultyBackend(lose_results_and_hang_kills)
    with Sandbox(backend=backend, pool_size=1) as sb:
        for conn in backend.conns:
            conn.kill = lambda: unblock.wait(30)  # type: ignore[method-assign]  # an engine that hangs
        t0 = time.monotonic()
        r = sb.run(Job(source="print(1)", limits=Limits(timeout=1)))
        took = time.monotonic() - t0
        assert r.status is Status.SANDBOX_ERROR and "did not answer" in (r.error or "")
        assert took < 5, f"run() waited {took:.1f} s on the kill"
    ours = {conn.container.id for conn in backend.conns}  # type: ignore[attr-defined]
    left = docker_client().containers.list(all=True, filters={"label": [f"{LABEL}=1"]})
    assert not [c.short_id for c in left if c.id in ours], "a container was left behind"


class FrameSizes:
    """Watches the byte stream from a supervisor and keeps the size of the largest frame."""

    def __init__(self) -> None:
        self.largest = 0
        self._skip = 0
        self._head = b""

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            need = 4 - len(self._head)
            self._head += bytes(view[:need])
            view = view[need:]
            if len(self._head) == 4:
                self._skip = int.from_bytes(self._head, "big")
                self.largest = max(self.largest, self._skip)
                self._head = b""


def test_large_call_and_unknown_name_flood_cannot_wedge_the_relay(docker_ready: None) -> None:
    sizes = FrameSizes()

    def watch(conn: Any, on_data: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def feed(chunk: bytes) -> None:
            sizes.feed(chunk)
            on_data(chunk)

        return feed

    backend = FaultyBackend(watch)
    with Sandbox(backend=backend, host_calls={"echo": lambda x: len(x)}, pool_size=1) as sb:
        # 12 MiB of raw UTF-8 that JSON's default encoding would triple, then a flood of calls
        # to a name the host does not have (each answered by the host's reader itself)
        src = PIPE + (
            "d = json.dumps({'name': 'echo', 'args': ['\\u00e9' * (6 << 20)]}, ensure_ascii=False).encode()\n"
            "os.write(fd, H.pack(len(d)) + d)\nwhile True:\n    send('nope', 1)\n"
        )
        t0 = time.monotonic()
        r = sb.run(Job(source=src, limits=Limits(timeout=3, host_calls=10**9)))
        assert time.monotonic() - t0 < 10
        assert r.status is Status.TIMEOUT and r.duration < 5, (r.status, r.error, r.duration)
        # the call crossed as the job's own 12 MiB, not re-encoded to 36 MiB
        assert (12 << 20) < sizes.largest < (13 << 20), sizes.largest
        assert sb.run(Job(source="print('next')")).stdout == "next\n"


def test_jobs_take_turns_for_the_shared_host_threads() -> None:
    """With every host thread busy, the next free one goes to the job that waited.

    Not to the job with the longest queue (round robin across lanes).
    """
    from sf_sandbox.hostcalls import HostCalls

    order: list[str] = []
    gate = threading.Event()
    done = threading.Semaphore(0)

    def work(tag: str) -> str:
        gate.wait(10)
        order.append(tag)
        return tag

    calls = HostCalls({"work": work}, max_workers=1)
    try:
        hog = calls.open_lane(in_flight=8, byte_budget=1 << 20)
        other = calls.open_lane(in_flight=8, byte_budget=1 << 20)
        for i in range(5):
            calls.dispatch("work", [f"hog{i}"], {}, None, lambda _r: done.release(), lane=hog)
        calls.dispatch("work", ["other"], {}, None, lambda _r: done.release(), lane=other)
        gate.set()
        for _ in range(6):
            assert done.acquire(timeout=10)
    finally:
        calls.close()
    assert order.index("other") == 1, order  # right after the call that held the thread
