"""Preload: trusted modules every job starts with, imported once per container, never writable by jobs."""

from __future__ import annotations

import io
import os
import zipfile

import docker
import pytest

from sf_sandbox import Job, Preload, Sandbox, SandboxConfigError
from sf_sandbox.preload import MAX_PRELOAD_BYTES

MODULE = b"""
import os
IMPORTED_BY = os.getpid()
CALLS = []

def call():
    CALLS.append(1)
    return len(CALLS)
"""


def zipped(name: str, source: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/__init__.py", source)
    return buf.getvalue()


@pytest.fixture(scope="module")
def preloaded(docker_ready):
    preload = Preload(files={"pre.zip": zipped("premod", MODULE)}, path=("pre.zip",), modules=("premod",))
    with Sandbox(pool_size=1, preload=preload) as sb:
        yield sb


def test_every_job_starts_with_the_module_imported_in_its_pristine_state(preloaded):
    source = "import os, premod; print(premod.call(), premod.IMPORTED_BY != os.getpid())"
    results = [preloaded.run(Job(source=source)) for _ in range(3)]
    assert [r.status for r in results] == ["ok"] * 3
    assert [r.stdout for r in results] == ["1 True\n"] * 3  # imported before the fork; no job's calls leak


def test_jobs_cannot_change_the_preloaded_files(preloaded):
    result = preloaded.run(Job(source="open('/sf/pre.zip', 'ab').write(b'x')"))
    assert result.status == "error" and "PermissionError" in result.stderr
    assert preloaded.run(Job(source="import premod; print(premod.call())")).stdout == "1\n"


def test_a_module_that_fails_to_import_refuses_the_pool_and_leaves_no_container(docker_ready):
    client = docker.from_env()
    mine = {"label": f"sf-sandbox.owner-pid={os.getpid()}"}  # others may share the engine
    before = {c.id for c in client.containers.list(all=True, filters=mine)}
    with pytest.raises(SandboxConfigError, match="preload failed: ModuleNotFoundError: .*no_such_module"):
        with Sandbox(pool_size=1, preload=Preload(modules=("no_such_module",))):
            pass
    after = {c.id for c in client.containers.list(all=True, filters=mine)}
    assert after <= before
    client.close()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(files={"a/b.py": b""}), "plain file name"),
        (dict(files={"a.zip": "text"}), "bytes"),
        (dict(files={"a.zip": b"x" * (MAX_PRELOAD_BYTES + 1)}), "limit"),
        (dict(path=("missing.zip",)), "not one of its files"),
        (dict(modules=("not a module",)), "dotted module name"),
    ],
)
def test_bad_preloads_are_config_errors(kwargs, match):
    with pytest.raises(SandboxConfigError, match=match):
        Preload(**kwargs)
