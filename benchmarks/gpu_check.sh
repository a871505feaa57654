#!/usr/bin/env bash
# One GPU check, for a GPU machine with no network: install against the machine's torch,
# run the GPU-relevant tests (compiled Triton kernels, not the interpreter), run the
# benchmark without torch.compile rows, measure device time per op, print a summary.
#   bash benchmarks/gpu_check.sh OUTDIR        (about 8 minutes; each phase has its own timeout)
# A Triton kernel that passes here can be marked gpu_verified=True in asrec/ops/ (then "auto" uses it).
set -uo pipefail
out="${1:?usage: benchmarks/gpu_check.sh OUTDIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
{
  echo "commit: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | wc -l) changed files"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $python -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} 2>&1 | tee "$out/environment.txt"

timeout 120 $python -m pip install --no-build-isolation --no-deps . > "$out/install.log" 2>&1
echo "install: exit $?" | tee -a "$out/environment.txt"
timeout ${TEST_TIMEOUT:-240} $python -m pytest -q -n 8 -p no:cacheprovider \
  tests/ops tests/model/test_triton_parity.py tests/test_backends.py tests/test_gpu.py > "$out/gpu-tests.log" 2>&1
echo "gpu tests: exit $? ($(tail -n 1 "$out/gpu-tests.log"))" | tee -a "$out/environment.txt"

timeout ${BENCH_TIMEOUT:-150} $python -m asrec bench --no-compile --json "$out/bench.json" > "$out/bench.txt" 2> "$out/bench.log"
echo "bench: exit $?" | tee -a "$out/environment.txt"

timeout ${PROFILE_TIMEOUT:-90} $python benchmarks/profile_gpu_ops.py --json "$out/device-time.json" > "$out/device-time.txt" 2>&1
echo "device time: exit $?" | tee -a "$out/environment.txt"
cat "$out/bench.txt"
grep -E "passed|failed|error" "$out/gpu-tests.log" | tail -n 15
