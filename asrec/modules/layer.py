"""HybridLayer: the published ``TransformerLayer`` (SPEC section 6)."""

import torch
from torch import nn

from ..ops import HybridLayerWeights
from ..ops.hybrid_layer import _hybrid_layer
from .dynamic import DynamicAttention
from .feed_forward import FeedForward
from .seasonal import SeasonalAttention
from .stacked import StackedProjections, load_stacked_projections


class HybridLayer(nn.Module):
    """``FFN(branch_mix * dynamic(x) + (1 - branch_mix) * seasonal(x))``.

    ``branch_mix`` is the published ``v3`` (init 0.5). The published layer's own LayerNorm
    is never applied; its values are buffers (``unused_norm_*``) for checkpoint round trips.

    ``projections``: the six q/k/v projections of both branches as one (6H, H) weight and
    (6H,) bias, rows [seasonal query, key, value | dynamic query, key, value]; the branches'
    ``query``/``key``/``value`` are views of its rows, and the state_dict keeps their names
    (``seasonal.query.weight``, ...: ``asrec.modules.stacked``). The fused path projects with
    this parameter as it is: one GEMM, no per-call concatenation.
    """

    def __init__(self, hidden_size: int, n_heads: int, max_seq_length: int, inner_size: int,
                 hidden_dropout_prob: float = 0.5, attn_dropout_prob: float = 0.5, hidden_act: str = "gelu",
                 layer_norm_eps: float = 1e-12, filter_scope: str = "batch", device=None, dtype=None):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        self.n_heads = n_heads
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attn_dropout_prob = attn_dropout_prob
        # Each branch draws its rows' initial values when it is built, as its own Linears did.
        self.projections = StackedProjections(6, hidden_size, **factory)
        self.seasonal = SeasonalAttention(hidden_size, n_heads, max_seq_length, hidden_dropout_prob,
                                          attn_dropout_prob, layer_norm_eps, filter_scope, **factory,
                                          projections=self.projections, first_projection=0)
        self.dynamic = DynamicAttention(hidden_size, n_heads, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps,
                                        **factory, projections=self.projections, first_projection=3)
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps,
                                        **factory)
        self.branch_mix = nn.Parameter(torch.tensor(0.5, **factory))
        self.register_buffer("unused_norm_weight", torch.ones(hidden_size, **factory))
        self.register_buffer("unused_norm_bias", torch.zeros(hidden_size, **factory))

    def weights(self) -> HybridLayerWeights:
        projections = self.projections.split()  # one split: one concatenation in backward
        return HybridLayerWeights(self.seasonal.weights(projections[:3]), self.dynamic.weights(projections[3:]),
                                  self.feed_forward.weights(), self.branch_mix)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor, output_rows=None) -> torch.Tensor:
        """x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len), 0 at real items and
        -10000 at padding; output_rows: optional (batch,) positions, then the result is
        (batch, 1, hidden) at those positions only (``ops.hybrid_layer``)."""
        return self._forward(x, key_bias, output_rows, None, False)

    def _forward(self, x: torch.Tensor, key_bias: torch.Tensor, output_rows, residual, with_residual: bool):
        """``forward`` for ``ASRec``'s layer loop, with the second handles (``ops.hybrid_layer._hybrid_layer``):
        residual: optional second handle of x for the residual path; with_residual: return
        (out, a second handle of out) for the next layer."""
        return _hybrid_layer(x, key_bias, self.weights(), self.n_heads, self.hidden_dropout_prob,
                             self.attn_dropout_prob, self.training, self.seasonal.frequency_filter.scope,
                             output_rows, residual, with_residual)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        load_stacked_projections(self, state_dict, prefix, strict, missing_keys, unexpected_keys, error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
