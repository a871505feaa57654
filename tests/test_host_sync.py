"""No host work inside a step (DESIGN.md): a training step (forward, loss, backward) and an
eval forward (full-sort scores) on the "triton" backend make no host synchronisation
(``aten._local_scalar_dense`` for ``.item()``/``int(t)``, nonzero, boolean indexing, ...)
and build no tensor from Python data (on a GPU, a host-to-device copy per call).

The audit is a TorchDispatchMode (benchmarks/count_launches.py) that sees every aten op of
the step outside the Triton kernels. On a CPU the kernels run in Triton's interpreter: the
published settings' shapes are audited with the launches recorded but not run (the host
code reads no kernel output: a read would be the very sync this looks for), and small
models of the same structure (several heads with seq_len < hidden; one head with
seq_len > hidden) are audited with every kernel run. The first call of a shape is the
warm-up, which may create cached constants (DFT bases); the audited call is the second.
"""

import pytest
import torch

from asrec.bench.settings import SETTINGS
from benchmarks.count_launches import MODES, count, model_and_batch

pytest.importorskip("triton", reason="the triton backend needs triton")

SMALL = {  # the published settings' structure at interpreter-friendly sizes
    "ml-100k-like": dict(n_items=30, max_seq_length=12, hidden_size=32, inner_size=32, n_heads=4, n_layers=2),
    "ml-1m-like": dict(n_items=30, max_seq_length=24, hidden_size=8, inner_size=8, n_heads=1, n_layers=2),
}


def _audit(config: dict, mode: str, execute: bool):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, items, lengths, targets = model_and_batch(config, 2, device)
    return count(MODES[mode], model, items, lengths, targets, "triton", execute)


def _assert_no_host_work(triton_launches, audit):
    assert sum(triton_launches.launches.values()) > 0, "the triton backend launched no kernel"
    assert not audit.syncs, f"host synchronisations inside the step: {dict(audit.syncs)}"
    assert not audit.host_data, f"tensors built from Python data inside the step: {dict(audit.host_data)}"


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("setting", list(SMALL))
def test_small_models_run_a_step_without_host_work(setting, mode):
    _assert_no_host_work(*_audit(SMALL[setting], mode, execute=True))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_published_settings_run_a_step_without_host_work(setting, mode):
    execute = torch.cuda.is_available()  # the interpreter would take minutes at these shapes
    _assert_no_host_work(*_audit(dict(SETTINGS[setting], n_items=100), mode, execute))


def test_the_audit_sees_a_host_sync():
    """The audit itself: an .item() and a boolean index inside the step are caught."""
    from benchmarks.count_launches import HostAudit

    x = torch.randn(8)
    with HostAudit() as audit:
        x.sum().item()
        x[x > 0].sum()
        torch.tensor([1.0, 2.0])
    assert audit.syncs["aten._local_scalar_dense.default"] == 1
    assert sum(audit.syncs.values()) >= 2
    assert sum(audit.host_data.values()) == 1

