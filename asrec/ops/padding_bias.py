"""The attention's key-padding bias and each sequence's last position (SPEC section 4's mask and
the read-out position), from the item ids and lengths: its Triton custom op and the public op
``padding_bias``. No gradient flows through either (ids and lengths are integers)."""

from typing import Optional

import torch

from .. import backends
from ..reference.padding_bias import padding_bias_ref
from . import _contract
from ._custom_op import custom_op


@custom_op("asrec::padding_bias")
def padding_bias_op(item_seq: torch.Tensor, item_seq_len: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (bias (B, N) float32, last positions (B,) int64; empty without lengths)."""
    from ..kernels.padding_bias import _padding_bias as launch

    bias, last = launch(item_seq, item_seq_len)
    return bias, last if last is not None else item_seq.new_empty(0, dtype=torch.int64)


@padding_bias_op.register_fake
def padding_bias_fake(item_seq, item_seq_len):
    return (item_seq.new_empty(item_seq.shape, dtype=torch.float32),
            item_seq.new_empty(item_seq.shape[0] if item_seq_len is not None else 0, dtype=torch.int64))


def _triton(item_seq, item_seq_len=None):
    bias, last = padding_bias_op(item_seq.contiguous(), None if item_seq_len is None else item_seq_len.contiguous())
    return bias[:, None, None, :], last if item_seq_len is not None else None


def _triton_unsupported(item_seq, item_seq_len=None):
    return None  # any integer ids and lengths (the contract holds one device)


backends.register("padding_bias", padding_bias_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


def padding_bias(item_seq: torch.Tensor, item_seq_len: torch.Tensor = None) -> tuple:
    """See ``asrec.reference.padding_bias_ref``. item_seq: (batch, seq_len) integer ids
    (0 = padding); item_seq_len: optional (batch,) integer lengths -> (key bias (batch, 1, 1,
    seq_len) float32, last positions ``item_seq_len - 1`` (batch,) int64, or None without lengths)."""
    _contract.check_padding_bias(item_seq, item_seq_len)
    args = (item_seq, item_seq_len)
    return backends.dispatch("padding_bias", item_seq.device, *args)(*args)
