"""ASRec: the drop-in encoder, Fourier smoothing followed by the hybrid layers."""

import copy

import torch
from torch import nn

from ..checks import check_encoder_config, check_encoder_input
from ..ops import padding_bias, shared_dropout_draw
from ..ops.input_stage import _input_stage
from .fourier_smoothing import FourierSmoothing
from .init import init_linear_embedding_norm
from .layer import HybridLayer


class ASRec(nn.Module):
    """The ASRec sequence encoder (SPEC sections 2-7) over input embeddings.

    ``forward(x, valid)``: x (batch, max_seq_length, hidden_size) input embeddings,
    valid (batch, max_seq_length) bool marking real items -> (batch, max_seq_length,
    hidden_size). The sequence length must equal ``max_seq_length``: the seasonal
    convolutions have one channel per position.

    Initialisation follows the published code: the layers are deep copies of one layer
    (so the convolutions, scales and gates start equal in every layer), then every Linear
    weight is drawn from N(0, initializer_range), biases 0, LayerNorms 1/0.
    ``filter_scope="sequence"`` opts into a per-sequence frequency threshold; the default
    ``"batch"`` is the published behaviour.

    Three entries: ``forward`` (checked), ``encode`` (unchecked, optional read-out rows) and
    ``encode_items`` (from item ids through the fused input stage: ``ASRecModel``'s path). All
    end in the private ``_layers``, which carries the layers' second handle of the hidden state.
    """

    def __init__(self, hidden_size: int, max_seq_length: int, n_layers: int = 2, n_heads: int = 2,
                 inner_size: int = 256, hidden_dropout_prob: float = 0.5, attn_dropout_prob: float = 0.5,
                 hidden_act: str = "gelu", layer_norm_eps: float = 1e-12, fsm_mix: float = 1.0,
                 initializer_range: float = 0.02, filter_scope: str = "batch", device=None, dtype=None):
        super().__init__()
        check_encoder_config(hidden_size, max_seq_length, n_layers, n_heads, inner_size, hidden_dropout_prob,
                             attn_dropout_prob, layer_norm_eps, fsm_mix, initializer_range, filter_scope)
        self.hidden_size = hidden_size
        self.max_seq_length = max_seq_length
        factory = dict(device=device, dtype=dtype)
        self.fsm = FourierSmoothing(hidden_size, fsm_mix, **factory)
        layer = HybridLayer(hidden_size, n_heads, max_seq_length, inner_size, hidden_dropout_prob,
                            attn_dropout_prob, hidden_act, layer_norm_eps, filter_scope, **factory)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(n_layers))
        init_linear_embedding_norm(self, initializer_range)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The checked entry. x: (batch, max_seq_length, hidden_size) input embeddings; valid:
        (batch, max_seq_length) bool marking real items -> x's shape."""
        check_encoder_input(x, valid, self.hidden_size, self.max_seq_length, self.fsm.init_level.dtype)
        return self.encode(x, valid)

    def encode(self, x: torch.Tensor, valid: torch.Tensor, output_rows=None) -> torch.Tensor:
        """``forward`` without the argument checks (for callers that checked already), with an
        optional read-out: output_rows (batch,) positions, then the result is (batch, hidden),
        each sequence's final hidden state at its position, and the last layer computes only those.
        """
        key_bias, _ = padding_bias(valid.to(torch.int32))  # 0 at real items, -10000 at padding
        return self._layers(self.fsm(x), key_bias, output_rows)

    def encode_items(self, item_seq: torch.Tensor, item_embedding: nn.Embedding, position_embedding: nn.Embedding,
                     input_norm: nn.LayerNorm, dropout_p: float, item_seq_len=None) -> torch.Tensor:
        """The entry from item ids (``ASRecModel``'s path): the embeddings, LayerNorm, dropout and
        this encoder's smoothing as one op (``ops.input_stage``), the attention bias and read-out
        positions as another (``ops.padding_bias``), then the layers. item_seq: (batch, seq_len)
        ids, 0 = padding; item_seq_len: optional (batch,) lengths -> (batch, seq_len, hidden), or
        with item_seq_len (batch, hidden) at each sequence's last item. Ids are not checked here."""
        fsm, norm = self.fsm, input_norm
        key_bias, last_rows = padding_bias(item_seq, item_seq_len)  # one kernel on "triton"
        with shared_dropout_draw():  # one RNG kernel for every dropping call of the forward
            # two handles of the smoothed input: the first layer's projections read one, its residual
            # path the other, and the input stage's backward adds their gradients (in its kernel on "triton")
            smoothed, residual = _input_stage(item_seq, item_embedding.weight, position_embedding.weight, norm.weight,
                                              norm.bias, norm.eps, dropout_p, self.training, fsm.smoothing_logit,
                                              fsm.init_level, fsm.smoothed_scale, fsm.mix, with_residual=True)
            return self._layers(smoothed, key_bias, last_rows, residual)

    def _layers(self, hidden: torch.Tensor, key_bias: torch.Tensor, output_rows=None,
                residual=None) -> torch.Tensor:
        """The hybrid layers over a smoothed input and its attention bias (both entries end here).
        hidden: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len), 0 at real items and
        -10000 at padding; output_rows as ``encode``; residual: optional second handle of
        hidden (``ops.input_stage._input_stage(with_residual=True)``) for the first layer's residual path.

        The smoothing computes in float32; its result enters the layers in their parameters'
        dtype (under autocast as it is: autocast casts at each product), the bias too. An empty
        batch gives an empty result: the batch-wide frequency quantile is undefined over no
        sequences.
        """
        dtype = self.fsm.init_level.dtype
        if hidden.dtype != dtype and not torch.is_autocast_enabled(hidden.device.type):
            hidden = hidden.to(dtype)
            residual = None if residual is None else residual.to(dtype)
        if hidden.shape[0] == 0:
            return hidden if output_rows is None else hidden[:, 0]
        key_bias = key_bias.to(hidden.dtype)
        if output_rows is not None:
            output_rows = output_rows.long()  # (int32 positions too: the row ops take int64)
        last = len(self.layers) - 1
        with shared_dropout_draw():  # one RNG kernel for the layers' dropping calls
            # each layer reads its input twice (projections, residual path): the op that made it
            # hands over two handles, and its backward kernel adds their gradients
            for index, layer in enumerate(self.layers):
                if index == last:
                    hidden = layer._forward(hidden, key_bias, output_rows, residual, False)
                else:
                    hidden, residual = layer._forward(hidden, key_bias, None, residual, True)
        return hidden if output_rows is None else hidden.squeeze(1)
