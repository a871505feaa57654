"""Every Triton kernel launch of the model and the standalone ops, at the published shapes and
both float32 matmul precisions, compiles for sm_90 (H100/H200) and sm_80 (A100) as Triton's JIT
compiles it on a GPU (its specialisation: integers equal to 1 as constants, divisibility by 16
of integers and pointers), with the project's Triton (3.9) and with the GPU image's (3.6), fits
its shared memory, spills at most 1 KB of registers per thread and forms no 32-bit product of
size arguments: checked ahead of time on the CPU.

The interpreter tests check the kernels' arithmetic but run none of Triton's compiler: a
global that is not a ``tl.constexpr``, a dot shape the GPU cannot take, or a software
pipeline whose buffers exceed a block's shared memory all pass there and fail on the first
GPU launch. This test records the launches once (interpreter, kernels skipped) and compiles
each with Triton's own compiler and ptxas for real targets (minutes on 2 cores per Triton
version; no GPU needed); it prints every launch's shared memory, registers and spill bytes.
See ``tests/triton_aot``.

Triton 3.6 runs from its own interpreter, named by ``ASREC_TRITON36_PYTHON`` (a venv with
torch and triton==3.6.0; .ci/run makes one). Without it the 3.6 case is skipped, except in CI
(``CI`` set), where it fails: the GPU image's compiler is never silently left out there.
"""

import json
import os
import subprocess
import sys

import pytest

triton = pytest.importorskip("triton")

from tests.triton_aot.compile_for_gpu import i32_size_products  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRITON36_VARIABLE = "ASREC_TRITON36_PYTHON"


def _ptxas_present() -> bool:
    return os.path.exists(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The recorded launches: (path of the JSON lines, the launches)."""
    # in a fresh process: this one imported Triton in interpreter mode (conftest), and its
    # kernels are interpreter objects, which Triton's compiler does not take
    done = subprocess.run([sys.executable, "-m", "tests.triton_aot.record_launches"], cwd=ROOT,
                          env=dict(os.environ, TRITON_INTERPRET="1"), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    path = tmp_path_factory.mktemp("aot") / "launches.jsonl"
    path.write_text(done.stdout)
    return path, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_the_recording_covers_every_kernel_family_with_the_jit_specialisation(recorded):
    _, launches = recorded
    kernels = {launch["kernel"] for launch in launches}
    # both precisions: the GEMM-like kernels are recorded with IEEE and with TF32 products
    precisions = {launch["constexprs"].get("DOT_PRECISION") for launch in launches}
    assert {"ieee", "tf32"} <= precisions, precisions
    # every kernel family of the model is in the recording (a launch path that stopped being
    # exercised would silently drop out of this check)
    for family in ("_input_stage_", "_fourier_smoothing_", "_frequency_filter_", "_frequency_energy_",
                   "_frequency_keep_mask_", "_attention_fwd_", "_attention_bwd_", "_multiscale_conv_",
                   "_contrast_gelu_", "_residual_norm_", "_cross_entropy_", "_lce_", "_ranks_", "_top_candidates_", "_take_rows_"):
        assert any(family in name for name in kernels), family
    # the JIT's specialisation is recorded: divisible integers and aligned pointers carry "D",
    # others "", and an integer argument equal to 1 (ml-1m's one head) is a constant
    attributes = [(launch["signature"][name], spec) for launch in launches for name, spec in launch["attrs"].items()]
    assert ("*fp32", "D") in attributes and ("i32", "D") in attributes and ("i32", "") in attributes
    attention = [launch for launch in launches if launch["kernel"] == "_attention_fwd_kernel"]
    assert any(launch["signature"]["heads"] == "constexpr" and launch["constexprs"]["heads"] == 1
               for launch in attention)
    assert any(launch["signature"]["heads"] == "i32" for launch in attention)


def _compiler(version: str) -> str:
    if version == "installed":
        if not _ptxas_present():
            pytest.skip("this Triton build has no NVIDIA backend (ptxas)")
        return sys.executable
    python = os.environ.get(TRITON36_VARIABLE)
    if not python:
        message = (f"{TRITON36_VARIABLE} is not set: name a Python with torch and triton==3.6.0 (e.g. "
                   "python3 -m venv /tmp/t36 && /tmp/t36/bin/pip install torch==2.13.0 triton==3.6.0)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    found = subprocess.run([python, "-c", "import triton; print(triton.__version__)"], capture_output=True,
                           text=True, cwd="/")
    assert found.returncode == 0 and found.stdout.strip().startswith("3.6."), \
        f"{TRITON36_VARIABLE}={python}: expected Triton 3.6.x, got {found.stdout.strip() or found.stderr[-500:]}"
    return python


@pytest.mark.parametrize("version", ["installed", "3.6"])
def test_every_launch_compiles_for_sm90_and_sm80_within_shared_memory_and_spill_limits(request, version, tmp_path):
    python = _compiler(version)  # first: a missing compiler skips (or fails, in CI) before minutes of recording
    path, launches = request.getfixturevalue("recorded")
    compile_env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    figures = tmp_path / "figures.json"
    compiled = subprocess.run([python, "-m", "tests.triton_aot.compile_for_gpu", str(path), "--arch", "90,80",
                               "--jobs", "2", "--json", str(figures)],
                              cwd=ROOT, env=compile_env, capture_output=True, text=True, timeout=3600)
    print(compiled.stdout)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    reports = [line for line in compiled.stdout.splitlines() if line.startswith("sm_")]
    assert len(reports) == 2 * len(launches)
    assert all(" registers " in line and " spills " in line for line in reports)
    results = json.loads(figures.read_text())
    assert len(results) == 2 * len(launches)
    if version == "3.6":  # compiled by the GPU image's Triton, not the one importable here
        assert all(r["triton"].startswith("3.6.") for r in results), {r["triton"] for r in results}


TTIR = """
  tt.func public @k(%x_ptr: !tt.ptr<f32> {tt.divisibility = 16 : i32} loc("x_ptr"(#loc)), %batch: i32 loc("batch"(#loc)),
                    %seq_len: i32 {tt.divisibility = 16 : i32} loc("seq_len"(#loc)), %hidden: i32 loc("hidden"(#loc))) attributes {noinline = false} {
    %plane = arith.muli %batch, %seq_len : i32 loc(#loc1)
    %plane_2 = arith.muli %plane, %hidden : i32 loc(#loc1)
    %wide = arith.muli %seq_11, %hidden : i64 loc(#loc2)
    %part = arith.muli %seq_len, %c3_i32 : i32 loc(#loc3)
    %pid = arith.muli %program, %hidden : i32 loc(#loc4)
"""


def test_int32_products_of_size_arguments_are_found_in_ttir():
    # batch * seq_len * hidden in i32 is found (both steps); i64 products, products with a
    # constant or with a program id are not
    assert i32_size_products(TTIR) == ["plane = batch * seq_len", "plane_2 = plane * hidden"]
