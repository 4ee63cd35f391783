"""Whose failure is it: ours (the endpoint, the sandbox) or the system's own.

``infra_cause`` tells our failures from the system's own, structurally, so sf-bench's core needs
no sf_workflows import.
"""

from __future__ import annotations

__all__ = ["infra_cause"]


def infra_cause(exc: BaseException | None) -> str | None:
    """The cause (``endpoint``, ``sandbox``) when ``exc`` is our failure, else ``None``.

    Our failure may be ``exc`` itself or an exception in its ``__cause__`` / ``__context__`` chain;
    ``None`` means the failure is the system's own.

    Structural, so the harness needs no sf_workflows: an ``infrastructure`` attribute holding
    the cause (True means ``endpoint``), or the ``openai`` client's connection and timeout
    errors and its 429/5xx status errors (``endpoint``).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        mark = getattr(exc, "infrastructure", None)
        if mark is True:
            return "endpoint"
        if isinstance(mark, str) and mark:
            return str(mark)
        mro = type(exc).__mro__
        if any(c.__module__.split(".")[0] == "openai" for c in mro):
            status = getattr(exc, "status_code", None)
            if {c.__name__ for c in mro} & {"APIConnectionError", "APITimeoutError"} or (
                isinstance(status, int) and (status == 429 or status >= 500)
            ):
                return "endpoint"
        exc = exc.__cause__ or exc.__context__
    return None
