"""Every Triton kernel launch of the model and the standalone ops, at the published shapes and
both float32 matmul precisions, compiles for sm_90 (H100/H200) and sm_80 (A100), fits its
shared memory and spills at most 1 KB of registers per thread: checked ahead of time on the CPU.

The interpreter tests check the kernels' arithmetic but run none of Triton's compiler: a
global that is not a ``tl.constexpr``, a dot shape the GPU cannot take, or a software
pipeline whose buffers exceed a block's shared memory all pass there and fail on the first
GPU launch. This test records the launches (interpreter, kernels skipped) and compiles each
with Triton's own compiler and ptxas for real targets (several minutes on 2 cores; no GPU
needed); it prints every launch's shared memory, registers and spill bytes. See ``tests/triton_aot``.
"""

import json
import os
import subprocess
import sys

import pytest

triton = pytest.importorskip("triton")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ptxas_present() -> bool:
    return os.path.exists(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))


@pytest.mark.skipif(not _ptxas_present(), reason="this Triton build has no NVIDIA backend (ptxas)")
def test_every_launch_compiles_for_sm90_and_sm80_within_shared_memory_and_spill_limits(tmp_path):
    # both steps in fresh processes: this one imported Triton in interpreter mode (conftest),
    # and its kernels are interpreter objects, which Triton's compiler does not take
    recorded = subprocess.run([sys.executable, "-m", "tests.triton_aot.record_launches"], cwd=ROOT,
                              env=dict(os.environ, TRITON_INTERPRET="1"), capture_output=True, text=True,
                              timeout=600)
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    launches = [json.loads(line) for line in recorded.stdout.splitlines() if line.strip()]
    kernels = {launch["kernel"] for launch in launches}
    # both precisions: the GEMM-like kernels are recorded with IEEE and with TF32 products
    precisions = {launch["constexprs"].get("DOT_PRECISION") for launch in launches}
    assert {"ieee", "tf32"} <= precisions, precisions
    # every kernel family of the model is in the recording (a launch path that stopped being
    # exercised would silently drop out of this check)
    for family in ("_input_stage_", "_fourier_smoothing_", "_frequency_filter_", "_frequency_energy_", "_frequency_keep_mask_",
                   "_attention_fwd_", "_attention_bwd_", "_multiscale_conv_", "_contrast_gelu_", "_residual_norm_",
                   "_cross_entropy_", "_take_rows_"):
        assert any(family in name for name in kernels), family
    path = tmp_path / "launches.jsonl"
    path.write_text(recorded.stdout)
    compile_env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    compiled = subprocess.run([sys.executable, "-m", "tests.triton_aot.compile_for_gpu", str(path), "--arch", "90,80"],
                              cwd=ROOT, env=compile_env, capture_output=True, text=True, timeout=2400)
    print(compiled.stdout)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    reports = [line for line in compiled.stdout.splitlines() if line.startswith("sm_")]
    assert len(reports) == 2 * len(launches)
    assert all(" registers " in line and " spills " in line for line in reports)
