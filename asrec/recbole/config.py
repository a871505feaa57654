"""The published ``run_ASRec.py`` settings as a RecBole 1.2.1 ``config_dict``, per dataset."""

from typing import Optional

from ..checkpoint import original_config
from ..data.registry import DATASETS
from ..train.presets import PRESETS

# the rating column the published run loads beside user, item and time (it decides nothing)
_RATING_FIELD = {"yelp": "stars"}


def published_config(dataset: str, overrides: Optional[dict] = None) -> dict:
    """RecBole config for ``dataset`` (one of ``asrec.data.DATASETS``) as ``run_ASRec.py`` sets
    it: fields and columns, filters ('(4, inf)' interactions, yelp's time window), the
    leave-one-out split in time order, full-ranking Hit/NDCG/MRR @ 1, 5, 10, 20 with valid
    Hit@20 and patience 10, batch sizes and the model's hyper-parameters; CE loss without
    negative sampling. ``overrides`` are applied last."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset: no published settings for {dataset!r}; choose from {', '.join(DATASETS)}")
    info, preset = DATASETS[dataset], PRESETS[dataset]
    rating = _RATING_FIELD.get(dataset, "rating")
    config = {
        "USER_ID_FIELD": info.user_field, "ITEM_ID_FIELD": info.item_field, "RATING_FIELD": rating,
        "TIME_FIELD": info.time_field,
        "load_col": {"inter": [info.user_field, info.item_field, rating, info.time_field]},
        "user_inter_num_interval": "(4, inf)", "item_inter_num_interval": "(4, inf)",
        "eval_args": {"group_by": "user", "order": "TO", "split": {"LS": "valid_and_test"}, "mode": "full"},
        "topk": [1, 5, 10, 20], "metrics": ["Hit", "NDCG", "MRR"], "valid_metric": "Hit@20",
        "train_batch_size": preset["batch_size"], "eval_batch_size": preset["eval_batch_size"],
        "learning_rate": preset["learning_rate"], "stopping_step": preset["patience"], "epochs": preset["epochs"],
        "loss_type": "CE", "train_neg_sample_args": None, "reproducibility": False, "seed": preset["seed"],
        **original_config(preset),
    }
    if info.min_time is not None:
        config["val_interval"] = {info.time_field: f"[{info.min_time:.0f}, inf]"}
    config.update(overrides or {})
    return config
