"""RecBole's Trainer with ``asrec.recbole.ASRec`` on ml-100k (run in RecBole's venv):

1. ``asrec train`` (a small model, ``--epochs`` 1 by default) writes ``best_original.pth``,
   the published state_dict; RecBole's ``Trainer.evaluate`` of that checkpoint loaded
   into ``ASRec`` on RecBole's own valid and test data gives ``asrec train``'s metrics;
2. ``asrec.recbole.run`` trains the class with RecBole's Trainer (one epoch), saves a
   RecBole checkpoint with the published keys and evaluates it.

    python tests/recbole/check_trainer.py --data-path ../shared/data/ml-100k

Exits 1 when a metric differs by more than 1e-9 or the run fails.
"""

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile

import torch

from asrec import checkpoint
from asrec.recbole import ASRec, published_config, run

# a small model, short histories and large training batches keep each epoch short on 2 CPU cores
# (the published N=50 samples are compared one by one in compare_splits.py)
SMALL = {"hidden_size": 16, "inner_size": 16, "n_heads": 2, "max_seq_length": 20}
TRAIN_BATCH = 1024


def recbole_small() -> dict:
    """SMALL in RecBole's config keys."""
    return {("MAX_ITEM_LIST_LENGTH" if key == "max_seq_length" else key): value for key, value in SMALL.items()}


def asrec_train(data_path: str, folder: str, epochs: int) -> dict:
    os.makedirs(folder)
    command = [sys.executable, "-m", "asrec", "train", "--data-path", os.path.abspath(data_path), "--preset", "ml-100k",
               "--epochs", str(epochs), "--batch-size", str(TRAIN_BATCH), "--output", folder, "--quiet"]
    command += [arg for key, value in SMALL.items() for arg in ("--" + key.replace("_", "-"), str(value))]
    subprocess.run(command, check=True, cwd=folder)  # not the checkout's root: the installed asrec runs
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)


def recbole_evaluate(data_path: str, state_dict: dict) -> dict:
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    config = Config(model=ASRec, dataset="ml-100k",
                    config_dict=published_config("ml-100k", {**recbole_small(), "metric_decimal_place": 15}))
    config["data_path"] = os.path.abspath(data_path)
    init_seed(config["seed"], config["reproducibility"])
    _, valid_data, test_data = data_preparation(config, create_dataset(config))
    model = ASRec(config, valid_data._dataset).to(config["device"])
    model.load_state_dict(state_dict)
    trainer = Trainer(config, model)
    return {split: trainer.evaluate(data, load_best_model=False, show_progress=False)
            for split, data in (("valid", valid_data), ("test", test_data))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", required=True, help="the folder holding ml-100k.inter")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the asrec train run")
    args = parser.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        ours = asrec_train(args.data_path, os.path.join(tmp, "asrec-run"), args.epochs)
        logging.disable(logging.INFO)
        published = torch.load(os.path.join(tmp, "asrec-run", "best_original.pth"), map_location="cpu")
        theirs = recbole_evaluate(args.data_path, published)
        for split in ("valid", "test"):
            worst = max(abs(ours[split][key] - float(theirs[split][key])) for key in ours[split])
            print(f"{split}: asrec train hit@20 {ours[split]['hit@20']:.6f} ndcg@20 {ours[split]['ndcg@20']:.6f}; "
                  f"RecBole Trainer on the checkpoint hit@20 {float(theirs[split]['hit@20']):.6f} "
                  f"ndcg@20 {float(theirs[split]['ndcg@20']):.6f}; largest difference over 12 metrics {worst:.1e}")
            if set(ours[split]) != set(theirs[split]) or worst > 1e-9:
                failures.append(f"{split} metrics differ: asrec {ours[split]}, RecBole {dict(theirs[split])}")

        folder = os.path.join(tmp, "recbole-run")
        result = run("ml-100k", data_path=args.data_path,
                     config_dict={**recbole_small(), "epochs": 1, "train_batch_size": TRAIN_BATCH, "checkpoint_dir": folder,
                                  "show_progress": False})
        saved = [os.path.join(folder, name) for name in os.listdir(folder)]
        state = torch.load(saved[0], map_location="cpu", weights_only=False)["state_dict"]
        test = {k: float(v) for k, v in result["test_result"].items()}
        print(f"RecBole Trainer, 1 epoch of asrec.recbole.ASRec: valid hit@20 "
              f"{float(result['best_valid_result']['hit@20']):.4f}, test {test}")
        if list(state) != [name for name, _ in checkpoint.name_map(2)]:
            failures.append("RecBole's checkpoint does not have the published state_dict keys")
        if len(test) != 12 or not all(math.isfinite(v) for v in test.values()):
            failures.append(f"RecBole's run gave test results {test}")
    for line in failures:
        print("FAILED:", line)
    print("RecBole Trainer checks: " + ("passed" if not failures else "FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
