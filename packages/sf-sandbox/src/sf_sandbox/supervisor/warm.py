"""Warm imports: the modules a job usually needs, imported once before any fork (first in the payload).

Each forked job then starts warm: this is what makes a forked job ~10x cheaper than a fresh ``python3``.
"""

WARM_MODULES = (
    "asyncio",
    "concurrent.futures",
    "subprocess",
    "re",
    "math",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "random",
    "typing",
    "dataclasses",
    "decimal",
    "fractions",
    "statistics",
    "hashlib",
    "zipimport",
    "importlib.util",
    "copy",
    "inspect",
)
for _name in WARM_MODULES:
    try:
        __import__(_name)
    except Exception:  # an image without one of them still works
        pass
