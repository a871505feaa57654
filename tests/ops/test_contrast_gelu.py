"""The scale combination + over-smoothing contrast + gelu on every backend: the reference
contrast against its formula (float64, gradcheck), then the Triton kernels against the reference."""

import pytest
import torch

import asrec
from asrec.ops import contrast_gelu
from asrec.reference import oversmoothing_contrast_ref

from ..oracle import contrast_oracle
from ..triton_support import DEVICE, assert_low_precision_close, past_the_contract


def test_contrast_matches_formula_including_zero_rows():
    ctx = torch.randn(3, 7, 12, dtype=torch.float64)
    ctx[0, 2] = 0.0  # the 1e-12 clamp of the L2 normalisation
    origin, contrast = torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    torch.testing.assert_close(oversmoothing_contrast_ref(ctx, origin, contrast), contrast_oracle(ctx, origin, contrast))


def test_reference_contrast_gradcheck():
    d = torch.float64
    c = torch.randn(2, 5, 6, dtype=d, requires_grad=True)
    origin, contrast = (torch.tensor(s, dtype=d, requires_grad=True) for s in (0.9, 0.3))
    assert torch.autograd.gradcheck(oversmoothing_contrast_ref, (c, origin, contrast))


# ---- the Triton backend against the reference ----


def _inputs(batch, seq_len, hidden, dtype=torch.float32, stacked_filtered=False):
    if stacked_filtered:  # the Triton filter's output: views of one (batch, 3, N, H) tensor
        base = torch.randn(batch, 3, seq_len, hidden, device=DEVICE).to(dtype).requires_grad_()
        filtered = list(base.unbind(1))
        leaves = [base]
    else:
        filtered = [torch.randn(batch, seq_len, hidden, device=DEVICE).to(dtype).requires_grad_() for _ in range(3)]
        leaves = list(filtered)
    convs = [torch.randn(batch, seq_len, hidden, device=DEVICE).to(dtype).requires_grad_() for _ in range(3)]
    scales = (torch.randn(3, seq_len, 1, device=DEVICE) * 0.5).requires_grad_()
    origin = torch.tensor([1.2], device=DEVICE, requires_grad=True)
    contrast = torch.tensor([0.7], device=DEVICE, requires_grad=True)
    return filtered, convs, scales, origin, contrast, leaves + convs + [scales, origin, contrast]


def _run(backend, inputs, grad, output_rows=None, op=contrast_gelu):
    filtered, convs, scales, origin, contrast, leaves = inputs
    with asrec.use_backend(backend):
        out = op(filtered, convs, scales, origin, contrast, output_rows)
    return (out, *torch.autograd.grad(out, leaves, grad))


