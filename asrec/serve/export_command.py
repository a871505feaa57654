"""Argument parsing and the entry point of ``asrec export``."""

import argparse
import os
import sys
import time

from ..errors import CommandError

EPILOG = """\
the package: torch._inductor.aoti_load_package(OUT) (torch alone, no asrec) returns a
callable (item_seq (B, N) int64, item_seq_len (B,) int64) -> (scores (B, K) float32,
item ids (B, K) int64), best first, equal scores to the lower id, never the padding item
0, for any batch size B; N is the run's max_seq_length, sequences are left-aligned (the
items at positions 0 .. len-1, 0 after them) and ids are the run's internal item ids
(1 .. n_items-1). It computes ASRecModel.recommend in eval mode (scores to float32
rounding). Ids or lengths out of range raise a RuntimeError.

batch-wide threshold: with the run's default --filter-scope batch, the frequency filter's
threshold is one quantile over the batch of each call, so one user's recommendations
depend on who else is in the call (as in evaluation). --filter-scope sequence exports the
same weights with a threshold per sequence: each row is scored on its own.

compiling needs a C++ compiler (and a minute or so on a small CPU).

exit status: 0 done; 2 a malformed command line; 1 a bad run folder, --k above the
catalog, an OUT that exists (without --force), or no CUDA device (one line on stderr;
ASREC_DEBUG=1 shows the traceback); 130 interrupted.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="a run folder of asrec train (its best.pt is exported)")
    parser.add_argument("out", metavar="OUT", help="the package to write, a file name ending in .pt2")
    parser.add_argument("--k", type=int, default=10, help="items per recommendation (default 10; at most the "
                                                          "run's number of real items)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the package runs (default cpu); cuda compiles asrec's reference ops into "
                             "Inductor's Triton kernels, not asrec's own fused kernels")
    parser.add_argument("--filter-scope", choices=("batch", "sequence"),
                        help="frequency-filter threshold over each call's batch or per sequence (default: the "
                             "run's own, batch unless trained otherwise)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def main(parser: argparse.ArgumentParser, args) -> int:
    if args.k < 1:
        parser.error(f"--k: expected a positive int, got {args.k}")
    if not args.out.endswith(".pt2"):
        parser.error(f"OUT: expected a file name ending in .pt2 (AOTInductor's package), got {args.out!r}")
    if os.path.isdir(args.out):
        raise CommandError(f"OUT: {args.out} is a folder; give a .pt2 file name")
    if os.path.exists(args.out) and not args.force:
        raise CommandError(f"OUT: {args.out} exists (remove it, choose another name, or pass --force)")

    from .export import CUDA_NOTE, export_recommender
    from .run import load_run

    model, info = load_run(args.run, args.filter_scope)
    if args.k > model.n_items - 1:
        raise CommandError(f"--k: the run's catalog has {model.n_items - 1} items (ids 1..{model.n_items - 1}); "
                           f"got --k {args.k}")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise CommandError("--device cuda: torch sees no CUDA device here (export on the machine that will "
                               "serve, or with --device cpu)")
        print(f"asrec export: note: --device cuda: {CUDA_NOTE}", file=sys.stderr)
    scope = model.config["filter_scope"]
    print(f"asrec export: compiling the epoch-{info.get('epoch')} model of {args.run} ({model.n_items - 1} items, "
          f"top {args.k}, filter scope {scope}, {args.device}) with AOTInductor...", file=sys.stderr)
    start = time.perf_counter()
    export_recommender(model, args.out, args.k, args.device)
    print(f"asrec export: wrote {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB) in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0
