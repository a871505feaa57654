"""One valid, tiny call of each public op of ``asrec.ops`` (for the contract's property test):
``valid_call(op)`` -> (positional args, keyword args), fresh tensors each time, float32 on the
CPU. Sizes: batch 2, seq_len 4, hidden 8, 2 heads, 6 items."""

import torch

from asrec import ops
from asrec.reference.weights import (
    DynamicWeights,
    FeedForwardWeights,
    FrequencyFilterWeights,
    HybridLayerWeights,
    LinearWeights,
    NormWeights,
    SeasonalWeights,
)

BATCH, SEQ_LEN, HIDDEN, HEADS, N_ITEMS, INNER = 2, 4, 8, 2, 6, 16
HEAD_DIM = HIDDEN // HEADS
EPS = 1e-5


def _x(*shape):
    return torch.randn(*shape)


def _linear(out_features, in_features):
    return LinearWeights(_x(out_features, in_features) * 0.3, _x(out_features) * 0.1)


def _norm():
    return NormWeights(torch.ones(HIDDEN) + 0.1 * _x(HIDDEN), 0.1 * _x(HIDDEN), EPS)


def _smoothing():
    return torch.zeros(1), 0.1 * _x(1, 1, HIDDEN), torch.ones(1, 1, HIDDEN)


def _key_bias():
    bias = torch.zeros(BATCH, 1, 1, SEQ_LEN)
    bias[1, ..., -1] = -10000.0  # one padded key
    return bias


def _item_seq():
    return torch.tensor([[1, 2, 3, 4], [5, 1, 2, 0]])


def seasonal_weights():
    return SeasonalWeights(
        query=_linear(HIDDEN, HIDDEN), key=_linear(HIDDEN, HIDDEN), value=_linear(HIDDEN, HIDDEN),
        gate=_linear(2 * HEAD_DIM, 2 * HEAD_DIM),
        conv_weights=tuple(_x(SEQ_LEN, SEQ_LEN, k) * 0.2 for k in (3, 5, 7)),
        conv_biases=tuple(_x(SEQ_LEN) * 0.1 for _ in range(3)),
        position_scales=torch.full((3, SEQ_LEN, 1), 1 / 3), origin_scale=torch.tensor(1.0),
        contrast_scale=torch.tensor(0.6),
        frequency_filter=FrequencyFilterWeights(torch.tensor(0.5), _norm()),
        dense=_linear(HIDDEN, HIDDEN), norm=_norm())


def dynamic_weights():
    return DynamicWeights(query=_linear(HIDDEN, HIDDEN), key=_linear(HIDDEN, HIDDEN), value=_linear(HIDDEN, HIDDEN),
                          dense=_linear(HIDDEN, HIDDEN), norm=_norm())


def feed_forward_weights():
    return FeedForwardWeights(_linear(INNER, HIDDEN), _linear(HIDDEN, INNER), _norm(), "gelu")


def _q():
    return _x(BATCH, HEADS, SEQ_LEN, HEAD_DIM)


def valid_call(op: str) -> tuple:
    """(args, kwargs) of a valid call of ``asrec.ops.<op>``."""
    x = _x(BATCH, SEQ_LEN, HIDDEN)
    norm = _norm()
    if op == "input_stage":
        return (_item_seq(), _x(N_ITEMS, HIDDEN), _x(SEQ_LEN + 1, HIDDEN), norm.weight, norm.bias, EPS, 0.0, False,
                *_smoothing(), 1.0), {}
    if op == "padding_bias":
        return (_item_seq(), torch.tensor([4, 3])), {}
    if op == "fourier_smoothing":
        return (x, *_smoothing(), 1.0), {}
    if op == "frequency_filter":
        return (x, torch.tensor(0.5), norm.weight, norm.bias, EPS), {"dropout_p": 0.0}
    if op == "frequency_filter_groups":
        return ([x, _x(BATCH, SEQ_LEN, HIDDEN), _x(BATCH, SEQ_LEN, HIDDEN)], torch.tensor(0.5), norm.weight,
                norm.bias, EPS), {"dropout_p": 0.0}
    if op == "attention":
        return (_q(), _q(), _q(), _key_bias()), {}
    if op == "gated_attention":
        gate = _linear(2 * HEAD_DIM, 2 * HEAD_DIM)
        return (_q(), _q(), _q(), _key_bias(), gate.weight, gate.bias), {}
    if op == "hybrid_attention":
        return (x, _key_bias(), seasonal_weights(), dynamic_weights(), HEADS), {}
    if op == "take_rows":
        return (torch.tensor([3, 1]), x, _x(BATCH, SEQ_LEN, HIDDEN)), {}
    if op == "multiscale_conv":
        weights = seasonal_weights()
        return (x, weights.conv_weights, weights.conv_biases), {}
    if op == "contrast_gelu":
        return ([_x(BATCH, SEQ_LEN, HIDDEN) for _ in range(3)], [_x(BATCH, SEQ_LEN, HIDDEN) for _ in range(3)],
                torch.full((3, SEQ_LEN, 1), 1 / 3), torch.tensor(1.0), torch.tensor(0.6)), {}
    if op == "residual_norm":
        return (x, _x(BATCH, SEQ_LEN, HIDDEN), norm.weight, norm.bias, EPS), {}
    if op == "seasonal_branch":
        return (x, _key_bias(), seasonal_weights(), HEADS), {}
    if op == "dynamic_branch":
        return (x, _key_bias(), dynamic_weights(), HEADS), {}
    if op == "feed_forward":
        return (x, feed_forward_weights()), {}
    if op == "hybrid_layer":
        weights = HybridLayerWeights(seasonal_weights(), dynamic_weights(), feed_forward_weights(),
                                     torch.tensor(0.5))
        return (x, _key_bias(), weights, HEADS), {}
    if op == "cross_entropy":
        return (_x(BATCH, N_ITEMS), torch.tensor([1, 5])), {}
    if op in ("linear_cross_entropy", "target_ranks"):
        return (_x(BATCH, HIDDEN), _x(N_ITEMS, HIDDEN), torch.tensor([1, 5])), {}
    if op == "top_items":
        return (_x(BATCH, HIDDEN), _x(N_ITEMS, HIDDEN), 2), {"exclude": torch.tensor([[1, 0], [2, 3]])}
    raise KeyError(op)


def run(op: str, args: tuple, kwargs: dict):
    return getattr(ops, op)(*args, **kwargs)
