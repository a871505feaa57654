"""The attention's key-padding bias and each sequence's last position (SPEC section 4's mask and
the read-out position), from the item ids and lengths: its Triton custom op and the public op
``padding_bias``. No gradient flows through either (ids and lengths are integers)."""

from typing import Optional

import torch

from .. import backends
from ..reference.padding_bias import padding_bias_ref
from ._checks import check_tensors
from ._custom_op import custom_op

INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


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
    if item_seq_len is not None and item_seq_len.device != item_seq.device:
        return f"item_seq on {item_seq.device} and item_seq_len on {item_seq_len.device}: one device"
    return None


backends.register("padding_bias", padding_bias_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


def padding_bias(item_seq: torch.Tensor, item_seq_len: torch.Tensor = None) -> tuple:
    """See ``asrec.reference.padding_bias_ref``. item_seq: (batch, seq_len) integer ids
    (0 = padding); item_seq_len: optional (batch,) integer lengths -> (key bias (batch, 1, 1,
    seq_len) float32, last positions ``item_seq_len - 1`` (batch,) int64, or None without lengths)."""
    check_tensors("padding_bias", item_seq=item_seq)
    if item_seq.dim() != 2 or item_seq.dtype not in INTEGER_DTYPES:
        raise ValueError(f"padding_bias: item_seq must be a (batch, seq_len) integer tensor, got shape "
                         f"{tuple(item_seq.shape)} of {item_seq.dtype}")
    if item_seq_len is not None:
        check_tensors("padding_bias", item_seq_len=item_seq_len)
        if item_seq_len.shape != (item_seq.shape[0],) or item_seq_len.dtype not in INTEGER_DTYPES:
            raise ValueError(f"padding_bias: item_seq_len must be a ({item_seq.shape[0]},) integer tensor, got shape "
                             f"{tuple(item_seq_len.shape)} of {item_seq_len.dtype}")
    args = (item_seq, item_seq_len)
    return backends.dispatch("padding_bias", item_seq.device, *args)(*args)
