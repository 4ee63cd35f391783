#!/usr/bin/env bash
# The main job on its embedded default, no API key: set up (idempotent), then score the canonical
# reference answers of all six benchmarks (AFlow's test splits, bundled) through the real sandbox,
# ending with the summary table. Results: runs/bench/canonical-test/*.jsonl (a rerun resumes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/sf bench run humaneval mbpp gsm8k math drop hotpotqa --solver canonical "$@"
