#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine (root) or a prepared one (any user):
#   docker engine (installed and started if missing), debootstrap, uv, the workspace venv (.venv),
#   CPU torch for sf-train, the sandbox images (built offline, cached): the small Python one and the
#   all-languages one (bash, C, C++, Node, Go, Java, Rust), and gVisor's runsc (tests run it on an
#   engine of their own; set SF_SETUP_RUNSC_ENGINE=1 to also register it with this machine's engine).
# Sourced by scripts/main.sh and scripts/test.sh; safe to run again at any time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root for: $*"; return 1; fi; }

# 1. system packages: docker engine + debootstrap (for the offline sandbox image)
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v runsc >/dev/null 2>&1 || missing+=(runsc)  # gVisor, Debian's package (sf sandbox --runtime runsc)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. a running docker engine
if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /tmp/sf-dockerd.log)"
    as_root bash -c 'nohup setsid dockerd >/tmp/sf-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /tmp/sf-dockerd.log"; exit 1; }
fi

# 3. uv
if ! command -v uv >/dev/null 2>&1; then
  log "installing uv (pip)"
  python3 -m pip install -q uv 2>/dev/null || python3 -m pip install -q --break-system-packages uv
  export PATH="$HOME/.local/bin:$PATH"
fi

# 4. the workspace (sf-sandbox, sf-workflows, sf-bench + dev tools) from uv.lock
uv sync --frozen --inexact --quiet

# 5. sf-train: CPU torch from the local wheel when PIP_FIND_LINKS has one (no GBs of CUDA), then the package
if [ -d packages/sf-train ]; then
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    if [ -n "${PIP_FIND_LINKS:-}" ] && ls "$PIP_FIND_LINKS"/torch-2.13.0+cpu-* >/dev/null 2>&1; then
      log "installing torch 2.13.0+cpu from $PIP_FIND_LINKS"
      uv pip install --quiet --python .venv/bin/python --find-links "$PIP_FIND_LINKS" "torch==2.13.0+cpu"
    else
      log "installing torch (registry)"
      uv pip install --quiet --python .venv/bin/python "torch==2.13.0"
    fi
  fi
  uv pip install --quiet --python .venv/bin/python -e packages/sf-train
  # triton: the fast path's kernels (CUDA torch brings its own; on CPU, Triton's interpreter lets the
  # tests check the same kernels)
  .venv/bin/python -c "import triton" >/dev/null 2>&1 || \
    uv pip install --quiet --python .venv/bin/python "triton==3.6.0"
fi

# 6. the sandbox images (cached after the first build): Python only (the default), then every language
#    (about 2 minutes and 1.6 GB the first time; SF_SETUP_LANGUAGES=0 skips it, and its tests then fail)
.venv/bin/sf sandbox build-image >&2
if [ "${SF_SETUP_LANGUAGES:-1}" != 0 ]; then
  .venv/bin/sf sandbox build-image --languages all >&2
fi

# 7. opt-in: register runsc with this machine's Docker engine (needs an engine restart, so never by
#    default: on a shared machine other jobs use that engine). Idempotent: no change, no restart.
if [ "${SF_SETUP_RUNSC_ENGINE:-0}" = 1 ]; then
  if .venv/bin/python - <<'PY'
import json, sys
from sf_sandbox.gvisor import DAEMON_JSON, merged_daemon_config
current = json.loads(DAEMON_JSON.read_text()) if DAEMON_JSON.exists() else {}
wanted = merged_daemon_config(current)
if wanted == current:
    sys.exit(1)  # already registered
DAEMON_JSON.parent.mkdir(parents=True, exist_ok=True)
DAEMON_JSON.write_text(json.dumps(wanted, indent=2) + "\n")
PY
  then
    log "registered runsc in /etc/docker/daemon.json; restarting dockerd"
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
      as_root systemctl restart docker
    else
      pid=$(cat /var/run/docker.pid 2>/dev/null || true)
      if [ -n "$pid" ]; then as_root kill "$pid"; while as_root kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; fi
      as_root bash -c 'nohup setsid dockerd >/tmp/sf-dockerd.log 2>&1 &'
    fi
    for _ in $(seq 1 60); do docker info 2>/dev/null | grep -q runsc && break; sleep 1; done
  fi
fi
