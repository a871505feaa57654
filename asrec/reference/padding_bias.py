"""The attention's key-padding bias and each sequence's read-out position (SPEC section 4's
mask and the model's last item), from the item ids and lengths."""

import torch

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
