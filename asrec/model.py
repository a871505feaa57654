"""ASRecModel: item and position embeddings, the ASRec encoder, full-sort scoring and loss."""

import numbers

import torch
from torch import nn

from . import checkpoint
from .checks import check_encoder_config, check_item_seq, check_item_sequences, check_targets, require_on_device
from .memory import check_model_parameters
from .modules.encoder import ASRec
from .modules.init import init_linear_embedding_norm
from .ops.linear_cross_entropy import linear_cross_entropy
from .ops.top_items import top_items


class ASRecModel(nn.Module):
    """The full ASRec recommender of the published code (SPEC sections 1-7).

    n_items counts the padding item 0 (RecBole's ``n_items``). Sequences are left-aligned:
    ``item_seq`` (batch, max_seq_length) holds the items at positions ``0 .. len-1`` and 0
    after them. ``check_values`` (default True) verifies id and length ranges, which costs
    one host synchronisation per call; turn it off once the data is known to be valid.
    ``device`` and ``dtype`` are the usual factory arguments of the parameters.
    """

    def __init__(self, n_items: int, max_seq_length: int, hidden_size: int = 64, n_layers: int = 2,
                 n_heads: int = 2, inner_size: int = 256, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, hidden_act: str = "gelu", layer_norm_eps: float = 1e-12,
                 initializer_range: float = 0.02, fsm_mix: float = 1.0, filter_scope: str = "batch",
                 check_values: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(n_items, bool) or not isinstance(n_items, numbers.Integral) or n_items < 2:
            raise ValueError(f"n_items: expected an int >= 2 (padding item 0 plus real items), got {n_items!r}")
        check_encoder_config(max_seq_length=max_seq_length, hidden_size=hidden_size, n_layers=n_layers,
                             n_heads=n_heads, inner_size=inner_size, hidden_dropout_prob=hidden_dropout_prob,
                             attn_dropout_prob=attn_dropout_prob, layer_norm_eps=layer_norm_eps, fsm_mix=fsm_mix,
                             initializer_range=initializer_range, filter_scope=filter_scope)
        check_model_parameters(n_items, max_seq_length, hidden_size, n_layers, n_heads, inner_size, device, dtype)
        self.config = dict(n_items=n_items, max_seq_length=max_seq_length, hidden_size=hidden_size,
                           n_layers=n_layers, n_heads=n_heads, inner_size=inner_size,
                           hidden_dropout_prob=hidden_dropout_prob, attn_dropout_prob=attn_dropout_prob,
                           hidden_act=hidden_act, layer_norm_eps=layer_norm_eps,
                           initializer_range=initializer_range, fsm_mix=fsm_mix, filter_scope=filter_scope)
        self.n_items = n_items
        self.max_seq_length = max_seq_length
        self.hidden_dropout_prob = hidden_dropout_prob
        self.check_values = check_values
        factory = dict(device=device, dtype=dtype)
        self.item_embedding = nn.Embedding(n_items, hidden_size, padding_idx=0, **factory)
        self.position_embedding = nn.Embedding(max_seq_length, hidden_size, **factory)
        self.input_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, **factory)
        self.encoder = ASRec(hidden_size, max_seq_length, n_layers, n_heads, inner_size, hidden_dropout_prob,
                             attn_dropout_prob, hidden_act, layer_norm_eps, fsm_mix, initializer_range,
                             filter_scope, **factory)
        init_linear_embedding_norm(self, initializer_range)

    @property
    def check_values(self) -> bool:
        """Whether each call checks the id and length ranges (one host synchronisation)."""
        return self._check_values

    @check_values.setter
    def check_values(self, value: bool) -> None:
        # a bool, not any truthy value: check_values="no" would otherwise turn the checks on
        if not isinstance(value, bool):
            raise TypeError(f"check_values: expected True or False, got {value!r}")
        self._check_values = value

    def sequence_output(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Hidden states at every position. item_seq: (batch, N) -> (batch, N, hidden)."""
        check_item_seq(item_seq, self.n_items, self.max_seq_length, self.check_values)
        return self._encode(item_seq)

    def _encode(self, item_seq: torch.Tensor, item_seq_len=None) -> torch.Tensor:
        """-> (batch, N, hidden), or with item_seq_len (batch, hidden) at each last item."""
        require_on_device("item_seq", item_seq, self.item_embedding.weight.device)
        return self.encoder.encode_items(item_seq, self.item_embedding, self.position_embedding, self.input_norm,
                                         self.hidden_dropout_prob, item_seq_len)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The hidden state at each sequence's last item. item_seq: (batch, N) ids,
        item_seq_len: (batch,) in [1, N] -> (batch, hidden)."""
        check_item_sequences(item_seq, item_seq_len, self.n_items, self.max_seq_length, self.check_values)
        return self._encode(item_seq, item_seq_len)

    def full_sort_scores(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """Scores of every item, padding item 0 included. -> (batch, n_items)."""
        return self(item_seq, item_seq_len) @ self.item_embedding.weight.t()

    def loss(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor, pos_items: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the next item over all items (scalar, mean over the batch; float32, or
        float64 for a float64 model), without the (batch, n_items) score matrix: the scores
        are made and consumed an item tile at a time (``asrec.ops.linear_cross_entropy``)."""
        check_targets(pos_items, item_seq.shape[0], self.n_items, item_seq.device, self.check_values)
        return linear_cross_entropy(self(item_seq, item_seq_len), self.item_embedding.weight, pos_items)

    @torch.no_grad()
    def recommend(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor, k: int, exclude=None) -> tuple:
        """The k best items for each sequence, without the (batch, n_items) score matrix.

        item_seq (batch, N), item_seq_len (batch,) as ``forward``; k in [1, n_items - 1];
        exclude None or a (batch, M) integer tensor of item ids to leave out per row (e.g. the
        history ``item_seq``; 0 entries ignored) -> (scores (batch, k) float32, item ids
        (batch, k) int64), best first, equal scores to the lower id, never the padding item 0
        (where fewer than k items are left, the last slots hold -inf and id -1). Runs in the
        model's current mode: call ``eval()`` first for dropout-free scores.
        """
        return top_items(self(item_seq, item_seq_len), self.item_embedding.weight, k, exclude)

    @classmethod
    def from_original_state_dict(cls, state_dict: dict, config: dict) -> "ASRecModel":
        """Build a model from a state_dict of the published RecBole ``ASRec`` and its config
        (keys n_layers, n_heads, hidden_size, inner_size, hidden_dropout_prob,
        attn_dropout_prob, hidden_act, layer_norm_eps, initializer_range, A,
        MAX_ITEM_LIST_LENGTH). n_items comes from the item embedding's shape."""
        kwargs = checkpoint.model_kwargs_from_original(state_dict, config)
        model = cls(**kwargs)
        converted = checkpoint.from_original(state_dict, kwargs["n_layers"])
        expected = model.state_dict()
        wrong = [f"{name}: expected {tuple(expected[name].shape)}, got {tuple(t.shape)}"
                 for name, t in converted.items() if t.shape != expected[name].shape]
        if wrong:
            raise ValueError("state_dict: tensor shapes do not fit the config: " + "; ".join(wrong))
        model.load_state_dict(converted)
        return model

    def to_original_config(self) -> dict:
        """This model's settings under the published config keys (for ``from_original_state_dict``
        and the published code's RecBole config)."""
        return checkpoint.original_config(self.config)

    def to_original_state_dict(self) -> dict:
        """The state_dict the published code saves: its keys, shapes and unused entries."""
        return checkpoint.to_original(self.state_dict(), self.config["n_layers"])
