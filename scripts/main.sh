#!/usr/bin/env bash
# The main job on its embedded default, no API key: set up (idempotent), then score.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/sf sandbox demo "$@"
