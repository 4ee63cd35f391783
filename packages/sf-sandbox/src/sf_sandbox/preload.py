"""Trusted code that every job of a pool starts with already imported.

A :class:`Preload` is part of a pool's configuration, never of a job: at container start the
supervisor writes its files into the container's helper directory (``/sf``: root-owned, read-only
to jobs, never wiped), puts the named files on ``sys.path`` and imports the named modules before
it forks the zygote that forks every job. Each job is a fresh fork, so it starts with those
modules loaded (no transfer, no unpacking, no import) and whatever a job changes in them dies
with its process. Use it for a runtime the host ships with every job (sf-workflows' operator
package is one); the code runs as the supervisor while it imports, so only preload code you
trust.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sf_sandbox.errors import SandboxConfigError

__all__ = ["MAX_PRELOAD_BYTES", "Preload"]

MAX_PRELOAD_BYTES = 768 * 1024
"""Total size of a preload's files (the helper directory is a 1 MiB tmpfs)."""

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Preload:
    """Files written into each container's helper directory, and modules imported from them.

    Attributes:
        files: File name (no directories) → content.
        path: Names among ``files`` to put on ``sys.path`` (e.g. a zip of a package), in order.
        modules: Modules the supervisor imports before forking jobs (stdlib or from ``path``).

    Raises:
        SandboxConfigError: a bad file or module name, a path entry that is not a file, or more
            than :data:`MAX_PRELOAD_BYTES` of files.
    """

    files: Mapping[str, bytes] = field(default_factory=dict[str, bytes])
    path: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        files = dict(self.files)
        # the annotations bind type-checked callers only: check what the others pass
        for name, data in files.items():
            if (
                not isinstance(name, str)  # pyright: ignore[reportUnnecessaryIsInstance]
                or not _NAME.match(name)
                or name.startswith("sf_host")
            ):
                raise SandboxConfigError(f"preload file name {name!r}: use a plain file name (no '/')")
            if not isinstance(data, bytes | bytearray):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise SandboxConfigError(f"preload file {name!r}: content must be bytes")
        size = sum(len(d) for d in files.values())
        if size > MAX_PRELOAD_BYTES:
            raise SandboxConfigError(f"preload files are {size} bytes; the limit is {MAX_PRELOAD_BYTES}")
        for entry in self.path:
            if entry not in files:
                raise SandboxConfigError(f"preload path entry {entry!r} is not one of its files")
        for module in self.modules:
            if not isinstance(module, str) or not _MODULE.match(module):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise SandboxConfigError(f"preload module {module!r} is not a dotted module name")
        object.__setattr__(self, "files", {k: bytes(v) for k, v in files.items()})  # a copy (picklable)
        object.__setattr__(self, "path", tuple(self.path))
        object.__setattr__(self, "modules", tuple(self.modules))

    def to_config(self) -> dict[str, object]:
        """The supervisor's ``preload`` config entry (file contents base64)."""
        return {
            "files": {name: base64.b64encode(data).decode("ascii") for name, data in self.files.items()},
            "path": list(self.path),
            "modules": list(self.modules),
        }
