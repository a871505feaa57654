"""A trained run's metrics under both frequency-filter scopes: what ``asrec recommend
--filter-scope sequence`` changes.

    python benchmarks/filter_scope_metrics.py RUN [--device cpu]

Re-reads the run's data (config.json), loads its best.pt once per scope and evaluates valid
and test as ``asrec train`` does (full ranking, the run's eval batch size and batch order);
prints a table and one JSON line.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asrec.data import load_dataset  # noqa: E402
from asrec.serve import load_run_model, read_config  # noqa: E402
from asrec.train.distributed import Runtime  # noqa: E402
from asrec.train.evaluate import evaluate  # noqa: E402

KEYS = [f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (5, 10, 20)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = read_config(args.run)
    synthetic = dict(n_users=config.get("synthetic_users"), n_items=config.get("synthetic_items"))
    data, _, source = load_dataset(config["dataset"], config["data_path"], config["max_seq_length"],
                                   synthetic_options=synthetic, min_interactions=config["min_interactions"])
    runtime = Runtime(0, 1, torch.device(args.device))
    results = {}
    for scope in ("batch", "sequence"):
        model = load_run_model(args.run, runtime.device, scope)
        results[scope] = {split: evaluate(model, data, split, config["eval_batch_size"], runtime)
                          for split in ("valid", "test")}
    print(f"run {args.run} (trained with filter_scope {config.get('filter_scope', 'batch')}), data {source}, "
          f"eval batch size {config['eval_batch_size']}")
    print(f"{'metric':<9}" + "".join(f"{s + ' ' + scope:>16}" for s in ("valid", "test")
                                     for scope in ("batch", "sequence")))
    for key in KEYS:
        print(f"{key:<9}" + "".join(f"{results[scope][s][key]:>16.4f}" for s in ("valid", "test")
                                    for scope in ("batch", "sequence")))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
