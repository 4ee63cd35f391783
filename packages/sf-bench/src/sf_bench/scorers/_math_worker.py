"""Helper process for :mod:`sf_bench.scorers._symbolic`: math-verify checks over JSON lines.

Protocol: the process writes ``{"ready": true}`` once math-verify is imported, then for each
request line ``{"gold": str, "pred": str, "boxed": bool, "timeout": int}`` writes one reply line
``{"equivalent": bool}``. It runs checks in its main thread, so math-verify's ``signal.alarm``
timeouts work. Anything the libraries print goes to stderr; the protocol has its own descriptor.
It exits when stdin closes.
"""

# pyright: reportMissingTypeStubs=false
# (math-verify ships no type information; what it returns is typed where it is read)

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any, cast


def _parse(text: str, extraction_config: list[Any], timeout: int) -> list[Any]:
    """math-verify's ``parse`` of ``text``: what it extracted (sympy expressions, strings)."""
    from math_verify import parse

    return cast("list[Any]", parse(text, extraction_config=extraction_config, parsing_timeout=timeout))


def _check(request: dict[str, object]) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, verify

    gold = str(request["gold"])
    pred = str(request["pred"])
    timeout = int(request.get("timeout") or 3)  # type: ignore[call-overload]
    gold_parsed = _parse("\\boxed{" + gold + "}", [LatexExtractionConfig()], timeout)
    if request.get("boxed"):
        pred_parsed = _parse("\\boxed{" + pred + "}", [LatexExtractionConfig()], timeout)
    else:
        pred_parsed = _parse(pred, [LatexExtractionConfig(), ExprExtractionConfig()], timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def main() -> int:
    """Serve requests from stdin until it closes."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # stray prints (Python or C level) go to stderr, not into the protocol
    sys.stdout = sys.stderr
    import logging

    logging.disable(logging.WARNING)
    importlib.import_module("math_verify")  # fail here, before "ready", if it is missing

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            verdict = _check(json.loads(line))
        except Exception:  # noqa: BLE001 - any failure to parse/verify means "not shown equivalent"
            verdict = False
        out.write(json.dumps({"equivalent": verdict}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
