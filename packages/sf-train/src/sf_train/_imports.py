"""Guarded imports of optional heavy dependencies.

``is_available("vllm")`` answers without importing the module (``importlib.util.find_spec``,
cached). ``require("vllm", extra="vllm")`` imports and returns the module, or raises
:class:`~sf_train.errors.MissingDependencyError` with the install line
``pip install "sf-train[vllm]"``, chained from the original ``ImportError``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from types import ModuleType

from sf_train.errors import MissingDependencyError

__all__ = ["is_available", "require"]


@functools.cache
def is_available(module: str) -> bool:
    """Return True when ``module`` can be imported (its top-level package is found)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or explain how to install it.

    Args:
        module: Dotted module name, e.g. ``"vllm"``.
        extra: The sf-train extra that provides it (``"vllm"`` gives ``pip install "sf-train[vllm]"``);
            None when it is a plain dependency (the message then names the module itself).
        purpose: What the module is needed for, added to the message.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: the module (or one of its own dependencies) cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        install = f'pip install "sf-train[{extra}]"' if extra else f"pip install {top}"
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(f"{top} is not installed{why}: run `{install}`. ({exc})") from exc
