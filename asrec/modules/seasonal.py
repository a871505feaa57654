"""SeasonalAttention: the published ``MultiHeadAttention`` block (SPEC section 4)."""

import math

import torch
from torch import nn

from ..ops import LinearWeights, NormWeights, SeasonalWeights
from ..ops.seasonal_branch import seasonal_branch
from ..reference.multiscale_conv import CONV_KERNEL_SIZES
from .frequency_filter import AdaptiveFrequencyFilter
from .stacked import StackedProjections, attach_query_key_value, load_stacked_parts, load_stacked_projections

# The stacked position scales' rows, and the order the published module registers them in
# (its contra_scale1/2/3: small, LARGE, middle), which the state_dict and the draws follow.
POSITION_SCALES = ("small", "middle", "large")
POSITION_SCALES_REGISTERED = ("small", "large", "middle")


def _linear_weights(layer: nn.Linear) -> LinearWeights:
    return LinearWeights(layer.weight, layer.bias)


class SeasonalAttention(nn.Module):
    """Gated attention, multi-scale convolutions over positions-as-channels, three
    adaptive frequency filters, the over-smoothing contrast, dense and LayerNorm.

    Parameters (published name in brackets): ``query``/``key``/``value``/``dense``,
    ``norm`` [LayerNorm], ``conv_small``/``conv_middle``/``conv_large`` (Conv1d(N, N, k)),
    ``origin_scale`` [orgin_scale], ``contrast_scale`` [contra_scale],
    ``position_scale_small``/``_large``/``_middle`` [contra_scale1/2/3], ``gate_weight``
    [w_gate], ``gate_bias`` [b_gate]; the unused ``head_weights`` is a buffer.

    Two groups are stored stacked, so the fused kernels read them without a per-call
    concatenation; the state_dict keeps the names above (``asrec.modules.stacked``):

    - ``query``/``key``/``value`` are ``ProjectionRows``, rows of a ``StackedProjections``:
      the branch's own (3H, H) ``projections`` when it stands alone, or rows 0-2 or 3-5 of the
      hybrid layer's (6H, H) one when the layer passes ``projections`` and ``first_projection``.
    - ``position_scales`` (3, N, 1) [small, middle, large]; ``position_scale_small`` etc.
      are views of its rows.
    """

    def __init__(self, hidden_size: int, n_heads: int, max_seq_length: int, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, layer_norm_eps: float = 1e-12, filter_scope: str = "batch",
                 device=None, dtype=None, projections: StackedProjections = None, first_projection: int = 0):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        if hidden_size % n_heads != 0:
            raise ValueError(f"n_heads: must divide hidden_size={hidden_size}, got {n_heads}")
        self.n_heads = n_heads
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attn_dropout_prob = attn_dropout_prob
        head_dim = hidden_size // n_heads
        attach_query_key_value(self, projections, first_projection, hidden_size, factory)
        self.dense = nn.Linear(hidden_size, hidden_size, **factory)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, **factory)
        self.conv_small, self.conv_middle, self.conv_large = (
            nn.Conv1d(max_seq_length, max_seq_length, kernel_size=k, padding=k // 2, **factory)
            for k in CONV_KERNEL_SIZES)
        self.contrast_scale = nn.Parameter(torch.tensor(0.6, **factory))
        self.origin_scale = nn.Parameter(torch.tensor(1.0, **factory))
        self.position_scales = nn.Parameter(torch.empty(len(POSITION_SCALES), max_seq_length, 1, **factory))
        self.gate_weight = nn.Parameter(torch.empty(2 * head_dim, 2 * head_dim, **factory))
        self.gate_bias = nn.Parameter(torch.empty(2 * head_dim, **factory))
        self.register_buffer("unused_head_weights", torch.ones(n_heads, **factory))
        self.reset_branch_parameters()
        # created after the reset, as published: default LayerNorm, threshold 0.8
        self.frequency_filter = AdaptiveFrequencyFilter(hidden_size, layer_norm_eps, filter_scope, **factory)

    def _position_scale(self, name: str) -> torch.Tensor:
        return self.position_scales.narrow(0, POSITION_SCALES.index(name), 1)

    @property
    def position_scale_small(self) -> torch.Tensor:
        """(1, N, 1), a view of ``position_scales``."""
        return self._position_scale("small")

    @property
    def position_scale_middle(self) -> torch.Tensor:
        """(1, N, 1), a view of ``position_scales``."""
        return self._position_scale("middle")

    @property
    def position_scale_large(self) -> torch.Tensor:
        """(1, N, 1), a view of ``position_scales``."""
        return self._position_scale("large")

    def _published_order(self) -> list:
        """The branch's tensors in the order the module registered them when each was its own
        parameter (own parameters first, then each child's): the order of the draws below."""
        scales = [self._position_scale(name) for name in POSITION_SCALES_REGISTERED]
        tensors = [self.contrast_scale, self.origin_scale, *scales, self.gate_weight, self.gate_bias]
        for child in (self.query, self.key, self.value, self.dense, self.norm, self.conv_small, self.conv_middle,
                      self.conv_large):
            tensors += [child.weight, child.bias]
        return tensors

    @torch.no_grad()
    def reset_branch_parameters(self) -> None:
        """SPEC section 7 step 1: everything of the branch from U(-1/sqrt(2d), 1/sqrt(2d))."""
        bound = 1.0 / math.sqrt(self.gate_weight.shape[0])
        for tensor in self._published_order() + [self.unused_head_weights]:
            tensor.uniform_(-bound, bound)

    def weights(self, projections: tuple = None) -> SeasonalWeights:
        """projections: this branch's (query, key, value) LinearWeights when the stack's owner
        split it already (the hybrid layer splits once for both branches); else split here."""
        stack = self.query.stack
        if projections is None:
            projections = stack.split()[self.query.index:self.query.index + 3]
        query, key, value = projections
        convs = (self.conv_small, self.conv_middle, self.conv_large)
        return SeasonalWeights(
            query=query, key=key, value=value, gate=LinearWeights(self.gate_weight, self.gate_bias),
            conv_weights=tuple(c.weight for c in convs), conv_biases=tuple(c.bias for c in convs),
            position_scales=self.position_scales, origin_scale=self.origin_scale, contrast_scale=self.contrast_scale,
            frequency_filter=self.frequency_filter.weights(),
            dense=_linear_weights(self.dense), norm=NormWeights(self.norm.weight, self.norm.bias, self.norm.eps),
            stacked_projections=stack.stacked())

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len) from ``key_padding_bias``
        -> x's shape. The standalone entry (``ops.seasonal_branch``): ``HybridLayer`` reads this
        module's ``weights()`` and never calls it."""
        return seasonal_branch(x, key_bias, self.weights(), self.n_heads, self.hidden_dropout_prob,
                               self.attn_dropout_prob, self.training, self.frequency_filter.scope)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # The three published parameters, in their registration order, where the stack stands
        # (this module's own entries are the last ones written so far: the children follow).
        keys = list(destination)
        at = keys.index(prefix + "position_scales")
        tail = [(key, destination.pop(key)) for key in keys[at:]]
        scales = dict(zip(POSITION_SCALES, tail[0][1].split(1)))
        for name in POSITION_SCALES_REGISTERED:
            destination[f"{prefix}position_scale_{name}"] = scales[name]
        destination.update(tail[1:])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        load_stacked_projections(self, state_dict, prefix, strict, missing_keys, unexpected_keys, error_msgs)
        load_stacked_parts(state_dict, prefix, "position_scales",
                           {f"position_scale_{name}": self._position_scale(name) for name in POSITION_SCALES},
                           strict, missing_keys, unexpected_keys, error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
