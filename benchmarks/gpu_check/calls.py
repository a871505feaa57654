"""The leaf-op calls each step makes, per shape, recorded on the reference backend.

Groups (``GROUPS``):
- ``loss``: the model's loss and its backward in eval mode (dropout off: the only training
  step two backends can agree on exactly): what the exactness suite checks;
- ``scores``: the eval forward (full-sort scores under no_grad);
- ``standalone``: the registered ops the model does not call itself (it runs the fused
  hybrid attention, the grouped filter and the tiled loss), built from the public ops at the
  shape's sizes;
- ``dropout``: the training step in train mode (dropout on): graphs, bench, launch counts;
- ``bench-ops``: the op rows of ``asrec bench`` (``asrec.bench.cases``): device time per op.
The warm-up replays all of them on "triton"; the later steps make the same calls.
"""

import torch

import asrec

from . import plan
from .recording import recording, top_level

EXACTNESS_GROUPS = ("loss", "scores", "standalone")
BENCH_GROUPS = ("dropout", "bench-ops")


def _record(fn) -> list:
    with recording() as calls, asrec.use_backend("reference"):
        fn()
    return top_level(calls)


def _standalone(shape: plan.Shape, dev: torch.device) -> None:
    """One call of each registered op the model leaves out, with random inputs of the shape's sizes."""
    from asrec import ops

    config = shape.config
    batch, n, hidden, heads = shape.batch, config["max_seq_length"], config["hidden_size"], config["n_heads"]
    d = hidden // heads
    generator = torch.Generator().manual_seed(2)

    def randn(*size, scale=1.0):
        return (scale * torch.randn(*size, generator=generator)).to(dev).requires_grad_()

    lengths = torch.randint(1, n + 1, (batch,), generator=generator)
    lengths[0] = n
    valid = (torch.arange(n)[None, :] < lengths[:, None]).to(dev)
    key_bias = asrec.reference.key_padding_bias(valid, torch.float32)
    q, k, v = (randn(batch, heads, n, d) for _ in range(3))
    ops.attention(q, k, v, key_bias)
    ops.gated_attention(q, k, v, key_bias, randn(2 * d, 2 * d, scale=(2 * d) ** -0.5), randn(2 * d, scale=0.1))
    ops.fourier_smoothing(randn(batch, n, hidden), randn(1, scale=0.5), randn(1, 1, hidden, scale=0.1),
                          randn(1, 1, hidden, scale=0.5), float(config.get("fsm_mix", 1.0)))
    norm_weight, norm_bias = 1 + randn(hidden, scale=0.1), randn(hidden, scale=0.1)
    ops.frequency_filter(randn(batch, n, hidden), torch.tensor(0.8, device=dev), norm_weight, norm_bias, 1e-12)
    # the materialised loss over full-sort scores (the model's loss is the tiled linear_cross_entropy)
    n_items = config["n_items"]
    ops.cross_entropy(randn(batch, n_items), torch.randint(0, n_items, (batch,), generator=generator).to(dev))
    # the evaluation's ranks and recommend's top-k over the catalog, the shape's history excluded;
    # small integer values: every score exact in any precision (TF32 too), so the ids and ranks
    # must equal the float64 reference's, ties included
    scored, catalog = (torch.randint(-2, 3, size, generator=generator).float().to(dev)
                       for size in ((batch, hidden), (n_items, hidden)))
    ops.target_ranks(scored, catalog, torch.randint(1, n_items, (batch,), generator=generator).to(dev))
    ops.top_items(scored, catalog, 10, torch.randint(0, n_items, (batch, n), generator=generator).to(dev))


def _bench_ops(shape: plan.Shape, dev: torch.device) -> None:
    """Each op row of ``asrec bench`` once, forward and forward+backward (their reference runs)."""
    from asrec.bench.cases import build_cases

    for case in build_cases(shape.name, shape.config, shape.batch, dev, torch.float32, compile_reference=False):
        if case.target != "model":
            case.run["reference"]()


def record(group: str, shape: plan.Shape, dev: torch.device) -> list:
    """The top-level leaf-op calls of ``group`` at ``shape`` (see the module docstring)."""
    if group == "standalone":
        return _record(lambda: _standalone(shape, dev))
    if group == "bench-ops":
        return _record(lambda: _bench_ops(shape, dev))
    model, items, lengths, targets = plan.model_and_batch(shape, dev)
    if group == "loss":
        model.eval()
        return _record(lambda: model.loss(items, lengths, targets))
    if group == "dropout":
        model.train()
        return _record(lambda: model.loss(items, lengths, targets))
    if group == "scores":
        model.eval()

        def scores():
            with torch.no_grad():
                model.full_sort_scores(items, lengths)
        return _record(scores)
    raise ValueError(f"unknown call group {group!r}")
