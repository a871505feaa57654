"""Triton input stage (gather + LayerNorm + dropout + smoothing) against the reference."""


import pytest
import torch

from ..input_stage_support import input_tables, padded_ids, run_input_stage
from ..triton_support import DEVICE, assert_low_precision_close

EPS = 1e-12


def _tables(n_items, seq_len, hidden, dtype=torch.float32):
    return input_tables(n_items, seq_len, hidden, DEVICE, dtype)


def _padded_ids(batch, seq_len, n_items):
    return padded_ids(batch, seq_len, n_items, DEVICE)


def _run(backend, ids, tables, mix, grad, dropout_p=0.0, training=False):
    return run_input_stage(backend, ids, tables, mix, grad, EPS, dropout_p, training)


NAMES = ("out", "item_weight", "position_weight", "norm_weight", "norm_bias", "smoothing_logit", "init_level",
         "smoothed_scale")


@pytest.mark.parametrize("seq_len", [1, 7, 12, 50])
@pytest.mark.parametrize("hidden", [8, 24, 64])
@pytest.mark.parametrize("mix", [1.0, 0.4])
def test_forward_and_gradients_match_reference(seq_len, hidden, mix):
    ids = _padded_ids(4, seq_len, 30)
    tables = _tables(30, seq_len, hidden)
    grad = torch.randn(4, seq_len, hidden, device=DEVICE)
    ours = _run("triton", ids, tables, mix, grad)
    for name, a, b in zip(NAMES, ours, _run("reference", ids, tables, mix, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    assert ours[1][0].abs().max() == 0, "the padding item's row must get no gradient"


@pytest.mark.parametrize("seq_len", [17, 50])
def test_scans_carry_across_row_blocks(monkeypatch, seq_len):
    """Sequences longer than one block of rows (16 here): the smoothing's forward and reverse
    scans carry from block to block, the last block partly past the end."""
    from asrec.kernels import fourier_smoothing, input_stage

    monkeypatch.setattr(fourier_smoothing, "ROW_TILE", 256)
    assert input_stage.input_blocks(seq_len, 24)["BLOCK_R"] == 16
    ids = _padded_ids(3, seq_len, 30)
    tables = _tables(30, seq_len, 24)
    grad = torch.randn(3, seq_len, 24, device=DEVICE)
    ours = _run("triton", ids, tables, 0.4, grad)
    for name, a, b in zip(NAMES, ours, _run("reference", ids, tables, 0.4, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_dropout_forward_and_backward_use_one_mask(monkeypatch):
    """With p > 0: the reference computed on the kernels' own dropout factors gives the same
    output and gradients (the mask is regenerated in backward, not stored)."""
    from asrec.reference import fourier_smoothing_ref

    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 77)
    ids = _padded_ids(3, 12, 20)
    tables = _tables(20, 12, 24)
    grad = torch.randn(3, 12, 24, device=DEVICE)
    ours = _run("triton", ids, tables, 0.4, grad, dropout_p=0.3, training=True)
    factors = kernel_dropout_factors(ids.numel() * 24, 77, 0.3, DEVICE).view(3, 12, 24)
    t = tables
    embedded = torch.nn.functional.embedding(ids, t["item_weight"], padding_idx=0) + t["position_weight"]
    normed = torch.nn.functional.layer_norm(embedded, (24,), t["norm_weight"], t["norm_bias"], EPS)
    out = fourier_smoothing_ref(normed * factors, t["smoothing_logit"], t["init_level"], t["smoothed_scale"], 0.4)
    expected = (out, *torch.autograd.grad(out, list(tables.values()), grad))
    for name, a, b in zip(NAMES, ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_dropout_mask_rate_scale_and_seed():
    from ..triton_support import kernel_dropout_factors

    factors = kernel_dropout_factors(200_000, 5, 0.3, DEVICE)
    values = torch.unique(factors)
    assert values.tolist() == [0.0, pytest.approx(1 / 0.7)]
    kept = (factors > 0).double().mean().item()
    assert abs(kept - 0.7) < 4 * (0.7 * 0.3 / 200_000) ** 0.5
    assert torch.equal(factors, kernel_dropout_factors(200_000, 5, 0.3, DEVICE))
    assert not torch.equal(factors, kernel_dropout_factors(200_000, 6, 0.3, DEVICE))


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden", [(50, 256), (200, 64)])
def test_published_shapes_on_gpu(seq_len, hidden):
    ids = _padded_ids(256, seq_len, 5000)
    tables = _tables(5000, seq_len, hidden)
    grad = torch.randn(256, seq_len, hidden, device=DEVICE)
    ours = _run("triton", ids, tables, 0.4, grad)
    exact = _run("reference", ids, {k: v.detach().double().requires_grad_() for k, v in tables.items()}, 0.4,
                 grad.double())
    low = _run("reference", ids, tables, 0.4, grad)
    for a, b, c in zip(ours, exact, low):
        assert_low_precision_close(a, b, c)


def test_unused_position_rows_get_zero_gradient_and_batches_span_finish_blocks():
    """More position rows than seq_len (the unused rows' gradient is zero, written by the finish
    kernel) and a batch over one block of the finish kernel's batch sums (32 rows)."""
    ids = _padded_ids(37, 7, 30)
    tables = input_tables(30, 7, 24, DEVICE, position_rows=12)
    grad = torch.randn(37, 7, 24, device=DEVICE)
    ours = _run("triton", ids, tables, 0.4, grad)
    for name, a, b in zip(NAMES, ours, _run("reference", ids, tables, 0.4, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    assert ours[2][7:].abs().max() == 0


@pytest.mark.parametrize("batch,seq_len,hidden,n_positions", [(1, 1, 8, 1), (37, 5, 200, 9), (32, 3, 128, 3)])
def test_finish_kernel_matches_torch_and_is_deterministic(batch, seq_len, hidden, n_positions):
    """The finish launch against the torch ops it replaces (the CUDA backend's ``cuda_input_stage_finish``):
    parameter sums over the batch, the logit's chain rule, the position table's gradient;
    hidden > 128 walks the parameter columns in blocks. Two runs agree bit for bit."""
    from asrec.kernels.input_stage import _input_stage_finish
    from asrec.ops.input_stage import cuda_input_stage_finish

    dembedded = torch.randn(batch, seq_len, hidden, device=DEVICE)
    parts = torch.randn(5, batch, hidden, device=DEVICE)
    logit = torch.tensor([0.7], device=DEVICE)
    ours = _input_stage_finish(dembedded, parts, logit, n_positions)
    for name, a, b in zip(("logit", "sums", "position"), ours, cuda_input_stage_finish(dembedded, parts, logit, n_positions)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    for a, b in zip(ours, _input_stage_finish(dembedded, parts, logit, n_positions)):
        assert torch.equal(a, b)


def test_backward_is_two_triton_launches_and_the_embedding_backward():
    """The backward's device kernels: the Triton backward and finish launches, and torch's
    (deterministic) embedding backward for the item table; nothing else."""
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("count_launches", os.path.join(root, "benchmarks",
                                                                                 "count_launches.py"))
    counter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(counter)
    import asrec
    from asrec.ops import input_stage

    ids = _padded_ids(3, 7, 30)
    t = _tables(30, 7, 24)
    with asrec.use_backend("triton"):
        out = input_stage(ids, t["item_weight"], t["position_weight"], t["norm_weight"], t["norm_bias"], EPS, 0.0,
                          True, t["smoothing_logit"], t["init_level"], t["smoothed_scale"], 0.4)
    grad = torch.randn_like(out)
    audit = counter.HostAudit()
    with counter.TritonLaunchCounter(audit, execute=False) as launches, audit:
        torch.autograd.grad(out, list(t.values()), grad)
    assert dict(launches.launches) == {"_input_stage_bwd_kernel": 1, "_input_stage_finish_kernel": 1}
    assert dict(audit.kernels) == {"aten.embedding_dense_backward.default": 1}


def _run_with_residual(backend, ids, tables, grads, dropout_p=0.0, training=False):
    """The private ``_input_stage(..., with_residual=True)`` (the model's path): both handles' values, then every table's gradient
    for grads = (the first handle's gradient or None, the residual's or None)."""
    import asrec
    from asrec.ops.input_stage import _input_stage

    t = tables
    with asrec.use_backend(backend):
        torch.manual_seed(3)
        out, residual = _input_stage(ids, t["item_weight"], t["position_weight"], t["norm_weight"], t["norm_bias"],
                                     EPS, dropout_p, training, t["smoothing_logit"], t["init_level"],
                                     t["smoothed_scale"], 0.4, with_residual=True)
    used = [(o, g) for o, g in zip((out, residual), grads) if g is not None]
    total = sum((o * g).sum() for o, g in used)
    return (out, residual, *torch.autograd.grad(total, list(tables.values())))


@pytest.mark.parametrize("which", ["both", "first", "residual"])
@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
def test_residual_handle_gradients_are_added_in_the_kernel(which, dropout_p):
    """_input_stage(with_residual=True): the two handles hold the same values and the tables' gradients are those of
    the sum of both handles' gradients (the backward kernel adds them as it reads them; one
    handle's gradient may be missing)."""
    ids = _padded_ids(3, 12, 30)
    tables = _tables(30, 12, 24)
    g1, g2 = torch.randn(2, 3, 12, 24, device=DEVICE)
    grads = {"both": (g1, g2), "first": (g1, None), "residual": (None, g2)}[which]
    ours = _run_with_residual("triton", ids, tables, grads, dropout_p, training=True)
    assert torch.equal(ours[0], ours[1])
    assert ours[1]._base is ours[0]  # a view: one buffer, one output of the op
    summed = sum(g for g in grads if g is not None)
    for name, a, b in zip(NAMES[1:], ours[2:], _run_with_residual("triton", ids, tables, (summed, None), dropout_p,
                                                                  training=True)[2:]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)
    if dropout_p == 0.0:
        reference = _run_with_residual("reference", ids, tables, grads)
        for name, a, b in zip(("out", "residual") + NAMES[1:], ours, reference):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
