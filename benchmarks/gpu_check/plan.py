"""What the GPU check runs, in one place: the shapes, batches and precisions that every step
uses, so the warm-up compiles exactly the Triton launches the later steps make (Triton
specialises a launch on its constexprs, dtypes, integers equal to 1 or divisible by 16 and
16-byte pointer alignment: same shapes, dtypes and batch give the same compiled kernels).

Real run: the two published settings at the benchmark's batch (256) and one odd shape
(non-power-of-two sequence length, hidden size and head size, odd batch). Dry run (CPU,
Triton's interpreter): the same structure at tiny sizes, one layer, batch 2.
"""

from dataclasses import dataclass, field

import torch

from asrec.bench.settings import SETTINGS

# torch.set_float32_matmul_precision: IEEE products / TF32 in the GEMM-like kernels
PRECISIONS = ("highest", "high")


def precisions(dry_run: bool) -> tuple:
    """Both on a GPU; "highest" only in the dry run: Triton's interpreter computes every tl.dot
    in IEEE float32 whatever the precision asks, so a "high" pass would repeat the same sums."""
    return PRECISIONS[:1] if dry_run else PRECISIONS


@dataclass(frozen=True)
class Shape:
    """One model configuration and its batch. ``bench``: the published settings, which the
    bench, device-time, graph and launch steps also run; the odd shape is exactness only."""
    name: str
    config: dict = field(hash=False)
    batch: int
    bench: bool = True


def shapes(dry_run: bool) -> list:
    if dry_run:
        # one layer: the last layer is the first, so every op (take_rows included) still runs
        return [Shape("ml-100k", dict(n_items=20, max_seq_length=4, hidden_size=8, n_heads=2, inner_size=8,
                                      n_layers=1, fsm_mix=1.0), 2),
                Shape("ml-1m", dict(n_items=20, max_seq_length=5, hidden_size=4, n_heads=1, inner_size=4,
                                    n_layers=1, fsm_mix=0.4), 2)]
    return [Shape("ml-100k", dict(SETTINGS["ml-100k"]), 256),
            Shape("ml-1m", dict(SETTINGS["ml-1m"]), 256),
            # N, H, head size (20) and batch none a power of two; A between the published 0.4 and 1.0
            Shape("odd", dict(n_items=101, max_seq_length=37, hidden_size=40, n_heads=2, inner_size=72, n_layers=2,
                              fsm_mix=0.7), 7, bench=False)]


def bench_shapes(dry_run: bool) -> list:
    return [s for s in shapes(dry_run) if s.bench]


def device(dry_run: bool) -> torch.device:
    return torch.device("cpu" if dry_run or not torch.cuda.is_available() else "cuda")


def model_and_batch(shape: Shape, dev: torch.device, seed: int = 0):
    """A model of ``shape`` (check_values=False: no host reads, as graphs need) and a batch of
    left-aligned sequences with lengths 1..N (the shortest and the longest included)."""
    import asrec

    torch.manual_seed(seed)
    model = asrec.ASRecModel(**shape.config, check_values=False).to(dev)
    with torch.no_grad():  # move every parameter off its initial value (zero biases, unit norms, ...)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    generator = torch.Generator().manual_seed(seed + 1)
    n, n_items = shape.config["max_seq_length"], shape.config["n_items"]
    lengths = torch.randint(1, n + 1, (shape.batch,), generator=generator)
    lengths[0], lengths[-1] = 1, n
    items = torch.randint(1, n_items, (shape.batch, n), generator=generator)
    items = items * (torch.arange(n)[None, :] < lengths[:, None])
    targets = torch.randint(1, n_items, (shape.batch,), generator=generator)
    return model, items.to(dev), lengths.to(dev), targets.to(dev)


def fused_backends(op: str) -> list:
    """The fused backends that have a kernel for ``op`` (from the dispatch table, installed or not)."""
    import asrec

    return [b for b in asrec.backends.FUSED_BACKENDS
            if asrec.backends.plan(op, "cuda", selection=b).backend != "reference"]
