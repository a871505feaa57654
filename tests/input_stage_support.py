"""Inputs for the input-stage tests of every backend: the tables as gradient leaves and
padded id batches (one sequence of length 1, one of full length)."""

import torch


def input_tables(n_items, seq_len, hidden, device="cpu", dtype=torch.float32, position_rows=None):
    """The input stage's parameters as leaves: item and position tables, LayerNorm, smoothing.
    ``position_rows``: rows of the position table (default seq_len; more checks the unused rows)."""
    def leaf(*shape, scale=1.0, shift=0.0):
        return (shift + scale * torch.randn(*shape, device=device)).to(dtype).requires_grad_()
    return dict(item_weight=leaf(n_items, hidden), position_weight=leaf(position_rows or seq_len, hidden),
                norm_weight=leaf(hidden, scale=0.1, shift=1.0), norm_bias=leaf(hidden, scale=0.1),
                smoothing_logit=leaf(1, scale=0.5), init_level=leaf(1, 1, hidden, scale=0.5),
                smoothed_scale=leaf(1, 1, hidden, scale=0.5, shift=1.0))


def padded_ids(batch, seq_len, n_items, device="cpu"):
    """(batch, seq_len) left-aligned ids, 0 after each length; lengths include 1 and seq_len."""
    ids = torch.randint(1, n_items, (batch, seq_len), device=device)
    lengths = torch.randint(1, seq_len + 1, (batch,), device=device)
    lengths[0], lengths[-1] = 1, seq_len
    return torch.where(torch.arange(seq_len, device=device) < lengths[:, None], ids, 0)


def run_input_stage(backend, ids, tables, mix, grad, eps, dropout_p=0.0, training=False):
    """``asrec.ops.input_stage`` on ``backend``: (out, and the gradient of every table for ``grad``)."""
    import asrec
    from asrec.ops import input_stage

    t = tables
    with asrec.use_backend(backend):
        out = input_stage(ids, t["item_weight"], t["position_weight"], t["norm_weight"], t["norm_bias"], eps,
                          dropout_p, training, t["smoothing_logit"], t["init_level"], t["smoothed_scale"], mix)
    return (out, *torch.autograd.grad(out, list(tables.values()), grad))
