"""The Triton launchers as torch.library custom ops: registrations (opcheck) and a
torch.compile capture of the public ops, forward and backward, without graph breaks."""

import pytest
import torch

import asrec
from asrec.ops import fourier_smoothing, frequency_filter, input_stage

from ..triton_support import DEVICE

OPS = torch.ops.asrec


def _smoothing_args(hidden=8):
    return (torch.tensor([0.3], device=DEVICE), 0.5 * torch.randn(1, 1, hidden, device=DEVICE),
            1 + 0.5 * torch.randn(1, 1, hidden, device=DEVICE))


def _input_args(seq_len=7, hidden=8, n_items=20):
    ids = torch.randint(0, n_items, (3, seq_len), device=DEVICE)
    return (ids, torch.randn(n_items, hidden, device=DEVICE), torch.randn(seq_len, hidden, device=DEVICE),
            1 + 0.1 * torch.randn(hidden, device=DEVICE), 0.1 * torch.randn(hidden, device=DEVICE),
            *_smoothing_args(hidden))


RNG = torch.tensor([5, 0], device=DEVICE)  # a dropout Philox state (seed, offset), read by the kernels


def test_opcheck_fourier_smoothing():
    x = torch.randn(3, 7, 8, device=DEVICE)
    torch.library.opcheck(OPS.fourier_smoothing_fwd.default, (x, *_smoothing_args(), 0.4))
    torch.library.opcheck(OPS.fourier_smoothing_bwd.default, (x, torch.randn_like(x), *_smoothing_args(), 0.4))


@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck_input_stage(dropping):
    args = _input_args()
    torch.library.opcheck(OPS.input_stage_fwd.default, (*args, RNG, 1e-12, 0.3, dropping, 0.4))
    grad = torch.randn(3, 7, 8, device=DEVICE)
    torch.library.opcheck(OPS.input_stage_bwd.default, (*args, grad, RNG, 1e-12, 0.3, dropping, 0.4))
    # with_residual: the second handle's gradient, added in the kernel
    torch.library.opcheck(OPS.input_stage_bwd.default,
                          (*args, grad, RNG, 1e-12, 0.3, dropping, 0.4, torch.randn_like(grad)))


@pytest.mark.parametrize("dropping", [False, True])
@pytest.mark.parametrize("group_major", [False, True])
def test_opcheck_frequency_filter(dropping, group_major):
    y = torch.randn(2, 3, 12, 8, device=DEVICE)
    weight, bias = 1 + 0.1 * torch.randn(8, device=DEVICE), 0.1 * torch.randn(8, device=DEVICE)
    threshold = torch.tensor(0.8, device=DEVICE)
    torch.library.opcheck(OPS.frequency_filter_fwd.default,
                          (y, threshold, weight, bias, RNG, 1e-12, 0.5, dropping, "batch", group_major))
    _, keep = OPS.frequency_filter_fwd(y, threshold, weight, bias, RNG, 1e-12, 0.5, dropping, "batch", group_major)
    torch.library.opcheck(OPS.frequency_filter_bwd.default,
                          (y, torch.randn_like(y), keep, weight, RNG, 1e-12, 0.5, dropping))
    # with_input: the passthrough's gradient, added in the kernel
    torch.library.opcheck(OPS.frequency_filter_bwd.default,
                          (y, torch.randn_like(y), keep, weight, RNG, 1e-12, 0.5, dropping, torch.randn_like(y)))


@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck_residual_norm(dropping):
    x, residual = torch.randn(3, 7, 24, device=DEVICE), torch.randn(3, 7, 24, device=DEVICE)
    weight, bias = 1 + 0.1 * torch.randn(24, device=DEVICE), 0.1 * torch.randn(24, device=DEVICE)
    other_norm = (1 + 0.1 * torch.randn(24, device=DEVICE), 0.1 * torch.randn(24, device=DEVICE))
    for mix in ((None,) * 4, (torch.randn_like(x), *other_norm, torch.tensor(0.3, device=DEVICE))):
        torch.library.opcheck(OPS.residual_norm_fwd.default,
                              (x, residual, weight, bias, RNG, 1e-12, 0.3, dropping, torch.float32, *mix))
        torch.library.opcheck(OPS.residual_norm_bwd.default,
                              (x, residual, weight, bias, torch.randn_like(x), RNG, 1e-12, 0.3, dropping, *mix))


def test_opcheck_contrast_gelu():
    tensors = [torch.randn(2, 7, 8, device=DEVICE) for _ in range(6)]
    scalars = (torch.randn(3, 7, device=DEVICE), torch.tensor([1.2], device=DEVICE), torch.tensor([0.7], device=DEVICE))
    torch.library.opcheck(OPS.contrast_gelu_fwd.default, (*tensors, *scalars))
    _, column_sum = OPS.contrast_gelu_fwd(*tensors, *scalars)
    torch.library.opcheck(OPS.contrast_gelu_bwd.default,
                          (*tensors, *scalars, column_sum, torch.randn(2, 7, 8, device=DEVICE)))
    # the read-out rows only (the model's last layer)
    rows = torch.tensor([6, 2], device=DEVICE)
    torch.library.opcheck(OPS.contrast_gelu_fwd.default, (*tensors, *scalars, rows))
    _, column_sum = OPS.contrast_gelu_fwd(*tensors, *scalars, rows)
    torch.library.opcheck(OPS.contrast_gelu_bwd.default,
                          (*tensors, *scalars, column_sum, torch.randn(2, 1, 8, device=DEVICE), rows))


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck_attention(gated, dropping):
    q, k, v = (torch.randn(2, 2, 7, 8, device=DEVICE) for _ in range(3))
    key_bias = torch.zeros(2, 7, device=DEVICE)
    gate = (torch.randn(16, 16, device=DEVICE) * 0.2, torch.randn(16, device=DEVICE) * 0.2) if gated else (None, None)
    torch.library.opcheck(OPS.attention_fwd.default, (q, k, v, key_bias, *gate, RNG, 0.2, dropping))
    _, context, lse = OPS.attention_fwd(q, k, v, key_bias, *gate, RNG, 0.2, dropping)
    torch.library.opcheck(OPS.attention_bwd.default,
                          (q, k, v, key_bias, *gate, context, lse, torch.randn_like(q), RNG, 0.2, dropping))


