"""The GPU check's dry run (``benchmarks/gpu_check.sh --dry-run OUT``): the same steps as on a
GPU, on the CPU (Triton's interpreter, tiny shapes), so the script itself is tested here. Its
summary names every step with a status; the exactness step compared every Triton kernel
with the reference in the interpreter and passed (and nothing is called GPU-verified); the
CUDA-only steps say why they were skipped; a step that runs out of its slice is stopped
with SIGINT and recorded as "timed out", its partial results kept."""

import json
import os
import subprocess
import sys

import pytest

import asrec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ["environment", "build", "warmup", "exactness", "graphs", "bench", "device_time", "launches"]
STATUSES = {"passed", "failed", "skipped", "timed out"}

pytestmark = pytest.mark.slow


def _check(out, *options, **extra_env):
    env = dict(os.environ, PYTHON=sys.executable, **extra_env)
    env.pop("TRITON_INTERPRET", None)  # the dry run sets it for its own steps
    done = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--dry-run", str(out), *options],
                          capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    with open(os.path.join(out, "summary.json")) as f:
        return done, json.load(f)


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    done, summary = _check(out)
    return done, summary, out


def test_the_summary_names_every_step_with_a_status(dry_run):
    done, summary, _ = dry_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert [s["name"] for s in summary["steps"]] == STEPS
    for step in summary["steps"]:
        assert step["status"] in STATUSES, step
        assert isinstance(step["seconds"], float), step
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    assert statuses == {"environment": "passed", "build": "skipped", "warmup": "passed", "exactness": "passed",
                        "graphs": "skipped", "bench": "passed", "device_time": "skipped", "launches": "passed"}
    assert summary["mode"] == "dry run (CPU)" and summary["torch"] == __import__("torch").__version__


def test_the_cuda_only_steps_say_why_they_were_skipped(dry_run):
    _, summary, out = dry_run
    for step in summary["steps"]:
        if step["status"] == "skipped":
            assert "CUDA" in step["reason"] or "CPU" in step["reason"], step
    with open(os.path.join(out, "build.log")) as f:
        assert "setup.py build_ext --inplace" in f.read()  # the command a GPU run would use


def test_exactness_compared_every_triton_kernel_in_the_interpreter_and_passed(dry_run):
    _, summary, out = dry_run
    records = _lines(os.path.join(out, "exactness.jsonl"))
    assert records[0]["kind"] == "plan" and records[0]["interpreter"] is True
    triton_ops = [op for op, backend in records[0]["pairs"] if backend == "triton"]
    assert set(triton_ops) == {op for op in asrec.backends.registered_ops()
                               if asrec.backends.plan(op, "cuda", selection="triton").backend == "triton"}
    checked = [r for r in records if r["kind"] == "op" and r["backend"] == "triton"]
    assert {r["op"] for r in checked} == set(triton_ops)
    assert all(r["passed"] and r["calls"] >= 1 and r["checks"] >= 1 for r in checked), checked
    models = [r for r in records if r["kind"] == "model"]
    assert {(r["what"], r["shape"]) for r in models} == {(w, s) for w in ("train step", "eval forward")
                                                        for s in records[0]["shapes"]}
    assert all(r["passed"] for r in models)
    assert sorted(map(tuple, summary["exact_pairs"])) == sorted((op, "triton") for op in triton_ops)
    assert summary["gpu_verified"] == []  # an interpreter run verifies nothing on a GPU
    assert all("not run" in why for why in summary["not_verified"].values())  # the cuda pairs: no extension here


def test_the_warm_up_made_every_launch_the_exactness_suite_makes(dry_run):
    _, summary, _ = dry_run
    warmup = next(s for s in summary["steps"] if s["name"] == "warmup")
    exactness = next(s for s in summary["steps"] if s["name"] == "exactness")
    assert warmup["distinct_launches"] > 0 and warmup["units_failed"] == 0
    assert exactness["launches_made"] > 0 and exactness["launches_not_warmed"] == 0, exactness


def test_results_stay_within_eight_files(dry_run):
    _, summary, out = dry_run
    assert len(os.listdir(out)) <= 8
    assert "summary.json" in summary["files"] and "steps.log" in summary["files"]


def test_a_step_out_of_its_slice_is_timed_out_and_keeps_its_partial_results(tmp_path):
    # the step is held after its plan line (ASREC_GPU_CHECK_HOLD) until its 20 s slice runs out
    done, summary = _check(tmp_path, "--only", "exactness", "--step-seconds", "exactness=20",
                           ASREC_GPU_CHECK_HOLD="exactness")
    assert done.returncode == 1
    steps = {s["name"]: s for s in summary["steps"]}
    exactness = steps["exactness"]
    assert exactness["status"] == "timed out"
    assert "SIGINT" in exactness["reason"] and "SIGKILL" not in exactness["reason"], exactness
    assert exactness["slice_s"] == 20 and exactness["seconds"] < 20 + 10  # stopped within the grace period
    assert "records" in exactness  # the step's partial result, written on the interrupt
    assert _lines(tmp_path / "exactness.jsonl")[0]["kind"] == "plan"  # what it wrote before is kept
    assert all(s["status"] == "skipped" and "not selected" in s["reason"] for n, s in steps.items() if n != "exactness")
