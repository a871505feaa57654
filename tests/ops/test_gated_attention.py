import pytest
import torch

from asrec.reference import (
    attention_context_ref,
    key_padding_bias,
    multiscale_conv_ref,
    oversmoothing_contrast_ref,
    seasonal_gate_ref,
)

from ..oracle import attention_oracle, contrast_oracle, conv_oracle, gate_oracle


def _valid(batch, seq_len):
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0], lengths[-1] = 1, seq_len  # a length-1 and a full sequence in every batch
    return torch.arange(seq_len)[None, :] < lengths[:, None]


@pytest.mark.parametrize("batch,heads,seq_len,head_dim", [(3, 1, 1, 8), (3, 2, 7, 6), (4, 4, 50, 16), (2, 2, 2, 4)])
def test_attention_matches_per_head_loop(batch, heads, seq_len, head_dim):
    q, k, v = (torch.randn(batch, heads, seq_len, head_dim, dtype=torch.float64) for _ in range(3))
    valid = _valid(batch, seq_len)
    out = attention_context_ref(q, k, v, key_padding_bias(valid, torch.float64))
    torch.testing.assert_close(out, attention_oracle(q, k, v, valid))


def test_padded_keys_get_the_published_minus_10000_not_minus_infinity():
    q, k, v = (torch.randn(1, 1, 3, 4, dtype=torch.float64) for _ in range(3))
    valid = torch.zeros(1, 3, dtype=torch.bool)  # all padded: uniform attention, no NaN
    out = attention_context_ref(q, k, v, key_padding_bias(valid, torch.float64))
    torch.testing.assert_close(out, attention_oracle(q, k, v, valid))
    assert torch.isfinite(out).all()


def test_gate_matches_formula():
    c, v = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(2, 3, 5, 4, dtype=torch.float64)
    w, b = torch.randn(8, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    torch.testing.assert_close(seasonal_gate_ref(c, v, w, b), gate_oracle(c, v, w, b))


@pytest.mark.parametrize("batch,seq_len,hidden", [(2, 1, 8), (3, 7, 12), (2, 50, 64)])
def test_stacked_convs_equal_three_separate_calls(batch, seq_len, hidden):
    c = torch.randn(batch, seq_len, hidden, dtype=torch.float64)
    weights = tuple(torch.randn(seq_len, seq_len, k, dtype=torch.float64) for k in (3, 5, 7))
    biases = tuple(torch.randn(seq_len, dtype=torch.float64) for _ in range(3))
    out = multiscale_conv_ref(c, weights, biases)
    assert [o.shape for o in out] == [(batch, seq_len, hidden)] * 3
    for got, expected in zip(out, conv_oracle(c, weights, biases)):
        torch.testing.assert_close(got, expected)


def test_contrast_matches_formula_including_zero_rows():
    ctx = torch.randn(3, 7, 12, dtype=torch.float64)
    ctx[0, 2] = 0.0  # the 1e-12 clamp of the L2 normalisation
    origin, contrast = torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    torch.testing.assert_close(oversmoothing_contrast_ref(ctx, origin, contrast), contrast_oracle(ctx, origin, contrast))


def test_gradchecks():
    d = torch.float64
    q, k, v = (torch.randn(2, 2, 5, 3, dtype=d, requires_grad=True) for _ in range(3))
    bias = key_padding_bias(_valid(2, 5), d)
    assert torch.autograd.gradcheck(lambda a, b, c: attention_context_ref(a, b, c, bias), (q, k, v))
    w, b = torch.randn(6, 6, dtype=d, requires_grad=True), torch.randn(6, dtype=d, requires_grad=True)
    assert torch.autograd.gradcheck(seasonal_gate_ref, (q, v, w, b))
    c = torch.randn(2, 5, 6, dtype=d, requires_grad=True)
    weights = tuple(torch.randn(5, 5, k, dtype=d, requires_grad=True) for k in (3, 5, 7))
    biases = tuple(torch.randn(5, dtype=d, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda x, *p: tuple(multiscale_conv_ref(x, p[:3], p[3:])),
                                    (c, *weights, *biases))
    origin, contrast = (torch.tensor(s, dtype=d, requires_grad=True) for s in (0.9, 0.3))
    assert torch.autograd.gradcheck(oversmoothing_contrast_ref, (c, origin, contrast))
