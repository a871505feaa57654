"""Splitting the hidden axis into attention heads and merging it back (head-major, as the
published code's ``view``/``permute``)."""

import torch


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, seq_len, hidden) -> (batch, heads, seq_len, hidden // heads), head-major along hidden."""
    batch, seq_len, hidden = x.shape
    return x.view(batch, seq_len, n_heads, hidden // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, seq_len, head_dim) -> (batch, seq_len, heads * head_dim)."""
    batch, heads, seq_len, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq_len, heads * head_dim)
