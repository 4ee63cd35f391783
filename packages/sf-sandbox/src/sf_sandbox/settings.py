"""`SandboxSettings`: how a pool is opened (backend, image, runtime, limits, size, preload), as one value.

Every way of opening a sandbox takes one: ``Sandbox(settings=...)`` / ``Sandbox.from_settings``,
``RayPool(settings=...)``, sf-workflows' ``open_sandbox(settings=...)``, sf-bench's
``CodeScorer(settings=...)``. Users set them through the click option group
(:func:`sf_sandbox.cli_options.sandbox_options`: ``--sandbox-backend``, ``--image``,
``--runtime``, ``--pool-size`` and the limits flags a command has) or a config section
(:meth:`SandboxSettings.from_mapping`: ``sandbox: {runtime: runsc, pool_size: 8, limits:
{timeout: 5}}``; :meth:`SandboxSettings.from_string`: ``runtime=runsc,limits.timeout=5``).

Adding a setting is one field below: give it a default (the behaviour when nobody sets it) and
``metadata=_option("--flag", "help")``. The option group, the config mapping, ``to_dict`` and
every pool that forwards its settings pick it up; only the code that *uses* the value (the pool
or the backend) is new.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, cast

from sf_sandbox._json import json_object
from sf_sandbox.errors import SandboxConfigError
from sf_sandbox.limits import Limits
from sf_sandbox.preload import Preload

__all__ = ["SandboxSettings", "settings_fields"]

_RUNTIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _option(
    flag: str, help: str, *, type: Callable[[str], Any] = str, metavar: str | None = None
) -> dict[str, Any]:
    """Field metadata: the CLI flag, its help, and how a text value (CLI, ``k=v``) is parsed."""
    return {"flag": flag, "help": help, "type": type, "metavar": metavar}


MAX_LANES = 64
"""Most jobs one container may run at once (``jobs_per_container``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxSettings:
    """How to open a sandbox pool; the defaults are ``Sandbox()``'s.

    Validation happens at construction (and on every :meth:`merge`/:meth:`from_mapping`).

    Raises:
        SandboxConfigError: an unknown backend (the message lists the registered ones), a
            runtime for a backend without runtimes, a bad image or runtime name, ``pool_size < 1``,
            ``limits`` not a :class:`~sf_sandbox.Limits` or ``preload`` not a
            :class:`~sf_sandbox.Preload`.
    """

    backend: str = field(
        default="docker",
        metadata=_option(
            "--sandbox-backend",
            "Where jobs run: docker (hardened containers) or local-unsafe-no-isolation "
            "(host processes, NO isolation).",
            metavar="NAME",
        ),
    )
    """A registered backend name (:func:`sf_sandbox.backends.registry.backend_names`)."""
    image: str | None = field(
        default=None, metadata=_option("--image", "Sandbox image (default sf-sandbox:py3).", metavar="IMAGE")
    )
    """The container image; ``None``: the backend's default (``sf-sandbox:py3`` for docker)."""
    runtime: str | None = field(
        default=None,
        metadata=_option(
            "--runtime",
            "Docker runtime: runc (the engine's default) or runsc (gVisor; see `sf sandbox doctor`).",
            metavar="runc|runsc",
        ),
    )
    """Docker runtime (``runsc`` runs every container under gVisor); ``None``: ``$SF_SANDBOX_RUNTIME``,
    else the engine's default."""
    limits: Limits = field(default_factory=Limits)
    """Limits of every job of the pool (a job's own ``Job.limits`` still apply)."""
    pool_size: int | None = field(
        default=None,
        metadata=_option("--pool-size", "Warm sandbox containers (jobs at once).", type=int, metavar="N"),
    )
    """Warm containers; ``None``: 1 for a ``Sandbox``, each node's CPU count for a ``RayPool``."""
    jobs_per_container: int = field(
        default=1,
        metadata=_option(
            "--jobs-per-container",
            "Jobs each container runs at once, each in its own uid, work dir and process group "
            "(lanes; 1-64). For I/O-bound jobs such as workflows; see sf-sandbox's README.",
            type=int,
            metavar="N",
        ),
    )
    """Concurrent jobs per container (lanes, :class:`~sf_sandbox.Sandbox`); 1: one job per container."""
    preload: Preload | None = None
    """Trusted code every job starts with imported (set in Python only, never from a config)."""

    def __post_init__(self) -> None:
        from sf_sandbox.backends.registry import get_backend

        # each value is checked as given (``object``): configs and callers without a type checker
        # may pass anything
        if not isinstance(cast(object, self.backend), str):
            raise SandboxConfigError(f"backend must be a backend name, got {type(self.backend).__name__}")
        spec = get_backend(self.backend)
        image = cast(object, self.image)
        if image is not None and (not isinstance(image, str) or not image or image.split() != [image]):
            raise SandboxConfigError(f"image must be an image name such as sf-sandbox:py3, got {image!r}")
        runtime = cast(object, self.runtime)
        if runtime is not None:
            if not isinstance(runtime, str) or not _RUNTIME.match(runtime):
                raise SandboxConfigError(
                    f"runtime must be a Docker runtime name such as runc or runsc, got {self.runtime!r}"
                )
            if not spec.runtimes:
                raise SandboxConfigError(
                    f"runtime {self.runtime!r} applies to Docker containers; the {self.backend!r} backend "
                    "has no runtimes (drop the runtime or use the docker backend)"
                )
        if not isinstance(cast(object, self.limits), Limits):
            raise SandboxConfigError(
                f"limits must be an sf_sandbox.Limits, got {type(self.limits).__name__} "
                "(SandboxSettings.from_mapping reads a mapping)"
            )
        pool_size = cast(object, self.pool_size)
        if pool_size is not None and (
            not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1
        ):
            raise SandboxConfigError(f"pool_size must be >= 1 (warm containers), got {self.pool_size!r}")
        if self.preload is not None and not isinstance(cast(object, self.preload), Preload):
            raise SandboxConfigError("preload must be an sf_sandbox.Preload")
        lanes = cast(object, self.jobs_per_container)
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= MAX_LANES:
            raise SandboxConfigError(
                f"jobs_per_container must be an integer from 1 to {MAX_LANES}, got {lanes!r}"
            )

    # ------------------------------------------------------------------ building
    @classmethod
    def given(cls, settings: SandboxSettings | None) -> SandboxSettings:
        """The ``settings=`` a pool was opened with: ``settings`` itself, or the defaults for None.

        Raises:
            SandboxConfigError: ``settings`` is something else (a caller without a type checker).
        """
        if settings is None:
            return cls()
        if not isinstance(cast(object, settings), SandboxSettings):
            raise SandboxConfigError(
                f"settings must be an sf_sandbox.SandboxSettings, got {type(settings).__name__}"
            )
        return settings

    def merge(self, **changes: Any) -> Self:
        """A copy with the ``changes`` that are not ``None`` applied (``None`` = not given).

        This is how keyword arguments and CLI options reach the settings: an option left out
        keeps this value. Keys are field names.

        Raises:
            SandboxConfigError: an unknown key, or a value that fails validation.
        """
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise SandboxConfigError(f"unknown sandbox setting(s) {', '.join(unknown)}; known: {_known()}")
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: SandboxSettings | None = None) -> Self:
        """Settings from a config section, applied over ``base`` (default: the defaults).

        Keys are the field names; ``limits`` is a mapping of :class:`~sf_sandbox.Limits` fields
        (applied over ``base.limits``), and ``limits.NAME`` keys work too. Text values are parsed
        (``"8"`` → 8, ``"none"`` → ``None``), so environment variables and ``k=v`` strings work.
        ``preload`` cannot come from a config (it is code).

        Raises:
            SandboxConfigError: not a mapping, an unknown key (with the closest known one), a
                value of the wrong kind, or settings that fail validation.
        """
        if not isinstance(cast(object, data), Mapping):
            raise SandboxConfigError(f"sandbox settings must be a mapping of setting: value, got {data!r}")
        start = base if base is not None else cls()
        values: dict[str, Any] = {}
        limit_values: dict[str, Any] = {}
        for key, value in data.items():
            key = str(key)
            if key == "limits":
                if not isinstance(value, Mapping | Limits):
                    raise SandboxConfigError(f"sandbox setting limits must be a mapping, got {value!r}")
                if isinstance(value, Limits):
                    values["limits"] = value
                else:
                    limit_values.update({str(k): v for k, v in cast("Mapping[object, Any]", value).items()})
            elif key.startswith("limits."):
                limit_values[key.removeprefix("limits.")] = value
            elif key == "preload":
                raise SandboxConfigError("preload is set in Python (sf_sandbox.Preload), not in a config")
            elif key in _FIELD_NAMES:
                values[key] = _parse(key, value, _TEXT_TYPES[key])
            else:
                raise SandboxConfigError(_unknown(key))
        if limit_values:
            limits = values.get("limits", start.limits)
            values["limits"] = _limits(limits, limit_values)
        return dataclasses.replace(start, **values)  # type: ignore[return-value]

    @classmethod
    def from_string(cls, text: str, *, base: SandboxSettings | None = None) -> Self:
        """Settings from ``"runtime=runsc,pool_size=8,limits.timeout=5"`` or a JSON object.

        Raises:
            SandboxConfigError: what :meth:`parse_text` and :meth:`from_mapping` raise.
        """
        return cls.from_mapping(cls.parse_text(text), base=base)

    @staticmethod
    def parse_text(text: str) -> dict[str, Any]:
        """The mapping ``"runtime=runsc,limits.timeout=5"`` (or a JSON object) spells, unparsed.

        Raises:
            SandboxConfigError: a part without ``=``, or bad JSON.
        """
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SandboxConfigError(f"sandbox settings {text!r}: not valid JSON ({exc.msg})") from None
            obj = json_object(data)
            if obj is None:
                raise SandboxConfigError(f"sandbox settings {text!r}: a JSON object is needed")
            return obj
        pairs: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise SandboxConfigError(
                    f"sandbox setting {part!r}: write NAME=VALUE (e.g. runtime=runsc,limits.timeout=5)"
                )
            pairs[key.strip()] = value.strip()
        return pairs

    def changes(self, base: SandboxSettings | None = None) -> dict[str, Any]:
        """The part of :meth:`to_dict` that differs from ``base`` (default: the defaults).

        Limits appear as the changed ``limits.NAME`` entries. :meth:`from_mapping` over ``base``
        reads it back.
        """
        start = (base if base is not None else SandboxSettings()).to_dict()
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if key == "limits":
                out.update({f"limits.{k}": v for k, v in value.items() if start["limits"][k] != v})
            elif start[key] != value:
                out[key] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_mapping` reads back (``preload`` left out: it is code)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "preload":
                continue
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if isinstance(value, Limits) else value
        return out


def settings_fields() -> list[dataclasses.Field[Any]]:
    """The fields of :class:`SandboxSettings` that have a CLI flag and a text form, in order."""
    return [f for f in dataclasses.fields(SandboxSettings) if f.metadata.get("flag")]


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(SandboxSettings))
_TEXT_TYPES: dict[str, Callable[[str], Any]] = {
    f.name: f.metadata.get("type", str) for f in settings_fields()
}
_LIMIT_TYPES: dict[str, type] = {f.name: type(f.default) for f in dataclasses.fields(Limits)}


def _known() -> str:
    return ", ".join(sorted(_FIELD_NAMES - {"preload"}) + [f"limits.{n}" for n in _LIMIT_TYPES])


def _unknown(key: str) -> str:
    import difflib

    names = sorted(_FIELD_NAMES - {"preload"}) + [f"limits.{n}" for n in _LIMIT_TYPES]
    close = difflib.get_close_matches(key, names, 1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown sandbox setting {key!r}{hint}; known: {', '.join(names)}"


def _parse(key: str, value: Any, kind: Callable[[str], Any]) -> Any:
    """``value`` as the field wants it: text parsed with ``kind``, ``none``/empty text as ``None``."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() in ("", "none", "null"):
        return None
    try:
        return kind(value.strip())
    except ValueError:
        what = getattr(kind, "__name__", str(kind))
        raise SandboxConfigError(f"sandbox setting {key}: {value!r} is not a {what}") from None


def _limits(base: Limits, values: Mapping[str, Any]) -> Limits:
    unknown = sorted(set(values) - set(_LIMIT_TYPES))
    if unknown:
        raise SandboxConfigError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(_LIMIT_TYPES)}")
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        kind = _LIMIT_TYPES[name]
        if isinstance(value, str):
            value = _parse(f"limits.{name}", value, kind)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SandboxConfigError(f"limit {name} must be a number, got {value!r}")
        if kind is int and value != int(value):
            raise SandboxConfigError(f"limit {name} must be a whole number, got {value!r}")
        parsed[name] = kind(value)
    return dataclasses.replace(base, **parsed)
