"""Rebuild the model of an ``asrec train`` run folder (its ``best.pt``)."""

import os

from ..errors import CommandError
from ..model import ASRecModel
from ..train.checkpoints import CheckpointError, load_best


def load_run(run_folder: str, filter_scope=None) -> tuple:
    """The best epoch's model of a run folder, on the CPU in eval mode, and its checkpoint's
    entries besides the weights (``model_config``, ``epoch``, ``valid`` metrics, ``dataset``
    statistics). filter_scope None keeps the run's own frequency-filter scope; "batch" or
    "sequence" rebuilds the same weights with that scope (the weights do not depend on it).
    Raises ``CommandError`` for a path that is not a run folder."""
    if not os.path.isdir(run_folder):
        raise CommandError(f"RUN: {run_folder} is not a run folder (expected a folder written by asrec train, "
                           "holding best.pt)")
    path = os.path.join(run_folder, "best.pt")
    if not os.path.isfile(path):
        raise CommandError(f"RUN: {run_folder} is not a run folder with a finished epoch: it holds no best.pt")
    payload = load_best(path)
    if not isinstance(payload.get("model_config"), dict):
        raise CheckpointError(f"RUN: {path} lacks its model_config (not a best.pt of asrec train)")
    config = dict(payload["model_config"])
    if filter_scope is not None:
        config["filter_scope"] = filter_scope
    try:
        model = ASRecModel(**config)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"RUN: {path}: its model_config and state_dict do not make a model "
                              f"({' '.join(str(error).split())[:300]})") from None
    info = {key: value for key, value in payload.items() if key not in ("state_dict", "format")}
    info["model_config"] = config
    return model.eval(), info
