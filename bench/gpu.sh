#!/usr/bin/env bash
# The CUDA path, run end to end on a GPU machine: fine_tune(), predict(),
# explain() and a corpus run with device = "cuda", printing the figures.
# Usage (from the package root, on a machine with an NVIDIA GPU):
#   bash bench/gpu.sh [N_IMAGES]
# It installs what is missing (make python-env), then runs bench/gpu.R.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory python-env
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
Rscript bench/gpu.R "${1:-2000}"
