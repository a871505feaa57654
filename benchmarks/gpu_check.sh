#!/usr/bin/env bash
# One GPU check, for a GPU machine with no network: build against the machine's torch, run
# the gpu tests, run the full benchmark into OUTDIR, print a short table last.
#   bash benchmarks/gpu_check.sh OUTDIR        (finishes within about 6 minutes)
set -uo pipefail
out="${1:?usage: benchmarks/gpu_check.sh OUTDIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
{
  echo "commit: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $python -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
} | tee "$out/environment.txt"

# no network: build and install against the machine's own torch
timeout 240 $python -m pip install --no-build-isolation --no-deps . > "$out/install.log" 2>&1
echo "install: exit $?" | tee -a "$out/environment.txt"

timeout 120 $python -m pytest -q -m gpu tests > "$out/gpu-tests.log" 2>&1
echo "gpu tests: exit $? ($(tail -n 1 "$out/gpu-tests.log"))" | tee -a "$out/environment.txt"

timeout 300 $python -m asrec bench --json "$out/bench.json" --plot "$out/bench.png" > "$out/bench.txt" 2> "$out/bench.log"
echo "bench: exit $?" | tee -a "$out/environment.txt"
cat "$out/bench.txt"
