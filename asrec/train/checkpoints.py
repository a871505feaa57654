"""Checkpoint files of ``asrec train``.

- ``best.pt``: ``{"format", "model_config", "state_dict", "epoch", "valid", "dataset"}``, an
  ``ASRecModel`` that ``load_model`` rebuilds;
- ``best_original.pth`` + ``best_original_config.json``: the published code's state_dict
  and config, for its RecBole ``ASRec`` or ``ASRecModel.from_original_state_dict``;
- ``last.pt``: everything ``--resume`` needs (model, optimizer, RNG, early-stopping state,
  the run's settings, its dataset's statistics and fingerprint ``data_fingerprint``, see
  ``asrec.train.fingerprint``; absent from files written before it was added), and the names of the optimizer's
  parameters in its order (``optimizer_parameters``; absent from files written before it
  was added), by which a resume maps the optimizer state onto a changed parameter list
  (``asrec.train.optimizer_layout``).

Every file is written to a temporary name and renamed into place (``os.replace``), so an
interrupted run leaves each file either whole or as it was. A new best epoch is written in
three steps: the three best files under ``<name>.staged`` (``best.pt.staged`` last), then
``last.pt``, then the staged files renamed into place (``best.pt`` last). Whatever the
moment a run is stopped, ``recover_best`` on resuming finds ``best.pt`` and ``last.pt`` of
the same best epoch: staged files of the epoch ``last.pt`` names are put in place, others
are dropped.
"""

import json
import os

import torch

from ..errors import CommandError
from ..model import ASRecModel
from .presets import MODEL_KEYS

FORMAT = "asrec-checkpoint-1"
BEST_FILES = ("best_original.pth", "best_original_config.json", "best.pt")  # best.pt last
STAGED = ".staged"
# what a resumed run copies into a new --output; last.pt last, so a folder holding it is complete
RUN_FILES = (*BEST_FILES, *(name + STAGED for name in BEST_FILES), "last.pt")


class CheckpointError(CommandError, ValueError):
    """A checkpoint file that is missing, unreadable or not what it should be."""


def atomic_write(path: str, write) -> None:
    """``write(temporary_path)``, then rename it to ``path``: an interrupted write never leaves a torn file."""
    temporary = path + ".tmp"
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def atomic_save(obj, path: str) -> None:
    atomic_write(path, lambda temporary: torch.save(obj, temporary))


def atomic_write_text(path: str, text: str) -> None:
    def write(temporary):
        with open(temporary, "w") as f:
            f.write(text)
    atomic_write(path, write)


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def save_best(folder: str, model: ASRecModel, epoch: int, valid: dict, dataset: dict) -> None:
    """Stage the best files (``commit_best`` puts them in place once ``last.pt`` names this epoch)."""
    atomic_save(model.to_original_state_dict(), os.path.join(folder, "best_original.pth" + STAGED))
    atomic_write_json(os.path.join(folder, "best_original_config.json" + STAGED), model.to_original_config())
    atomic_save({"format": FORMAT, "model_config": model.config, "state_dict": model.state_dict(), "epoch": epoch,
                 "valid": valid, "dataset": dataset}, os.path.join(folder, "best.pt" + STAGED))


def commit_best(folder: str) -> None:
    for name in BEST_FILES:
        staged = os.path.join(folder, name + STAGED)
        if os.path.exists(staged):
            os.replace(staged, os.path.join(folder, name))


def recover_best(folder: str, best_epoch) -> None:
    """Finish or undo a best-epoch save that a stopped run left staged (see the module docstring)."""
    staged = os.path.join(folder, "best.pt" + STAGED)
    if os.path.exists(staged):
        try:
            complete = _read(staged, "best.pt")["epoch"] == best_epoch
        except CheckpointError:
            complete = False
        if complete:
            commit_best(folder)
    for name in BEST_FILES:
        if os.path.exists(os.path.join(folder, name + STAGED)):
            os.remove(os.path.join(folder, name + STAGED))


