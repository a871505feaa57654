"""From ``--dataset`` / ``--data-path`` to a preprocessed ``SequentialData``."""

import glob
import os
import sys
from typing import Optional

from . import synthetic
from .atomic import read_interactions
from .download import fetch_dataset
from .preprocess import build_sequences
from .registry import DATASETS, DatasetInfo, default_cache_dir

SYNTHETIC = "synthetic"


def find_inter_file(data_path: str, dataset: Optional[str]) -> str:
    """A .inter file given directly, or the one in a folder: with a known ``dataset``, its own
    file (``ml-100k.inter``), since the split's settings follow the dataset's name; else the
    folder's only .inter file."""
    if os.path.isfile(data_path):
        return data_path
    if not os.path.isdir(data_path):
        raise FileNotFoundError(f"--data-path: {data_path} is neither a file nor a folder")
    candidates = sorted(glob.glob(os.path.join(data_path, "*.inter")))
    if dataset in DATASETS:
        expected = DATASETS[dataset].inter_file
        named = [c for c in candidates if os.path.basename(c) == expected]
        if not named:
            found = ", ".join(os.path.basename(c) for c in candidates) or "no .inter file"
            raise FileNotFoundError(f"--data-path: {data_path} has no {expected} for --dataset {dataset} (found "
                                    f"{found}); pass a file's path to use it under its own name's settings")
        candidates = named
    if len(candidates) != 1:
        found = ", ".join(os.path.basename(c) for c in candidates) or "none"
        raise FileNotFoundError(f"--data-path: expected one .inter file in {data_path}, found {found}")
    return candidates[0]


def infer_dataset_name(path: str) -> Optional[str]:
    """The registry name whose .inter file this is, if any."""
    base = os.path.basename(path)
    return next((name for name, info in DATASETS.items() if info.inter_file == base), None)


def load_dataset(dataset: Optional[str], data_path: Optional[str], max_seq_length: int,
                 cache_dir: Optional[str] = None, synthetic_options: Optional[dict] = None,
                 progress=sys.stderr, min_interactions: int = 5) -> tuple:
    """Returns (SequentialData, dataset name or None, a description of the source).

    The split is RecBole 1.2.1's for the dataset's published settings (``DATASETS``): a
    file of another name gets RecBole's defaults for a dataset without a preset.
    ``min_interactions``: users and items with fewer interactions are filtered out
    (the published 5 is RecBole's ``(4, inf)``).
    """
    if dataset == SYNTHETIC:
        raw = synthetic.generate(**(synthetic_options or {}))
        source = f"synthetic generator {synthetic_options or {}}"
        info = None
    else:
        if data_path is None:
            if dataset is None:
                raise ValueError("give --dataset NAME or --data-path PATH")
            if dataset not in DATASETS:
                raise ValueError(f"--dataset: unknown {dataset!r}; choose from {', '.join(DATASETS)}, {SYNTHETIC}")
            path = fetch_dataset(DATASETS[dataset], cache_dir or default_cache_dir(), progress)
        else:
            path = find_inter_file(data_path, dataset)
            dataset = dataset or infer_dataset_name(path)
        info = DATASETS.get(dataset) or DatasetInfo(dataset or "custom", "", os.path.basename(path))
        raw = read_interactions(path, info.user_field, info.item_field, info.time_field)
        source = path
    if info is not None and info.min_time is not None:
        recent = raw["time"] >= info.min_time
        raw = {key: value[recent] for key, value in raw.items()}
    normalize_time = info is not None and info.normalize_time
    data = build_sequences(raw["user"], raw["item"], raw["time"], max_seq_length, min_interactions, normalize_time)
    return data, dataset, source
