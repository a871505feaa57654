"""Recommendations per second on the CPU: the eager model (``ASRecModel.recommend``) against
its AOTInductor package (``asrec.serve.export_recommender``), side by side in one run.

The users are ml-100k's 943, each with the history evaluation ranks for (the test split's),
in batches of --batch-size (the published eval batch, 256). Each published setting
(``asrec.bench.settings``) gives the architecture; the catalog is ml-100k's at both (the
ml-1m setting's own 3,706 items would not match these users). The weights are a fresh
initialisation (seed 0): the work does not depend on their values. Rounds alternate eager
and package, so load from other processes falls on both alike; the ratio is the figure to
quote on a shared machine.

    PYTHONPATH=. python benchmarks/bench_export.py [--data-path ../shared/data/ml-100k] [--rounds 5]

(PYTHONPATH=.: the checkout's asrec, not an installed one.)
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch

from asrec.bench.settings import SETTINGS
from asrec.data.load import load_dataset
from asrec.data.preprocess import padded_batch
from asrec.model import ASRecModel
from asrec.serve import export_recommender


def user_batches(data_path: str, max_seq_length: int, batch_size: int) -> list:
    """[(item_seq (b, N), item_seq_len (b,))] over the test split's histories; and n_items."""
    data, _, _ = load_dataset("ml-100k", data_path, max_seq_length, progress=None)
    samples = data.test
    batches = []
    for start in range(0, len(samples), batch_size):
        index = np.arange(start, min(start + batch_size, len(samples)))
        item_seq, item_seq_len, _ = padded_batch(data.items, samples, index, max_seq_length)
        batches.append((torch.from_numpy(item_seq), torch.from_numpy(item_seq_len)))
    return batches, data.n_items + 1, len(samples)


def timed(run, batches) -> tuple:
    start = time.perf_counter()
    outputs = [run(item_seq, item_seq_len) for item_seq, item_seq_len in batches]
    return time.perf_counter() - start, outputs


def bench_setting(name: str, args, folder: str) -> dict:
    architecture = {key: value for key, value in SETTINGS[name].items() if key != "n_items"}
    batches, n_items, users = user_batches(args.data_path, architecture["max_seq_length"], args.batch_size)
    torch.manual_seed(0)
    model = ASRecModel(n_items=n_items, **architecture).eval()
    start = time.perf_counter()
    package_path = export_recommender(model, os.path.join(folder, f"{name}.pt2"), args.k)
    compile_s = time.perf_counter() - start
    package = torch._inductor.aoti_load_package(package_path)

    def eager(item_seq, item_seq_len):
        return model.recommend(item_seq, item_seq_len, args.k)

    timed(eager, batches[:1])  # warm-up: the DFT matrices, allocator, first-call setup
    timed(package, batches[:1])
    eager_s, package_s = [], []
    for _ in range(args.rounds):
        seconds, eager_out = timed(eager, batches)
        eager_s.append(seconds)
        seconds, package_out = timed(package, batches)
        package_s.append(seconds)
    ids_equal = sum(int((a[1] == b[1]).all(dim=1).sum()) for a, b in zip(eager_out, package_out)) / users
    score_diff = max(float((a[0] - b[0]).abs().max()) for a, b in zip(eager_out, package_out))
    eager_rate, package_rate = users / statistics.median(eager_s), users / statistics.median(package_s)
    return dict(setting=name, users=users, n_items=n_items, compile_s=compile_s, eager_rate=eager_rate,
                package_rate=package_rate, eager_spread=(users / max(eager_s), users / min(eager_s)),
                package_spread=(users / max(package_s), users / min(package_s)), ids_equal=ids_equal,
                score_diff=score_diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-path", default=os.path.join("..", "shared", "data", "ml-100k"))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, k={args.k}, batch {args.batch_size}, "
          f"{args.rounds} rounds (median; min-max in brackets)")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.settings:
            r = bench_setting(name, args, folder)
            print(f"{r['setting']:8} {r['users']} users, {r['n_items'] - 1} items: "
                  f"eager {r['eager_rate']:7.0f} rec/s [{r['eager_spread'][0]:.0f}-{r['eager_spread'][1]:.0f}], "
                  f"package {r['package_rate']:7.0f} rec/s [{r['package_spread'][0]:.0f}-"
                  f"{r['package_spread'][1]:.0f}], package/eager {r['package_rate'] / r['eager_rate']:.2f}x; "
                  f"compile {r['compile_s']:.0f} s; ids equal for {r['ids_equal']:.1%} of users, "
                  f"max |score diff| {r['score_diff']:.1e}", flush=True)


if __name__ == "__main__":
    main()
