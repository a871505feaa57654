"""RecBole 1.2.1's data preparation against asrec's, sample by sample (run in RecBole's venv).

    python tests/recbole/compare_splits.py --data-path ../shared/data/ml-100k

For ml-100k (the shared file) and for a generated file under each other dataset's name (its
published settings: fields, yelp's time window, no time normalisation; times drawn so that
float32 ties and near-ties abound, file order shuffled, a missing id and time), builds
RecBole's train/valid/test data with the published config and compares with asrec's
``load_dataset``: the id <-> token maps, every sample's user, history (in order), length and
target, split by split in RecBole's order, and every evaluation batch RecBole's loaders
yield. Prints one line per dataset and exits 1 on any difference.
"""

import argparse
import logging
import os
import sys
import tempfile
from unittest import mock

import numpy as np

from asrec.data import load_dataset, padded_batch, preprocess
from asrec.data.registry import DATASETS
from asrec.recbole import ASRec, published_config


def recbole_splits(dataset: str, folder: str, overrides: dict):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    config = Config(model=ASRec, dataset=dataset, config_dict=published_config(dataset, overrides))
    config["data_path"] = os.path.abspath(folder)  # RecBole would read its own copy of ml-100k
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    return config, data, data_preparation(config, data)


def sample_arrays(recbole_data, config, split_data) -> tuple:
    feat = split_data._dataset.inter_feat
    item = config["ITEM_ID_FIELD"]
    return (feat[config["USER_ID_FIELD"]].numpy(), feat[item + config["LIST_SUFFIX"]].numpy(),
            feat[config["ITEM_LIST_LENGTH_FIELD"]].numpy(), feat[item].numpy())


def differing_samples(ours, recbole_data, config, loaders, max_seq_length: int) -> dict:
    """Per split: the number of samples whose user, history, length or target differ."""
    counts = {}
    for split, loader in zip(("train", "valid", "test"), loaders):
        samples = getattr(ours, split)
        user, seq, length, target = sample_arrays(recbole_data, config, loader)
        if len(samples) != len(target):
            counts[split] = f"{len(samples)} samples instead of {len(target)}"
            continue
        our_seq, our_length, our_target = padded_batch(ours.items, samples, np.arange(len(samples)), max_seq_length)
        differs = (samples.user != user) | (our_length != length) | (our_target != target) | (our_seq != seq).any(1)
        counts[split] = int(differs.sum())
    return counts


def compare(dataset: str, folder: str, max_seq_length: int) -> list:
    """Differences between RecBole and asrec on ``folder/<dataset>.inter`` (empty: identical)."""
    config, recbole_data, loaders = recbole_splits(dataset, folder, {"MAX_ITEM_LIST_LENGTH": max_seq_length})
    path = os.path.join(folder, f"{dataset}.inter")
    ours, _, _ = load_dataset(dataset, path, max_seq_length)
    # asrec before the exact split ordered by the float64 times (a missing time: the mean)
    float64_key = lambda times, normalize=False: np.where(np.isnan(times), np.nanmean(times), times)  # noqa: E731
    with mock.patch.object(preprocess, "recbole_time_key", float64_key):
        before, _, _ = load_dataset(dataset, path, max_seq_length)
    problems = []
    user_field, item_field = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
    for name, tokens in (("item", ours.item_tokens), ("user", ours.user_tokens)):
        theirs = recbole_data.field2id_token[item_field if name == "item" else user_field]
        if len(theirs) != len(tokens) or (np.asarray(theirs) != tokens).any():
            problems.append(f"{name} id -> token maps differ ({len(theirs)} vs {len(tokens)} ids)")
    if problems:
        return problems
    counts = differing_samples(ours, recbole_data, config, loaders, max_seq_length)
    problems += [f"{split}: {n} samples differ" for split, n in counts.items() if n != 0]
    for split, loader in zip(("valid", "test"), loaders[1:]):
        # evaluation batches as RecBole's full-sort loader yields them: consecutive slices
        samples, start = getattr(ours, split), 0
        for batch in loader:
            interaction = batch[0]
            index = np.arange(start, start + len(interaction))
            if index[-1] >= len(samples):
                problems.append(f"{split}: RecBole's loader yields more than {len(samples)} samples")
                break
            seq, length, target = padded_batch(ours.items, samples, index, max_seq_length)
            if not (np.array_equal(seq, interaction[item_field + config["LIST_SUFFIX"]].numpy())
                    and np.array_equal(length, interaction[config["ITEM_LIST_LENGTH_FIELD"]].numpy())
                    and np.array_equal(target, interaction[item_field].numpy())):
                problems.append(f"{split}: the evaluation batch of samples {start}..{index[-1]} differs")
            start += len(interaction)
        if start != len(samples):
            problems.append(f"{split}: RecBole's loader yielded {start} samples of {len(samples)}")
    sizes = {split: len(getattr(ours, split)) for split in ("train", "valid", "test")}
    print(f"{dataset}: {ours.n_users} users, {ours.n_items} items, {len(ours.items)} interactions, "
          f"samples {sizes}: {'identical' if not problems else 'DIFFERENT'}")
    if not problems:
        print(f"  (ordered by float64 times, as asrec did before, these samples would differ: "
              f"{differing_samples(before, recbole_data, config, loaders, max_seq_length)})")
    return problems


