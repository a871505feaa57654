"""asrec.memory: the parameter count is exact, the activation estimate is within a factor of 2
of a measured peak, and sizes that cannot fit are refused before any allocation."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from asrec.memory import MemoryTooLarge, check_fits, estimate_memory, parameter_count
from asrec.model import ASRecModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One step in a fresh process: the peak resident memory it adds over a warmed-up model
# (a first step on 2 sequences allocates the gradients, Adam state and library workspaces).
MEASURE = """
import gc, json, sys, torch
torch.set_num_threads(1)
from asrec.model import ASRecModel
cfg = json.loads(sys.argv[1]); mode = sys.argv[2]; batch = cfg.pop("batch")
torch.manual_seed(0)
model = ASRecModel(check_values=False, **cfg)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
seq = torch.randint(1, cfg["n_items"], (batch, cfg["max_seq_length"]))
length = torch.full((batch,), cfg["max_seq_length"]); target = torch.randint(1, cfg["n_items"], (batch,))
def step(b):
    if mode == "train":
        model.train(); optimizer.zero_grad(set_to_none=True)
        model.loss(seq[:b], length[:b], target[:b]).backward(); optimizer.step()
    else:
        model.eval()
        with torch.no_grad():
            model.full_sort_scores(seq[:b], length[:b])
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
step(2); gc.collect()
# the peak from here on: reset the high-water mark (VmHWM) to the resident set now; an earlier
# peak (imports, start-up) above the step's would otherwise hide it (ru_maxrss read 0 in one CI run)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
step(batch)
print(json.dumps(status("VmHWM") - before))
"""

SETTING = dict(n_items=2000, max_seq_length=50, hidden_size=64, n_layers=2, n_heads=2, inner_size=256)


@pytest.mark.parametrize("sizes", [dict(n_items=20, max_seq_length=7, hidden_size=8, n_layers=1, n_heads=2,
                                        inner_size=12),
                                   dict(n_items=33, max_seq_length=50, hidden_size=64, n_layers=3, n_heads=4,
                                        inner_size=256),
                                   dict(n_items=5, max_seq_length=3, hidden_size=6, n_layers=2, n_heads=3,
                                        inner_size=5)])
def test_parameter_count_is_the_models(sizes):
    model = ASRecModel(**sizes)
    built = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert parameter_count(**sizes) == built


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak from Linux's /proc/self/status")
@pytest.mark.parametrize("mode,batch", [("train", 64), ("eval", 128)])
def test_estimate_is_within_a_factor_of_two_of_the_measured_peak(mode, batch):
    measured = json.loads(subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(dict(SETTING, batch=batch)), mode], cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=300, check=True).stdout)
    if mode == "train":
        estimate = estimate_memory(**SETTING, batch_size=batch)
        predicted = estimate.train_activations + estimate.gradients  # zero_grad(set_to_none) frees the gradients
    else:
        predicted = estimate_memory(**SETTING, eval_batch_size=batch, training=False).eval_activations
    assert measured > 20 * 2**20  # the step dominates the process's noise
    assert measured / 2 <= predicted <= 2 * measured, (predicted, measured)


@pytest.mark.parametrize("name,value", [("n_layers", 10**8), ("inner_size", 10**9), ("max_seq_length", 100_000),
                                        ("n_items", 10**12)])
def test_model_refuses_parameters_that_cannot_fit_before_allocating(name, value):
    sizes = dict(n_items=100, max_seq_length=20, hidden_size=8, n_layers=1, n_heads=2, inner_size=8)
    started = time.perf_counter()
    with pytest.raises(MemoryTooLarge, match=rf"{name}={value}.*needs about .* GiB for its parameters.*available"):
        ASRecModel(**dict(sizes, **{name: value}))
    assert time.perf_counter() - started < 5
    if name != "n_layers":  # sizes alone are not refused: meta tensors hold no memory
        ASRecModel(**dict(sizes, **{name: value}), device="meta")


def test_check_fits_names_the_setting_and_both_figures():
    with pytest.raises(MemoryTooLarge, match=r"--n-layers 9: needs about 1\.5e\+06 GiB, but cpu has .* available"):
        check_fits(int(1.5e6 * 2**30), torch.device("cpu"), "--n-layers 9")
    check_fits(1, torch.device("cpu"), "anything")


def test_model_refuses_a_non_floating_dtype_by_name():
    with pytest.raises(TypeError, match="dtype: expected a floating dtype for the parameters .* got torch.int64"):
        ASRecModel(n_items=10, max_seq_length=4, hidden_size=8, n_heads=2, inner_size=8, dtype=torch.int64)
