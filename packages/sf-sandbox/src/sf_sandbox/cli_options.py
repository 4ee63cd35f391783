"""The click option group every command that opens a sandbox uses: flags → one `SandboxSettings`.

    @bench.command("run")
    @sandbox_options(exclude=("pool_size",))
    def run_cmd(..., sandbox: SandboxSettings) -> None:
        ...CodeScorer(settings=sandbox)...

The options come from the fields of :class:`~sf_sandbox.settings.SandboxSettings` that carry a
flag (``--sandbox-backend``, ``--image``, ``--runtime``, ``--pool-size``; a new field with a flag
appears in every command that does not exclude it) plus the :class:`~sf_sandbox.Limits` flags a
command asks for (``--timeout``, ``--memory``, ``--cpus``, ``--pids``, ``--output-bytes``).
An option left out keeps the command's ``defaults``. Invalid values are a
:class:`~sf_sandbox.SandboxConfigError` (one ``error:`` line, exit 2).

Only click and the light settings modules are imported here, so ``sf --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

from sf_sandbox.settings import SandboxSettings, settings_fields

__all__ = ["LIMIT_OPTIONS", "sandbox_options"]

F = TypeVar("F", bound=Callable[..., Any])

LIMIT_OPTIONS: dict[str, tuple[str, type, str]] = {
    "timeout": ("--timeout", float, "Wall-clock seconds."),
    "memory_mb": ("--memory", int, "Memory limit in MiB (no swap)."),
    "cpus": ("--cpus", float, "CPU share of the container (1.0 = one core)."),
    "pids": ("--pids", int, "Process/thread limit."),
    "output_bytes": ("--output-bytes", int, "Cap per stream."),
}
"""Limit field → (flag, type, help) of the limits a command may expose (``limits=``)."""


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def sandbox_options(
    *,
    exclude: Iterable[str] = (),
    limits: Iterable[str] = (),
    defaults: SandboxSettings | None = None,
    help: Mapping[str, str] | None = None,
    param: str = "sandbox",
) -> Callable[[F], F]:
    """Add the sandbox options to a click command; it receives them as one ``SandboxSettings``.

    Args:
        exclude: settings fields the command does not take (``"pool_size"``, ``"backend"``, ...).
        limits: limit fields (keys of :data:`LIMIT_OPTIONS`) the command exposes as flags.
        defaults: the command's defaults (shown in ``--help``); ``SandboxSettings()`` if None.
        help: option help text overrides, by field name (for a command-specific wording).
        param: the keyword the command gets the settings in.

    Raises:
        ValueError: an unknown field or limit name (a programming error, at import time).
    """
    base = defaults if defaults is not None else SandboxSettings()
    skip = set(exclude)
    fields = [f for f in settings_fields() if f.name not in skip]
    unknown = skip - {f.name for f in settings_fields()} | set(limits) - set(LIMIT_OPTIONS)
    if unknown:
        raise ValueError(f"sandbox_options: unknown name(s) {sorted(unknown)}")
    texts = dict(help or {})
    options: list[Callable[[Any], Any]] = []
    dests: dict[str, str] = {}  # click parameter name -> settings field ("limits.x" for limits)
    for f in fields:
        flag = f.metadata["flag"]
        value = getattr(base, f.name)
        dests[_dest(flag)] = f.name
        text = texts.get(f.name, f.metadata["help"])
        if f.name == "backend":
            from sf_sandbox.backends.registry import backend_names

            text = texts.get(
                f.name, f"Where jobs run: {' | '.join(backend_names())} (the unsafe one: NO isolation)."
            )
        options.append(
            click.option(
                flag,
                _dest(flag),
                type=f.metadata.get("type", str),
                default=value,
                show_default=value is not None,
                metavar=f.metadata.get("metavar"),
                help=text,
            )
        )
    for name in limits:
        flag, kind, text = LIMIT_OPTIONS[name]
        dests[_dest(flag)] = f"limits.{name}"
        options.append(
            click.option(
                flag,
                _dest(flag),
                type=kind,
                default=getattr(base.limits, name),
                show_default=True,
                help=texts.get(name, text),
            )
        )

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {dests[d]: kwargs.pop(d) for d in list(kwargs) if d in dests}
            kwargs[param] = settings_from_options(base, given)
            return fn(*args, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def settings_from_options(base: SandboxSettings, given: Mapping[str, Any]) -> SandboxSettings:
    """``base`` with the option values ``given`` applied.

    ``given`` maps a field name, or ``limits.NAME``, to its value; ``None`` values are options left
    unset.

    Raises:
        SandboxConfigError: a value fails validation.
    """
    fields = {k: v for k, v in given.items() if not k.startswith("limits.")}
    limit_values = {k.removeprefix("limits."): v for k, v in given.items() if k.startswith("limits.")}
    settings = base.merge(**fields)
    limit_values = {k: v for k, v in limit_values.items() if v is not None}
    if limit_values:
        settings = settings.merge(limits=dataclasses.replace(settings.limits, **limit_values))
    return settings
