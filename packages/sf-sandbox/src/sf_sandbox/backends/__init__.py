"""Where containers (or, unsafely, processes) for the supervisor come from.

``base.py`` is the interface, ``docker.py`` and ``local_unsafe.py`` the two built-in backends,
``registry.py`` the name → factory table that settings and ``--sandbox-backend`` use
(``sf_sandbox.sandbox.make_backend`` builds a backend through it).
"""

from sf_sandbox.backends.registry import backend_names, get_backend, register_backend

__all__ = ["backend_names", "get_backend", "register_backend"]
