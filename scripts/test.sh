#!/usr/bin/env bash
# Every test, against the real Docker engine (a missing engine fails them, never skips).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export SF_REQUIRE_DOCKER=1
exec .venv/bin/python -m pytest "$@"
