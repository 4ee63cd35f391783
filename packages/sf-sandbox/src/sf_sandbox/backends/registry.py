"""The backend registry: a backend name (``docker``, the unsafe local one, yours) → its factory.

Every way of opening a sandbox (``Sandbox``, ``RayPool``'s nodes, the CLIs, config files) names
its backend in :class:`~sf_sandbox.settings.SandboxSettings`; :func:`sf_sandbox.sandbox.make_backend`
looks the name up here. Adding a backend is one :func:`register_backend` call (see the package README, "Add a
sandbox backend"). Factories import their backend module when called, so this module is light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sf_sandbox.backends.names import DOCKER, UNSAFE_BACKEND_NAME
from sf_sandbox.errors import SandboxConfigError

if TYPE_CHECKING:
    from sf_sandbox.backends.base import Backend

__all__ = [
    "DOCKER",
    "UNSAFE_BACKEND_NAME",
    "BackendFactory",
    "BackendSpec",
    "backend_names",
    "get_backend",
    "register_backend",
]

BackendFactory = Callable[[Any], "Backend"]
"""Builds a backend from the pool's :class:`~sf_sandbox.settings.SandboxSettings` (it reads the
fields it understands: image, runtime, …). Typed ``Any`` here so that this module does not import
the settings module, which imports it to check backend names."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendSpec:
    """One registered backend."""

    name: str
    """The name settings, ``--sandbox-backend`` and config files use."""
    factory: BackendFactory
    """Called once per pool with its :class:`~sf_sandbox.settings.SandboxSettings`."""
    runtimes: bool = False
    """Whether it honours ``settings.runtime`` (a Docker runtime such as ``runsc``); settings that
    name a runtime for a backend that does not are a :class:`~sf_sandbox.SandboxConfigError`."""
    summary: str = ""
    """A few words for error messages and ``--help``."""


_BACKENDS: dict[str, BackendSpec] = {}


def register_backend(
    name: str, factory: BackendFactory, *, runtimes: bool = False, summary: str = "", replace: bool = False
) -> BackendSpec:
    """Make ``name`` usable as ``SandboxSettings(backend=name)`` (and ``--sandbox-backend name``).

    Register before building the settings that name it (settings check the name when built).

    Raises:
        SandboxConfigError: ``name`` is empty or already registered (pass ``replace=True`` to
            swap a backend on purpose).
    """
    # callers without a type checker may pass anything
    if not isinstance(cast(object, name), str) or not name.strip() or name != name.strip():
        raise SandboxConfigError(f"backend name must be a non-empty word, got {name!r}")
    if name in _BACKENDS and not replace:
        raise SandboxConfigError(f"sandbox backend {name!r} is already registered (replace=True swaps it)")
    spec = BackendSpec(name=name, factory=factory, runtimes=runtimes, summary=summary)
    _BACKENDS[name] = spec
    return spec


def backend_names() -> tuple[str, ...]:
    """The registered backend names, ``docker`` first."""
    return tuple(_BACKENDS)


def get_backend(name: str) -> BackendSpec:
    """The registered backend called ``name``.

    Raises:
        SandboxConfigError: no backend has that name (the message lists the registered ones).
    """
    spec = _BACKENDS.get(name)
    if spec is None:
        known = ", ".join(f"{n} ({s.summary})" if s.summary else n for n, s in _BACKENDS.items())
        raise SandboxConfigError(f"unknown sandbox backend {name!r}: use one of {known}")
    return spec


def _docker(settings: Any) -> Backend:
    from sf_sandbox.backends.docker import DEFAULT_IMAGE, DockerBackend

    return DockerBackend(settings.image or DEFAULT_IMAGE, runtime=settings.runtime)


def _local_unsafe(settings: Any) -> Backend:
    from sf_sandbox.backends.local_unsafe import LocalUnsafeBackend

    return LocalUnsafeBackend()


register_backend(DOCKER, _docker, runtimes=True, summary="the hardened containers, default")
register_backend(UNSAFE_BACKEND_NAME, _local_unsafe, summary="host processes with no isolation at all")
