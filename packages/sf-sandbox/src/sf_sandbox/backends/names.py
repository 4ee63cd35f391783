"""The names of the built-in backends (a leaf module: the registry and the backends both use them)."""

from __future__ import annotations

__all__ = ["DOCKER", "UNSAFE_BACKEND_NAME"]

DOCKER = "docker"
"""The hardened containers (the default)."""
UNSAFE_BACKEND_NAME = "local-unsafe-no-isolation"
"""The backend with no isolation at all (spelled out, so nobody picks it by accident)."""
