#!/usr/bin/env bash
# The GPU check: one command that fits one short run on a fresh GPU machine (no network).
#   bash benchmarks/gpu_check.sh OUT [--budget SECONDS]      (default 420 s; on the GPU)
#   bash benchmarks/gpu_check.sh --dry-run OUT               (the same steps on the CPU, for CI)
# Steps, in order of value, each a subprocess with its slice of the budget: environment; the
# CUDA extension built in place for this device's capability (beside it, the Triton warm-up);
# exactness of every fused op and of the model; CUDA graphs; headline bench rows; device time
# per op; launches per step. Results (at most 8 files) and summary.json land in OUT; the
# summary's "gpu_verified" lists the (op, backend) pairs shown exact on this GPU (BENCHMARKS.md:
# "How a GPU run becomes a GPU_VERIFIED entry"). Driver: benchmarks/gpu_check/driver.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m benchmarks.gpu_check "$@"