def generate(dataset: str, folder: str, seed: int) -> None:
    """A file under ``dataset``'s name and fields with float32 ties, near-ties and gaps."""
    info = DATASETS[dataset]
    rng = np.random.default_rng(seed)
    n_users, n_items = 120, 60
    rows = []
    base = 1.55e9 if info.min_time else 1.3e9
    for user in range(n_users):
        # clustered times: many closer than float32's 128 s step at 1.3e9, some exactly equal
        length = int(rng.integers(2, 40))
        times = base + np.sort(rng.integers(0, 200, length)).cumsum() + rng.integers(0, 3, length) * 3e5
        if info.min_time:  # part of each history before the published window
            times = times - rng.integers(0, 2) * 0.6e8
        for t in times:
            rows.append((f"u{user}", f"i{int(rng.zipf(1.3)) % n_items}", int(rng.integers(1, 6)), f"{t:.0f}"))
    order = rng.permutation(len(rows))
    rows = [rows[k] for k in order]
    # a missing user id or a missing item id, not both: RecBole 1.2.1 drops NaN ids by
    # position after the first drop has shifted them, so with both it drops other rows
    if seed % 2:
        rows[3] = ("NA",) + rows[3][1:]
    else:
        rows[5] = rows[5][:1] + ("",) + rows[5][2:]
    rows[7] = rows[7][:3] + ("",)                        # a missing time (RecBole: the mean)
    rating = "stars" if dataset == "yelp" else "rating"
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{dataset}.inter"), "w") as f:
        f.write(f"{info.user_field}:token\t{info.item_field}:token\t{rating}:float\t{info.time_field}:float\n")
        for row in rows:
            f.write("\t".join(str(v) for v in row) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", required=True, help="the folder holding ml-100k.inter")
    parser.add_argument("--no-generated", action="store_true", help="only ml-100k")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # RecBole logs each dropped NaN id
    problems = {"ml-100k": compare("ml-100k", args.data_path, 50)}
    if not args.no_generated:
        with tempfile.TemporaryDirectory() as tmp:
            for seed, dataset in enumerate(d for d in DATASETS if d != "ml-100k"):
                folder = os.path.join(tmp, dataset)
                generate(dataset, folder, seed)
                problems[dataset] = compare(dataset, folder, 200 if dataset == "ml-1m" else 50)
    failed = {d: p for d, p in problems.items() if p}
    for dataset, lines in failed.items():
        for line in lines:
            print(f"  {dataset}: {line}")
    print("RecBole and asrec splits: " + ("identical" if not failed else f"DIFFERENT on {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
