#!/usr/bin/env bash
# Create .venv (if needed) and install expert-cli with every extra. Idempotent: re-running is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
# torch before anything else: on CPU-only machines the pinned build avoids GBs of CUDA wheels.
# Set EXPERT_TORCH_SPEC=torch (or a CUDA index) on GPU machines.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "installing ${EXPERT_TORCH_SPEC:-torch==2.13.0} ..." >&2
  .venv/bin/python -m pip install --quiet "${EXPERT_TORCH_SPEC:-torch==2.13.0}"
fi
echo "installing expert-cli[train,chat,serve,gateway,ray,eval,generate,dev] ..." >&2
# constraints.txt pins what CI tested together (EXPERT_NO_CONSTRAINTS=1 takes the newest the ranges allow)
constraints=(-c constraints.txt)
[ "${EXPERT_NO_CONSTRAINTS:-}" = 1 ] && constraints=()
.venv/bin/python -m pip install --quiet -e ".[train,chat,serve,gateway,ray,eval,generate,dev]" "${constraints[@]}"
