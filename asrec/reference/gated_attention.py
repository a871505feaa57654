"""Masked multi-head attention core and the seasonal gate (SPEC sections 4 and 5)."""

import torch
import torch.nn.functional as F

PADDING_BIAS = -10000.0


def key_padding_bias(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias of the published code: 0 at valid keys, -10000 at padding.

    valid: (batch, seq_len) bool -> (batch, 1, 1, seq_len)
    """
    return ((~valid).to(dtype) * PADDING_BIAS)[:, None, None, :]


def padding_bias_ref(item_seq: torch.Tensor, item_seq_len: torch.Tensor = None) -> tuple:
    """The model's attention bias and read-out positions from its inputs: (``key_padding_bias(
    item_seq > 0)`` in float32 as the published ``(item == 0) * -10000`` computes it, and
    ``item_seq_len - 1`` as int64, or None without lengths).

    item_seq: (batch, seq_len) integer ids, 0 = padding; item_seq_len: (batch,) or None
    -> ((batch, 1, 1, seq_len) float32, (batch,) int64 | None)
    """
    bias = ((item_seq == 0) * PADDING_BIAS).to(torch.float32)[:, None, None, :]
    return bias, None if item_seq_len is None else item_seq_len.long() - 1


def attention_context_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                          dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """``drop(softmax(q k^T / sqrt(d) + key_bias)) v``, bidirectional (no causal mask).

    q, k, v: (batch, heads, seq_len, head_dim); key_bias: (batch, 1, 1, seq_len).
    Returns (batch, heads, seq_len, head_dim).
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias.to(q.dtype),
                                          dropout_p=dropout_p if training else 0.0)


def seasonal_gate_ref(context: torch.Tensor, value: torch.Tensor, gate_weight: torch.Tensor,
                      gate_bias: torch.Tensor) -> torch.Tensor:
    """The GRU-like gate of the seasonal branch.

    ``r, i = split([value, context] @ gate_weight^T + gate_bias)``;
    ``out = (1 - sigmoid(i)) * context + sigmoid(i) * gelu(context + sigmoid(r) * value)``.
    context, value: (batch, heads, seq_len, head_dim); gate_weight: (2*head_dim, 2*head_dim),
    gate_bias: (2*head_dim,), shared by all heads. Returns context's shape.
    """
    head_dim = value.shape[-1]
    # [v, c] @ W^T + b as (v @ W[:, :d]^T + b) + c @ W[:, d:]^T: [v, c] is never materialised
    # (out of place, so that autocast casts both products alike)
    gates = torch.addmm(gate_bias, value.reshape(-1, head_dim), gate_weight[:, :head_dim].t())
    gates = torch.addmm(gates, context.reshape(-1, head_dim), gate_weight[:, head_dim:].t())
    reset, update = torch.sigmoid(gates).view(*context.shape[:-1], 2 * head_dim).chunk(2, dim=-1)
    candidate = F.gelu(torch.addcmul(context, reset, value))
    return torch.lerp(context, candidate, update)


def gated_attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                        gate_weight: torch.Tensor, gate_bias: torch.Tensor, dropout_p: float = 0.0,
                        training: bool = False) -> torch.Tensor:
    """The seasonal branch's attention: ``seasonal_gate_ref(attention_context_ref(...), v, ...)``.

    q, k, v: (batch, heads, seq_len, head_dim) -> (batch, heads, seq_len, head_dim).
    """
    return seasonal_gate_ref(attention_context_ref(q, k, v, key_bias, dropout_p, training), v, gate_weight, gate_bias)


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, seq_len, hidden) -> (batch, heads, seq_len, hidden // heads), head-major along hidden."""
    batch, seq_len, hidden = x.shape
    return x.view(batch, seq_len, n_heads, hidden // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, seq_len, head_dim) -> (batch, seq_len, heads * head_dim)."""
    batch, heads, seq_len, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq_len, heads * head_dim)


def take_rows(x: torch.Tensor, rows) -> torch.Tensor:
    """x[b, rows[b]] as (batch, 1, hidden); ``rows=None`` returns x unchanged.

    The model reads each sequence's hidden state at one position (its last item), and
    every op after the last layer's position-mixing steps is row-wise, so that layer
    only computes those rows. x: (batch, seq_len, hidden); rows: (batch,) int64.
    """
    if rows is None:
        return x
    return x.gather(1, rows.view(-1, 1, 1).expand(-1, 1, x.shape[-1]))