@pytest.mark.parametrize("seq_len", [1, 7, 12, 50])
@pytest.mark.parametrize("hidden", [8, 24, 64])
def test_forward_and_gradients_match_reference(seq_len, hidden):
    inputs = _inputs(3, seq_len, hidden)
    grad = torch.randn(3, seq_len, hidden, device=DEVICE)
    for a, b in zip(_run("triton", inputs, grad), _run("reference", inputs, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_strided_filter_views_and_output_rows():
    inputs = _inputs(4, 12, 24, stacked_filtered=True)
    rows = torch.tensor([0, 11, 5, 3], device=DEVICE)
    grad = torch.randn(4, 1, 24, device=DEVICE)
    for a, b in zip(_run("triton", inputs, grad, rows), _run("reference", inputs, grad, rows)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_zero_rows_take_the_normalisation_floor():
    """A row of zeros (norm below 1e-12) follows F.normalize's clamp, forward and backward."""
    inputs = _inputs(2, 7, 8)
    with torch.no_grad():
        for tensor in inputs[0] + inputs[1]:
            tensor[:, 3] = 0
    grad = torch.randn(2, 7, 8, device=DEVICE)
    for a, b in zip(_run("triton", inputs, grad), _run("reference", inputs, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden", [(50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_published_shapes_on_gpu(seq_len, hidden, dtype):
    inputs = _inputs(256, seq_len, hidden, dtype)
    grad = torch.randn(256, seq_len, hidden, device=DEVICE)
    ours = _run("triton", inputs, grad)
    low = _run("reference", inputs, grad)
    filtered, convs, scales, origin, contrast, _ = inputs
    exact_leaves = [t.detach().double().requires_grad_() for t in filtered + convs + [scales, origin, contrast]]
    exact = _run("reference", (exact_leaves[:3], exact_leaves[3:6], *exact_leaves[6:], exact_leaves), grad.double())
    for a, b, c in zip(ours, exact, low):
        assert_low_precision_close(a, b, c)


@pytest.mark.parametrize("seq_len", [17, 50])
def test_walk_over_several_row_blocks(monkeypatch, seq_len):
    """Sequences longer than one block of rows (16 forward, 8 backward here): the column sums of
    the softmax over positions gather every block before any output, forward and backward, the
    last block partly past the end (a zero row included)."""
    from asrec.kernels import contrast_gelu as kernels

    monkeypatch.setattr(kernels, "ROW_TILE", 512)
    assert kernels.contrast_blocks(seq_len, 24)["BLOCK_R"] == 16
    assert kernels.contrast_blocks(seq_len, 24, backward=True)["BLOCK_R"] == 8
    inputs = _inputs(3, seq_len, 24)
    with torch.no_grad():
        for tensor in inputs[0] + inputs[1]:
            tensor[:, 16] = 0
    grad = torch.randn(3, seq_len, 24, device=DEVICE)
    for a, b in zip(_run("triton", inputs, grad), _run("reference", inputs, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_output_and_input_gradients_in_the_input_dtype(dtype):
    """The kernels store the activation and the six inputs' gradient in the inputs' dtype (no
    cast launch after them), rounded from the float32 values: within one rounding of the
    reference run in float32 on the same low-precision inputs."""
    inputs = _inputs(2, 12, 24, dtype)
    grad = torch.randn(2, 12, 24, device=DEVICE).to(dtype)
    ours = _run("triton", inputs, grad)
    filtered, convs, scales, origin, contrast, _ = inputs
    wide = [t.detach().float().requires_grad_() for t in filtered + convs]
    wide_inputs = (wide[:3], wide[3:], scales, origin, contrast, wide + [scales, origin, contrast])
    exact = _run("reference", wide_inputs, grad.float())
    for index, (a, b) in enumerate(zip(ours, exact)):
        assert a.dtype == (dtype if index < 7 else torch.float32), index
        # parameters (float32) exactly as float32 up to the low-precision grad; tensors within a rounding
        tolerance = dict(rtol=1e-2, atol=1e-2) if index < 7 else dict(rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a.float(), b, **tolerance)


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_stacked_branch_tensors_equal_the_lists(backend):
    """(3, B, N, H) tensors (the seasonal branch's, taken as they are) give the list form's output
    and gradients; each stacked input gets one gradient tensor."""
    filtered = torch.randn(3, 4, 12, 24, device=DEVICE, requires_grad=True)
    convs = torch.randn(3, 4, 12, 24, device=DEVICE, requires_grad=True)
    scales = (torch.randn(3, 12, 1, device=DEVICE) * 0.5).requires_grad_()
    origin = torch.tensor([1.2], device=DEVICE, requires_grad=True)
    contrast = torch.tensor([0.7], device=DEVICE, requires_grad=True)
    leaves = (filtered, convs, scales, origin, contrast)
    grad = torch.randn(4, 1, 24, device=DEVICE)
    rows = torch.tensor([0, 11, 5, 3], device=DEVICE)
    with asrec.use_backend(backend):
        stacked = contrast_gelu(filtered, convs, scales, origin, contrast, rows)
        listed = contrast_gelu(list(filtered.unbind(0)), list(convs.unbind(0)), scales, origin, contrast, rows)
    torch.testing.assert_close(stacked, listed, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(torch.autograd.grad(stacked, leaves, grad), torch.autograd.grad(listed, leaves, grad),
                               rtol=1e-6, atol=1e-6)


def test_a_stacked_tensor_of_the_wrong_shape_is_named():
    x = torch.zeros(3, 2, 5, 8)
    with pytest.raises(ValueError, match=r"contrast_gelu: conv_outputs must be three \(batch, seq_len, hidden\) "
                                         r"tensors or one \(3, batch, seq_len, hidden\) tensor, got shape \(2, 5, 8\)"):
        contrast_gelu(x, x[0], torch.ones(3, 5, 1), torch.tensor([1.0]), torch.tensor([0.6]))


@pytest.mark.parametrize("with_rows", [False, True])
def test_filter_passthrough_feeds_the_contrast(with_rows):
    """The seasonal branch's pair: the convolutions' (3, B, N, H) output goes through
    the private _frequency_filter_groups(..., with_input=True), and the contrast reads the filtered tensor
    and the filter's passthrough; on Triton the filter's backward kernel adds the contrast's
    gradient of the convolutions' output. Values and every gradient as the reference's."""
    from asrec.ops.frequency_filter_groups import _frequency_filter_groups

    from ..triton_support import kernel_keep

    convs = torch.randn(3, 4, 12, 24, device=DEVICE, requires_grad=True)
    norm_weight = (1 + 0.1 * torch.randn(24, device=DEVICE)).requires_grad_()
    norm_bias = (0.1 * torch.randn(24, device=DEVICE)).requires_grad_()
    scales = (torch.randn(3, 12, 1, device=DEVICE) * 0.5).requires_grad_()
    origin = torch.tensor([1.2], device=DEVICE, requires_grad=True)
    contrast = torch.tensor([0.7], device=DEVICE, requires_grad=True)
    threshold = torch.tensor(0.8, device=DEVICE)
    leaves = (convs, norm_weight, norm_bias, scales, origin, contrast)
    rows = torch.tensor([0, 11, 5, 3], device=DEVICE) if with_rows else None
    grad = torch.randn(4, 1 if with_rows else 12, 24, device=DEVICE)
    # the comparison needs one keep-mask on both backends (a hard threshold: DESIGN.md)
    by_batch = convs.detach().transpose(0, 1)
    from asrec.reference.frequency_filter import frequency_keep_mask, half_spectrum, spectrum_energy

    energy = spectrum_energy(half_spectrum(by_batch))
    assert torch.equal(kernel_keep(by_batch, 0.8).bool(), frequency_keep_mask(energy, 12, threshold))
    results = {}
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend):
            filtered, passthrough = _frequency_filter_groups(convs, threshold, norm_weight, norm_bias, 1e-12, 0.5,
                                                             False, "batch", with_input=True)
            out = contrast_gelu(filtered, passthrough, scales, origin, contrast, rows)
        results[backend] = (out, *torch.autograd.grad(out, leaves, grad))
    for a, b in zip(results["triton"], results["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_output_rows_across_row_blocks(monkeypatch):
    """With output_rows the kernels store and read back only row rows[b] (a (B, 1, H) output and
    gradient; no gather, no scatter): positions at the first and last row, on both sides of a row
    block's edge (16 rows forward, 8 backward here), the block from the last row running past the
    end; values and every gradient as the reference's."""
    from asrec.kernels import contrast_gelu as kernels

    monkeypatch.setattr(kernels, "ROW_TILE", 512)
    inputs = _inputs(6, 50, 24)
    rows = torch.tensor([0, 49, 15, 16, 8, 7], device=DEVICE)
    grad = torch.randn(6, 1, 24, device=DEVICE)
    ours, expected = _run("triton", inputs, grad, rows), _run("reference", inputs, grad, rows)
    assert ours[0].shape == (6, 1, 24)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_output_rows_forward_equals_the_full_output_at_those_rows():
    """The (B, 1, H) output is the full activation's rows bit for bit (same arithmetic per row)."""
    filtered, convs, scales, origin, contrast, _ = _inputs(3, 12, 24)
    rows = torch.tensor([4, 0, 11], device=DEVICE)
    with asrec.use_backend("triton"), torch.no_grad():
        full = contrast_gelu(filtered, convs, scales, origin, contrast)
        taken = contrast_gelu(filtered, convs, scales, origin, contrast, rows)
    assert torch.equal(taken, full[torch.arange(3), rows][:, None])


def test_output_rows_out_of_range_give_nan_and_no_gradient():
    """A position outside [0, seq_len) (which the reference's gather refuses; the kernels cannot
    check it without reading the device) gives a NaN row and no gradient, never an out-of-bounds
    access; the other sequences are unaffected. (On CPU tensors the op's contract refuses it
    first; the kernels are called past it here, as a GPU call reaches them.)"""
    inputs = _inputs(3, 12, 24)
    grad = torch.randn(3, 1, 24, device=DEVICE)
    if DEVICE == "cpu":
        with pytest.raises(ValueError, match=r"contrast_gelu: output_rows must lie in \[0, 11\], got min -1, max 12"):
            _run("triton", inputs, grad, torch.tensor([2, 12, -1], device=DEVICE))
    ours = _run("triton", inputs, grad, torch.tensor([2, 12, -1], device=DEVICE),
                past_the_contract("contrast_gelu", "triton"))
    assert bool(ours[0][1:].isnan().all()) and not bool(ours[0][0].isnan().any())
    silent = grad.clone()
    silent[1:] = 0
    expected = _run("reference", inputs, silent, torch.tensor([2, 0, 0], device=DEVICE))
    torch.testing.assert_close(ours[0][0], expected[0][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(ours[1:], expected[1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows,match", [(torch.tensor([1, 2]), r"output_rows must be a \(3,\) int64 tensor"),
                                        (torch.tensor([1, 2, 3], dtype=torch.int32), r"got \(3,\) torch.int32"),
                                        ([1, 2, 3], r"got list")])
def test_bad_output_rows_are_named(rows, match):
    filtered, convs, scales, origin, contrast, _ = _inputs(3, 7, 8)
    with pytest.raises(ValueError, match=match):
        contrast_gelu(filtered, convs, scales, origin, contrast, rows)
