"""Checkpoint files of ``asrec train``.

- ``best.pt``: ``{"format", "model_config", "state_dict", "epoch", "valid", "dataset"}``, an
  ``ASRecModel`` that ``load_model`` rebuilds;
- ``best_original.pth`` + ``best_original_config.json``: the published code's state_dict
  and config, for its RecBole ``ASRec`` or ``ASRecModel.from_original_state_dict``;
- ``last.pt``: everything ``--resume`` needs (model, optimizer, RNG, early-stopping state).
"""

import json
import os

import torch

from ..model import ASRecModel

FORMAT = "asrec-checkpoint-1"


def _atomic_save(obj, path: str) -> None:
    """Write to a temporary name first so an interrupted save never leaves a torn file."""
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def save_best(folder: str, model: ASRecModel, epoch: int, valid: dict, dataset: dict) -> None:
    _atomic_save({"format": FORMAT, "model_config": model.config, "state_dict": model.state_dict(), "epoch": epoch,
                  "valid": valid, "dataset": dataset}, os.path.join(folder, "best.pt"))
    _atomic_save(model.to_original_state_dict(), os.path.join(folder, "best_original.pth"))
    with open(os.path.join(folder, "best_original_config.json"), "w") as f:
        json.dump(model.to_original_config(), f, indent=2)


def load_model(path: str, map_location="cpu") -> ASRecModel:
    """Rebuild the ASRecModel saved in ``best.pt`` (or a ``last.pt``)."""
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an asrec checkpoint (expected format {FORMAT!r})")
    model = ASRecModel(**payload["model_config"])
    model.load_state_dict(payload["state_dict"] if "state_dict" in payload else payload["model"])
    return model


def save_last(folder: str, state: dict) -> None:
    _atomic_save(dict(state, format=FORMAT), os.path.join(folder, "last.pt"))


def load_last(path: str) -> dict:
    if os.path.isdir(path):
        path = os.path.join(path, "last.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "optimizer" not in payload:
        raise ValueError(f"--resume: {path} is not an asrec training checkpoint (last.pt)")
    return payload
