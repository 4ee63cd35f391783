"""run_many ordering and concurrency, the async API, host calls, container replacement."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sf_sandbox import Job, Limits, Sandbox, Status


def test_run_many_keeps_input_order(sandbox: Sandbox) -> None:
    # later jobs finish first; results must still come back in input order
    jobs = [
        Job(source=f"import time\ntime.sleep({0.05 * (6 - i)})\nprint({i})", id=f"j{i}") for i in range(6)
    ]
    seen: list[tuple[int, int]] = []
    results = sandbox.run_many(jobs, concurrency=2, progress=lambda d, t: seen.append((d, t)))
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]
    assert [r.id for r in results] == [f"j{i}" for i in range(6)]
    assert seen[-1] == (6, 6) and len(seen) == 6


def test_run_many_survives_bad_jobs(sandbox: Sandbox) -> None:
    jobs = [
        Job(source="print('a')"),
        Job(source="while True: pass", limits=Limits(timeout=0.5)),
        Job(argv=("missing-cmd",)),
        Job(source="print('b')"),
    ]
    results = sandbox.run_many(jobs, concurrency=2)
    assert [r.status for r in results] == [Status.OK, Status.TIMEOUT, Status.SANDBOX_ERROR, Status.OK]


def test_jobs_run_in_parallel(docker_ready: None) -> None:
    # each job waits at a barrier that only opens when both are inside a container at once
    barrier = threading.Barrier(2, timeout=20)

    def meet() -> str:
        barrier.wait()
        return "met"

    src = "from sf_host import call\nprint(call('meet'))"
    with Sandbox(host_calls={"meet": meet}, limits=Limits(timeout=30)) as sb:
        results = sb.run_many([Job(source=src), Job(source=src)], concurrency=2)
    assert [r.stdout for r in results] == ["met\n", "met\n"]


def test_async_api(sandbox: Sandbox) -> None:
    async def go() -> list[str]:
        one = await sandbox.arun(Job(source="print('x')"))
        many = await sandbox.arun_many([Job(source=f"print({i})") for i in range(5)], concurrency=2)
        return [one.stdout] + [r.stdout for r in many]

    assert asyncio.run(go()) == ["x\n"] + [f"{i}\n" for i in range(5)]


def test_host_calls_echo_raise_and_async(docker_ready: None) -> None:
    calls: list[object] = []

    def echo(*args: object, **kwargs: object) -> dict[str, object]:
        calls.append(args)
        return {"args": list(args), "kwargs": kwargs}

    def fail(msg: str) -> None:
        raise ValueError(msg)

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    src = (
        "from sf_host import call, HostCallError\n"
        "print(call('echo', 1, 'two', k=[3]))\n"
        "try:\n    call('fail', 'nope')\nexcept HostCallError as e:\n    print('raised:', e)\n"
        "try:\n    call('missing')\n"
        "except HostCallError as e:\n    print('missing:', 'unknown host function' in str(e))\n"
        "print(call('add', 2, 3))\n"
    )
    with Sandbox(host_calls={"echo": echo, "fail": fail, "add": add}) as sb:
        r = sb.run(Job(source=src))
        assert r.ok, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "{'args': [1, 'two'], 'kwargs': {'k': [3]}}"
        assert lines[1] == "raised: ValueError: nope"
        assert lines[2] == "missing: True"
        assert lines[3] == "5"
        assert calls == [(1, "two")]

        async def from_loop() -> str:  # async host functions run on the caller's loop
            return (await sb.arun(Job(source="from sf_host import call\nprint(call('add', 40, 2))"))).stdout

        assert asyncio.run(from_loop()) == "42\n"


def test_host_call_flood_is_capped(docker_ready: None) -> None:
    count = 0
    lock = threading.Lock()

    def ping() -> int:
        nonlocal count
        with lock:
            count += 1
        return count

    src = (
        "from sf_host import call, HostCallError\nn = 0\n"
        "try:\n    while True:\n        call('ping'); n += 1\n"
        "except HostCallError as e:\n    print(n, e)\n"
    )
    with Sandbox(host_calls={"ping": ping}, limits=Limits(host_calls=200, timeout=10)) as sb:
        r = sb.run(Job(source=src))
    assert r.ok and r.stdout.startswith("200 host call limit (200) reached")
    assert count == 200


def test_host_call_garbage_does_not_hurt_the_host(docker_ready: None) -> None:
    src = (
        "import os, struct\nos.write(3, struct.pack('>I', 5) + b'nojs!')\n"
        "n = struct.unpack('>I', os.read(3, 4))[0]\nprint(os.read(3, n).decode())\n"
        "os.write(3, struct.pack('>I', 1 << 30))\nprint('sent huge header')"
    )
    with Sandbox(host_calls={}) as sb:
        r = sb.run(Job(source=src))
        assert r.ok and "malformed host call" in r.stdout
        assert sb.run(Job(source="print('next')")).stdout == "next\n"


def test_tainted_container_is_replaced(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.run(Job(source="while True: pass", limits=Limits(timeout=0.5)))
    assert fresh_sandbox.replaced == 1
    assert fresh_sandbox.run(Job(source="print(1)")).ok


def test_job_limits_override(sandbox: Sandbox) -> None:
    r = sandbox.run(Job(source="print('x' * 100)", limits=Limits(output_bytes=10)))
    assert r.status is Status.OUTPUT_LIMIT and len(r.stdout_bytes) == 10


def test_closed_sandbox_reports_not_raises(docker_ready: None) -> None:
    sb = Sandbox()
    sb.start()
    sb.close()
    r = sb.run(Job(source="print(1)"))
    assert r.status is Status.SANDBOX_ERROR and "closed" in (r.error or "")


def test_unknown_backend_is_a_config_error() -> None:
    from sf_sandbox import SandboxConfigError

    with pytest.raises(SandboxConfigError, match="local-unsafe-no-isolation"):
        Sandbox(backend="local")


def test_pipelined_host_calls_are_matched_by_call_id(docker_ready: None) -> None:
    # two requests in flight at once; the slow one is answered last; call_id tells them apart
    async def slow(x: int) -> int:
        await asyncio.sleep(0.3)
        return x

    def fast(x: int) -> int:
        return x

    src = (
        "import json, os, struct\n"
        "def send(name, x, cid):\n"
        "    b = json.dumps({'name': name, 'args': [x], 'call_id': cid}).encode()\n"
        "    os.write(3, struct.pack('>I', len(b)) + b)\n"
        "def recv():\n"
        "    n = struct.unpack('>I', os.read(3, 4))[0]\n"
        "    return json.loads(os.read(3, n))\n"
        "send('slow', 1, 'a'); send('fast', 2, 'b')\n"
        "print([(r['call_id'], r['value']) for r in (recv(), recv())])\n"
    )
    with Sandbox(host_calls={"slow": slow, "fast": fast}) as sb:
        r = sb.run(Job(source=src))
    assert r.ok, r.stderr
    assert r.stdout.strip() == "[('b', 2), ('a', 1)]"