def _reason(error: Exception) -> str:
    """One short line for a failed ``torch.load`` (the weights-only unpickler's own message is a page)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    return " ".join(f"{type(error).__name__}: {text}".split())[:200]


def _read(path: str, what: str) -> dict:
    """The payload of an asrec checkpoint file, or a ``CheckpointError`` naming the file."""
    if not os.path.exists(path):
        folder = os.path.dirname(path) or "."
        if os.path.basename(path) == "last.pt" and os.path.isdir(folder):
            raise CheckpointError(f"{what}: no checkpoint at {path}: {folder} holds no finished epoch (start a new "
                                  f"run there with --output {folder})")
        raise CheckpointError(f"{what}: {path} does not exist")
    if not os.path.isfile(path):
        raise CheckpointError(f"{what}: {path} is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises whatever the unpickler meets in a damaged file
        raise CheckpointError(f"{what}: checkpoint file {path} is unreadable or corrupt ({_reason(error)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{what}: {path} is not an asrec checkpoint (expected format {FORMAT!r})")
    return payload


def _require(payload: dict, path: str, what: str, keys: tuple, meaning: str) -> None:
    """A named error for entries a checkpoint lacks (no bare KeyError)."""
    missing = [key for key in keys if key not in payload]
    if missing:
        raise CheckpointError(f"{what}: {path} is not {meaning}: it lacks {', '.join(map(repr, missing))}")


def _check_state(state_dict, path: str, what: str) -> None:
    """The model's tensors in range (``asrec.checkpoint.check_values``), as a CheckpointError."""
    from ..checkpoint import check_values

    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{what}: {path}: 'state_dict' is a {type(state_dict).__name__}, not a dict of tensors")
    try:
        check_values(state_dict, f"{path} state_dict")
    except ValueError as error:
        raise CheckpointError(f"{what}: {error}") from None


def load_model(path: str, map_location="cpu") -> ASRecModel:
    """Rebuild the ASRecModel saved in ``best.pt`` (or a ``last.pt``)."""
    payload = _read(path, "load_model")
    if "state_dict" not in payload and "model" in payload:
        payload["state_dict"] = payload["model"]
    _require(payload, path, "load_model", ("model_config", "state_dict"), "a model checkpoint")
    _check_state(payload["state_dict"], path, "load_model")
    try:
        model = ASRecModel(**payload["model_config"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"load_model: {path}: its model_config and state_dict do not make a model "
                              f"({' '.join(str(error).split())[:300]})") from None
    return model.to(map_location)


def save_last(folder: str, state: dict) -> None:
    atomic_save(dict(state, format=FORMAT), os.path.join(folder, "last.pt"))


def checkpoint_path(path: str) -> str:
    """``last.pt`` of a run folder, or the file itself."""
    return os.path.join(path, "last.pt") if os.path.isdir(path) else path


def load_last(path: str) -> dict:
    """The ``last.pt`` of a run folder (or the file given), checked for what ``--resume`` needs."""
    path = checkpoint_path(path)
    payload = _read(path, "--resume")
    missing = [key for key in ("state_dict", "optimizer", "loop", "config", "rng") if key not in payload]
    if missing:
        raise CheckpointError(f"--resume: {path} is not a training checkpoint (a run's last.pt): it lacks "
                              f"{', '.join(missing)}")
    loop = payload["loop"]
    if not isinstance(loop, dict):
        raise CheckpointError(f"--resume: {path}: 'loop' is a {type(loop).__name__}, not the early-stopping state")
    _require(loop, path, "--resume", ("epoch", "best", "best_epoch", "bad_epochs", "history"),
             "a complete training checkpoint: its 'loop'")
    _require(payload["config"], path, "--resume", ("dataset", "data_path", "synthetic_users", "synthetic_items",
                                                   "seed", "epochs", "patience", "batch_size", "eval_batch_size",
                                                   "learning_rate", "weight_decay", *MODEL_KEYS),
             "a complete training checkpoint: its 'config'")
    _check_state(payload["state_dict"], path, "--resume")
    return payload


def load_best(path: str) -> dict:
    """The payload of a run's ``best.pt``, checked for its entries and values."""
    payload = _read(path, "best.pt")
    _require(payload, path, "best.pt", ("epoch", "state_dict"), "a run's best.pt")
    _check_state(payload["state_dict"], path, "best.pt")
    return payload
