"""Opening a run folder of ``asrec train`` for serving: its best model and its data.

The data comes from the folder's ``id_maps.json`` and ``histories.npz`` (``run_data``),
checked against the fingerprint ``last.pt`` records; a run trained before those files were
written has its dataset re-read from ``config.json`` and checked against that fingerprint;
``data_path`` reads another .inter file of the same item tokens instead.
"""

import json
import os

import numpy as np
import torch

from ..errors import CommandError
from ..model import ASRecModel
from .run_data import ID_MAPS, RunData, read_run_data, run_data_from


def _is_run_folder(folder: str) -> None:
    if not os.path.isdir(folder):
        raise CommandError(f"RUN: {folder} is not a folder (give the run folder asrec train wrote, e.g. "
                           "runs/ml-100k-20260101-120000)")
    missing = [name for name in ("config.json", "best.pt") if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise CommandError(f"RUN: {folder} is not a run folder of asrec train: it has no {' and no '.join(missing)}"
                           + (" (no epoch of the run has finished)" if "best.pt" in missing else ""))


def read_config(folder: str) -> dict:
    """The run's ``config.json``, the settings ``asrec train`` ran with."""
    _is_run_folder(folder)
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except ValueError as error:
        raise CommandError(f"{path}: not valid JSON ({' '.join(str(error).split())[:200]})") from None
    if not isinstance(config, dict):
        raise CommandError(f"{path}: expected a JSON object of the run's settings")
    return config


def load_run(folder: str, filter_scope=None, device="cpu") -> tuple:
    """The run's best model (``best.pt``) in eval mode on ``device``, and the checkpoint's
    entries besides the weights (``model_config``, ``epoch``, ``valid`` metrics, ``dataset``
    statistics). ``filter_scope`` 'batch' or 'sequence' replaces the scope it was trained
    with (None keeps it). Raises ``CommandError`` for a path that is not a run folder."""
    from ..train.checkpoints import CheckpointError, load_best

    _is_run_folder(folder)
    path = os.path.join(folder, "best.pt")
    payload = load_best(path)
    if not isinstance(payload.get("model_config"), dict):
        raise CheckpointError(f"{path}: is not a run's best.pt: it lacks its 'model_config'")
    model_config = dict(payload["model_config"])
    if filter_scope is not None:
        model_config["filter_scope"] = filter_scope  # a forward-time choice: the weights are the same
    try:
        model = ASRecModel(**model_config)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: its model_config and state_dict do not make a model "
                              f"({' '.join(str(error).split())[:300]})") from None
    info = {key: value for key, value in payload.items() if key not in ("state_dict", "format")}
    info["model_config"] = model_config
    return model.to(device).eval(), info


def load_run_model(folder: str, device, filter_scope=None) -> ASRecModel:
    """``load_run``'s model alone."""
    return load_run(folder, filter_scope, device)[0]


def _recorded_fingerprint(folder: str):
    """The data fingerprint ``last.pt`` records, or None (no last.pt, or one from before it was recorded)."""
    path = os.path.join(folder, "last.pt")
    if not os.path.isfile(path):
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises whatever the unpickler meets in a damaged file
        raise CommandError(f"{path}: unreadable or corrupt ({type(error).__name__}); the run's data fingerprint "
                           "is checked against it") from None
    return payload.get("data_fingerprint") if isinstance(payload, dict) else None


def _fingerprint_of(run_data: RunData) -> dict:
    """The parts of ``asrec.train.fingerprint.data_fingerprint`` that the serving files determine."""
    from ..train.fingerprint import maps_and_interactions_fingerprint

    return maps_and_interactions_fingerprint(run_data.item_tokens, run_data.user_tokens, run_data.items)


def _check_against(run_data: RunData, fingerprint: dict, what: str) -> None:
    from ..train.fingerprint import PARTS

    current = _fingerprint_of(run_data)
    changed = [PARTS[part] for part in current if fingerprint.get(part) != current[part]]
    if changed:
        raise CommandError(f"{what} do not match the data the run was trained on: {'; '.join(changed)}")


def _reread(folder: str, config: dict) -> RunData:
    """A run without serving files: its dataset again, checked against ``last.pt``'s fingerprint."""
    from ..train.fingerprint import data_fingerprint, fingerprint_changes

    fingerprint = _recorded_fingerprint(folder)
    if fingerprint is None:
        raise CommandError(f"RUN: {folder} has no {ID_MAPS} (it was trained before asrec train saved its id maps) "
                           "and its last.pt records no data fingerprint, so re-reading its data could not be "
                           "checked; train the run again with this asrec")
    data = _load(config, config.get("data_path"), f"the run's data ({config.get('data_path') or config['dataset']})")
    changes = fingerprint_changes(fingerprint, data_fingerprint(data))
    if changes:
        raise CommandError(f"RUN: {folder} has no {ID_MAPS}, and its data re-read now is not what it was trained on: "
                           f"{'; '.join(changes)}; restore the run's data or train again")
    return run_data_from(data)


def _load(config: dict, data_path, what: str):
    from ..data import load_dataset
    from ..data.registry import DATASETS

    dataset = config.get("dataset")
    synthetic = dict(n_users=config.get("synthetic_users"), n_items=config.get("synthetic_items"))
    try:
        data, _, _ = load_dataset(dataset if data_path is None or dataset in DATASETS else None, data_path,
                                  config["max_seq_length"], synthetic_options=synthetic,
                                  min_interactions=config.get("min_interactions", 5))
    except (OSError, ValueError) as error:
        raise CommandError(f"{what}: {' '.join(str(error).split())}") from None
    return data


def _from_other_file(data_path: str, config: dict, run_data: RunData) -> RunData:
    """Histories of another .inter file, its item tokens mapped onto the run's item ids."""
    if not os.path.exists(data_path):
        raise CommandError(f"--data-path: {data_path} does not exist")
    data = _load(config, data_path, "--data-path")
    index = {token: i for i, token in enumerate(run_data.item_tokens) if i}
    tokens = [str(t) for t in data.item_tokens[1:]]
    unknown = [t for t in tokens if t not in index]
    if unknown:
        raise CommandError(f"--data-path: {len(unknown)} item token(s) of {data_path} are not items of the run "
                           f"(e.g. {', '.join(map(repr, unknown[:5]))}); the model has no embedding for them")
    to_run = np.array([0] + [index[t] for t in tokens], dtype=np.int64)
    other = run_data_from(data)
    return RunData(run_data.item_tokens, other.user_tokens, to_run[other.items], other.offsets)


def load_run_data(folder: str, config: dict, n_items: int, data_path=None) -> RunData:
    """The run's tokens and its users' histories (or ``data_path``'s users, in the run's item ids)."""
    saved = read_run_data(folder)
    if saved is None:
        run_data = _reread(folder, config)
    else:
        run_data, own = saved
        recorded = _recorded_fingerprint(folder)
        _check_against(run_data, own or {}, f"{folder}'s {ID_MAPS} and histories.npz (damaged?)")
        if recorded is not None:
            _check_against(run_data, recorded, f"{folder}'s {ID_MAPS} and histories.npz (from another run?)")
    if len(run_data.item_tokens) != n_items:
        raise CommandError(f"RUN: {folder}: its id maps name {len(run_data.item_tokens) - 1} items, its best.pt "
                           f"scores {n_items - 1}: the files come from different runs")
    return run_data if data_path is None else _from_other_file(data_path, config, run_data)
