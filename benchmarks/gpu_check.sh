#!/usr/bin/env bash
# One GPU check, for a GPU machine with no network: build the CUDA extension in place
# against the machine's torch, run the GPU-relevant tests (compiled Triton kernels and the
# built extension, not the interpreter or the emulator), run the benchmark without
# torch.compile rows, measure device time per op, count the launches and host syncs of a
# step, print a summary.
#   bash benchmarks/gpu_check.sh OUTDIR        (about 12 minutes; each phase has its own timeout)
# A kernel that passes here joins asrec.backends.GPU_VERIFIED, naming the run (then "auto" uses it).
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

# editable: the extension is built into ./asrec, which the tests (run from here) import
ASREC_FORCE_CUDA_BUILD=1 ASREC_CUDA_ARCHS=${ASREC_CUDA_ARCHS:-90} timeout ${BUILD_TIMEOUT:-300} \
  $python -m pip install --no-build-isolation --no-deps -e . > "$out/install.log" 2>&1
echo "install + CUDA build: exit $? ($($python -c 'import asrec._C' 2>&1 && echo 'asrec._C imports'))" \
  | tee -a "$out/environment.txt"
ASREC_REQUIRE_CUDA_EXTENSION=1 timeout ${TEST_TIMEOUT:-240} $python -m pytest -q -n 8 -p no:cacheprovider \
  tests/ops tests/model/test_triton_parity.py tests/test_backends.py tests/test_gpu.py tests/test_host_sync.py \
  > "$out/gpu-tests.log" 2>&1
echo "gpu tests: exit $? ($(tail -n 1 "$out/gpu-tests.log"))" | tee -a "$out/environment.txt"
# CUDA graphs capture on the device: one process, not spread over xdist workers
timeout ${GRAPH_TIMEOUT:-180} $python -m pytest -q -p no:cacheprovider tests/test_graphs.py > "$out/graph-tests.log" 2>&1
echo "graph tests: exit $? ($(tail -n 1 "$out/graph-tests.log"))" | tee -a "$out/environment.txt"
timeout ${COUNT_TIMEOUT:-60} $python benchmarks/count_launches.py > "$out/launches.txt" 2>&1
echo "launch counts: exit $?" | tee -a "$out/environment.txt"

timeout ${BENCH_TIMEOUT:-180} $python -m asrec bench --no-compile --json "$out/bench.json" > "$out/bench.txt" 2> "$out/bench.log"
echo "bench: exit $?" | tee -a "$out/environment.txt"

timeout ${PROFILE_TIMEOUT:-90} $python benchmarks/profile_gpu_ops.py --json "$out/device-time.json" > "$out/device-time.txt" 2>&1
echo "device time: exit $?" | tee -a "$out/environment.txt"
cat "$out/bench.txt" "$out/launches.txt"
grep -E "passed|failed|error" "$out/gpu-tests.log" "$out/graph-tests.log" | tail -n 15