@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck_hybrid_attention(dropping):
    qkv = torch.randn(2, 7, 6 * 16, device=DEVICE)  # hidden 16, 2 heads of 8
    key_bias = torch.zeros(2, 7, device=DEVICE)
    gate = (torch.randn(16, 16, device=DEVICE) * 0.2, torch.randn(16, device=DEVICE) * 0.2)
    torch.library.opcheck(OPS.hybrid_attention_fwd.default, (qkv, key_bias, *gate, 2, RNG, 0.2, dropping))
    out, context, lse = OPS.hybrid_attention_fwd(qkv, key_bias, *gate, 2, RNG, 0.2, dropping)
    torch.library.opcheck(OPS.hybrid_attention_bwd.default,
                          (qkv, key_bias, *gate, context, lse, *torch.randn_like(out), 2, RNG, 0.2, dropping))


def test_opcheck_multiscale_conv():
    x = torch.randn(2, 7, 10, device=DEVICE)
    weights = [torch.randn(7, 7, k, device=DEVICE) for k in (3, 5, 7)]
    biases = [torch.randn(7, device=DEVICE) for _ in range(3)]
    torch.library.opcheck(OPS.multiscale_conv_fwd.default, (x, *weights, *biases))
    torch.library.opcheck(OPS.multiscale_conv_bwd.default, (x, *weights, torch.randn(3, 2, 7, 10, device=DEVICE)))


def test_compile_captures_the_triton_ops_in_one_graph():
    """fullgraph=True: dispatch, the autograd Functions and the custom ops trace without a
    break; forward and gradients equal eager."""
    args = [t.requires_grad_() if t.is_floating_point() else t for t in _input_args(12, 8)]
    weight, bias = 1 + 0.1 * torch.randn(8, device=DEVICE), 0.1 * torch.randn(8, device=DEVICE)
    threshold = torch.tensor(0.8, device=DEVICE)

    def stage_and_filter(item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, level, scale):
        smoothed = input_stage(item_seq, item_weight, position_weight, norm_weight, norm_bias, 1e-12, 0.0, False,
                               logit, level, scale, 0.4)
        smoothed = fourier_smoothing(smoothed, logit, level, scale, 1.0)
        return frequency_filter(smoothed, threshold, weight, bias, 1e-12)

    compiled = torch.compile(stage_and_filter, backend="aot_eager", fullgraph=True)
    with asrec.use_backend("triton"):
        eager = stage_and_filter(*args)
        eager_grads = torch.autograd.grad(eager.square().sum(), args[1:])
        out = compiled(*args)
        grads = torch.autograd.grad(out.square().sum(), args[1:])
    torch.testing.assert_close(out, eager)
    for a, b in zip(grads, eager_grads):
        torch.testing.assert_close(a, b)


def test_compile_captures_the_whole_encoder_on_triton():
    """Every Triton op of the encoder (input smoothing, both branches' attention, convolutions, filters,
    contrast, norms) in one graph with fullgraph=True; the fakes' strides match the kernels' outputs."""
    encoder = asrec.ASRec(hidden_size=24, max_seq_length=12, n_heads=2, inner_size=32, fsm_mix=0.4).eval()
    encoder = encoder.to(DEVICE)
    x = torch.randn(3, 12, 24, device=DEVICE, requires_grad=True)
    valid = torch.arange(12, device=DEVICE)[None, :] < torch.tensor([[3], [12], [7]], device=DEVICE)
    with asrec.use_backend("triton"):
        eager = encoder(x, valid)
        compiled = torch.compile(encoder, backend="aot_eager", fullgraph=True)(x, valid)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(torch.autograd.grad(compiled.sum(), x)[0], torch.autograd.grad(eager.sum(), x)[0])


def test_compile_in_training_traces_the_dropout_rng():
    """Training mode under fullgraph=True: each call's Philox state is a traced random op on the
    device (not a constant of the graph), so calls draw fresh masks and manual_seed replays them."""
    encoder = asrec.ASRec(hidden_size=24, max_seq_length=12, n_heads=2, inner_size=32, fsm_mix=0.4).to(DEVICE)
    x = torch.randn(3, 12, 24, device=DEVICE, requires_grad=True)
    valid = torch.arange(12, device=DEVICE)[None, :] < torch.tensor([[3], [12], [7]], device=DEVICE)
    with asrec.use_backend("triton"):
        compiled = torch.compile(encoder.train(), backend="aot_eager", fullgraph=True)
        torch.manual_seed(0)
        first = compiled(x, valid)
        torch.autograd.grad(first.sum(), x)
        torch.manual_seed(0)
        again, fresh = compiled(x, valid), compiled(x, valid)
    assert torch.equal(first, again)
    assert not torch.equal(again, fresh)
