"""Every public op answers an argument that is not a tensor (or not a list of them) with a
TypeError naming the op and the argument, before any dispatch."""

import pytest
import torch

from asrec import ops

X = torch.randn(2, 5, 8)
NORM = (torch.ones(8), torch.zeros(8))
CONVS = [torch.randn(5, 5, k) for k in (3, 5, 7)]
BIASES = [torch.zeros(5)] * 3
Q = torch.randn(2, 2, 5, 4)
BIAS = torch.zeros(2, 1, 1, 5)
SMOOTH = (torch.zeros(1), torch.zeros(1, 1, 8), torch.ones(1, 1, 8))


@pytest.mark.parametrize("call,pattern", [
    (lambda: ops.frequency_filter(X.tolist(), torch.tensor(0.8), *NORM, 1e-12), r"frequency_filter: y must be a torch.Tensor, got list"),
    (lambda: ops.frequency_filter(X, 0.8, *NORM, 1e-12), r"frequency_filter: threshold must be a torch.Tensor, got float"),
    (lambda: ops.frequency_filter_groups(7, torch.tensor(0.8), *NORM, 1e-12), r"frequency_filter_groups: groups must be a non-empty list"),
    (lambda: ops.frequency_filter_groups([X, None], torch.tensor(0.8), *NORM, 1e-12), r"frequency_filter_groups: groups\[1\] must be a torch.Tensor, got NoneType"),
    (lambda: ops.fourier_smoothing(X, 0.3, *SMOOTH[1:], 1.0), r"fourier_smoothing: smoothing_logit must be a torch.Tensor, got float"),
    (lambda: ops.input_stage([[1, 2]], torch.randn(3, 8), torch.randn(5, 8), *NORM, 1e-12, 0.0, False, *SMOOTH, 1.0), r"input_stage: item_seq must be a torch.Tensor, got list"),
    (lambda: ops.attention(Q, Q, Q.numpy(), BIAS), r"attention: v must be a torch.Tensor, got ndarray"),
    (lambda: ops.multiscale_conv(X, CONVS[:2], BIASES), r"multiscale_conv: conv_weights must be a list of 3 tensors, got list of length 2"),
    (lambda: ops.multiscale_conv(X, CONVS, None), r"multiscale_conv: conv_biases must be a list of 3 tensors, got NoneType"),
    (lambda: ops.contrast_gelu([X] * 3, [X, X, 1.0], torch.ones(3, 5, 1), torch.tensor(1.0), torch.tensor(0.6)), r"contrast_gelu: conv_outputs\[2\] must be a torch.Tensor, got float"),
    (lambda: ops.residual_norm(X, "x", *NORM, 1e-12), r"residual_norm: residual must be a torch.Tensor, got str"),
])
def test_non_tensor_arguments_are_named(call, pattern):
    with pytest.raises(TypeError, match=pattern):
        call()


def test_a_groups_tensor_of_the_wrong_rank_is_named():
    with pytest.raises(ValueError, match=r"frequency_filter_groups: a groups tensor must be \(groups, batch, seq_len, "
                                         r"hidden\) with at least one group, got shape \(2, 5, 8\)"):
        ops.frequency_filter_groups(X, torch.tensor(0.8), *NORM, 1e-12)
