import pytest
import scipy.fftpack
import torch

from asrec.ops import fourier_smoothing
from asrec.reference import fourier_smoothing_ref, next_fast_len

from ..oracle import fsm_oracle

SHAPES = [(3, 1, 8), (3, 2, 12), (4, 7, 8), (2, 50, 64), (2, 200, 12)]


@pytest.mark.parametrize("target", [1, 2, 3, 7, 13, 97, 99, 121, 399, 1000, 4097])
def test_next_fast_len_matches_scipy(target):
    assert next_fast_len(target) == scipy.fftpack.next_fast_len(target)


def _params(hidden, dtype=torch.float32):
    return (torch.randn(1, dtype=dtype), 0.5 * torch.randn(1, 1, hidden, dtype=dtype),
            0.5 * torch.randn(1, 1, hidden, dtype=dtype))


@pytest.mark.parametrize("batch,seq_len,hidden", SHAPES)
@pytest.mark.parametrize("mix", [1.0, 0.4, 0.0])
def test_matches_ema_loop(batch, seq_len, hidden, mix):
    x = torch.randn(batch, seq_len, hidden)
    logit, v0, v1 = _params(hidden)
    out = fourier_smoothing(x, logit, v0, v1, mix)
    assert out.dtype == torch.float32 and out.shape == x.shape
    torch.testing.assert_close(out.double(), fsm_oracle(x, logit, v0, v1, mix), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("logit", [-8.0, 0.0, 6.0])
def test_extreme_smoothing_factors_stay_finite_and_exact(logit):
    x = torch.randn(2, 50, 8, dtype=torch.float64)
    _, v0, v1 = _params(8, torch.float64)
    w = torch.tensor([logit], dtype=torch.float64)
    torch.testing.assert_close(fourier_smoothing_ref(x, w, v0, v1, 1.0), fsm_oracle(x, w, v0, v1, 1.0))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_computes_in_float32(dtype):
    x = torch.randn(2, 7, 8).to(dtype)
    logit, v0, v1 = _params(8)
    out = fourier_smoothing_ref(x, logit, v0, v1, 0.5)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), fsm_oracle(x.float(), logit, v0, v1, 0.5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch,seq_len,hidden", [(2, 1, 3), (2, 7, 4), (1, 12, 3)])
def test_gradcheck(batch, seq_len, hidden):
    x = torch.randn(batch, seq_len, hidden, dtype=torch.float64, requires_grad=True)
    params = [p.requires_grad_() for p in _params(hidden, torch.float64)]
    assert torch.autograd.gradcheck(lambda *a: fourier_smoothing_ref(*a, 0.7), (x, *params))


def test_gradients_match_the_loop():
    x = torch.randn(3, 9, 5, dtype=torch.float64, requires_grad=True)
    params = [p.requires_grad_() for p in _params(5, torch.float64)]
    grads = torch.autograd.grad(fourier_smoothing_ref(x, *params, 0.3).square().sum(), (x, *params))
    expected = torch.autograd.grad(fsm_oracle(x, *params, 0.3).square().sum(), (x, *params))
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)
