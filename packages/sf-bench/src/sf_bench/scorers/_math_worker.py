"""Helper process for :mod:`sf_bench.scorers._symbolic`: math-verify checks over JSON lines.

Protocol: the process writes ``{"ready": true}`` once math-verify is imported, then for each
request line ``{"gold": str, "pred": str, "boxed": bool, "timeout": int}`` writes one reply line
``{"equivalent": bool}``. It runs checks in its main thread, so math-verify's ``signal.alarm``
timeouts work. Anything the libraries print goes to stderr; the protocol has its own descriptor.
It exits when stdin closes.
"""

from __future__ import annotations

import json
import os
import sys


def _check(request: dict[str, object]) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold = str(request["gold"])
    pred = str(request["pred"])
    timeout = int(request.get("timeout") or 3)  # type: ignore[call-overload]
    gold_parsed = parse(
        "\\boxed{" + gold + "}", extraction_config=[LatexExtractionConfig()], parsing_timeout=timeout
    )
    if request.get("boxed"):
        pred_parsed = parse(
            "\\boxed{" + pred + "}", extraction_config=[LatexExtractionConfig()], parsing_timeout=timeout
        )
    else:
        pred_parsed = parse(
            pred, extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=timeout
        )
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
    import math_verify  # noqa: F401  (fail here, before "ready", if it is missing)

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
