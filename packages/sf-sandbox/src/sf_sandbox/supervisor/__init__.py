"""Code that runs inside the sandbox (stdlib only, no sf imports), shipped as source."""

from __future__ import annotations

from importlib.resources import files

BOOTSTRAP = (
    "import os\n"
    "b=b''\n"
    "while not b.endswith(b'\\n'):\n"
    "    c=os.read(0,1)\n"
    "    if not c: raise SystemExit(0)\n"
    "    b+=c\n"
    "n=int(b);s=b''\n"
    "while len(s)<n:\n"
    "    c=os.read(0,n-len(s))\n"
    "    if not c: raise SystemExit(0)\n"
    "    s+=c\n"
    "g={'__name__':'__sf_supervisor__'}\n"
    "exec(compile(s,'sf_supervisor','exec'),g)\n"
)
"""A tiny program passed with ``python3 -c``: reads the supervisor's source from stdin and runs it."""


def supervisor_source() -> bytes:
    """The supervisor's source, as sent to the container."""
    return files(__package__).joinpath("supervisor.py").read_bytes()


def helper_sources() -> dict[str, str]:
    """Modules made importable inside every job (``sf_host``)."""
    return {"sf_host.py": files(__package__).joinpath("sf_host.py").read_text()}


def bootstrap_payload() -> bytes:
    """What the host writes to the bootstrap's stdin before the first frame."""
    src = supervisor_source()
    return str(len(src)).encode() + b"\n" + src
