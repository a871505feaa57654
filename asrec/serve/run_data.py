"""What a run folder keeps for serving, so that ``asrec recommend`` reads no data file:

- ``id_maps.json``: ``{"format", "item_tokens", "user_tokens", "data_fingerprint"}``, the
  original token of each item id and user id (index 0: the padding ``[PAD]``) as strings, and
  the fingerprint of the data they came from (``asrec.train.fingerprint``, the one
  ``last.pt`` records), by which a reader checks that the maps belong to the run;
- ``histories.npz``: ``items`` (n_interactions,) int32, every user's item ids in time order,
  users one after another in id order, and ``offsets`` (n_users + 2,) int64, user ``u``'s
  items being ``items[offsets[u]:offsets[u + 1]]`` (``offsets[0] = offsets[1] = 0``: no user 0).

JSON for the maps because they are what people and other tools read (the tokens, no torch
needed); a separate file, not an entry of ``best.pt``, because the maps are written once per
run while ``best.pt`` is rewritten at every better epoch. ``asrec train`` writes both files
(``write_run_data``) when it has loaded the data, on every start and resume (a resume checks
the data's fingerprint first, so a rewrite writes the same maps).
"""

import json
import os
from dataclasses import dataclass

import numpy as np

from ..data.preprocess import SequentialData
from ..errors import CommandError

ID_MAPS = "id_maps.json"
HISTORIES = "histories.npz"
FORMAT = "asrec-id-maps-1"


@dataclass
class RunData:
    """A run's tokens and histories. item_tokens (n_items,) and user_tokens (n_users + 1,)
    str lists, index 0 the padding; items (n_interactions,) int and offsets (n_users + 2,) int
    as in ``histories.npz``."""
    item_tokens: list
    user_tokens: list
    items: np.ndarray
    offsets: np.ndarray

    def history(self, user: int) -> np.ndarray:
        """User id ``user``'s item ids, oldest first."""
        return self.items[self.offsets[user]:self.offsets[user + 1]]


def user_offsets(data: SequentialData) -> np.ndarray:
    """(n_users + 2,) start of each user's items in ``data.items`` (see the module docstring).

    The preprocessing keeps no per-interaction user column, but every interaction after a
    user's first is exactly one sample of one split, so a user has 1 + (its samples) items."""
    samples = np.concatenate([data.train.user, data.valid.user, data.test.user]).astype(np.int64)
    counts = 1 + np.bincount(samples, minlength=data.n_users + 1)[1:]
    offsets = np.concatenate([[0, 0], np.cumsum(counts)]).astype(np.int64)
    if offsets[-1] != len(data.items):  # a broken invariant of build_sequences, not bad input
        raise AssertionError(f"user_offsets: {offsets[-1]} interactions counted, {len(data.items)} held")
    return offsets


def run_data_from(data: SequentialData) -> RunData:
    return RunData([str(t) for t in data.item_tokens], [str(t) for t in data.user_tokens],
                   np.asarray(data.items, dtype=np.int64), user_offsets(data))


def write_run_data(folder: str, data: SequentialData, fingerprint: dict) -> None:
    """Write ``id_maps.json`` and ``histories.npz`` into a run folder, each whole (temporary name, rename)."""
    from ..train.checkpoints import atomic_write, atomic_write_json

    run_data = run_data_from(data)
    atomic_write_json(os.path.join(folder, ID_MAPS), {
        "format": FORMAT, "item_tokens": run_data.item_tokens, "user_tokens": run_data.user_tokens,
        "data_fingerprint": fingerprint})

    def write_histories(temporary):
        with open(temporary, "wb") as f:  # a file object: np.savez would append .npz to a bare name
            np.savez(f, items=run_data.items.astype(np.int32), offsets=run_data.offsets)
    atomic_write(os.path.join(folder, HISTORIES), write_histories)


def _bad(path: str, why: str) -> CommandError:
    return CommandError(f"{path}: not a valid asrec {os.path.basename(path)} ({why}); it is rewritten by "
                        f"asrec train when the run's data is loaded")


def read_run_data(folder: str):
    """``(RunData, the fingerprint its maps record)`` from a run folder, or None where the
    folder has neither file (a run trained before they were written). One file without the
    other, or a damaged one, is a ``CommandError`` naming it."""
    maps_path, histories_path = os.path.join(folder, ID_MAPS), os.path.join(folder, HISTORIES)
    present = [os.path.isfile(p) for p in (maps_path, histories_path)]
    if not any(present):
        return None
    if not all(present):
        missing = histories_path if present[0] else maps_path
        raise CommandError(f"{missing} is missing (the run folder holds the other of {ID_MAPS} and {HISTORIES}); "
                           "restore it, or delete both to re-read the run's data")
    try:
        with open(maps_path, encoding="utf-8") as f:
            maps = json.load(f)
    except (OSError, ValueError) as error:
        raise _bad(maps_path, " ".join(str(error).split())[:200]) from None
    if not isinstance(maps, dict) or maps.get("format") != FORMAT:
        raise _bad(maps_path, f"expected format {FORMAT!r}")
    for key in ("item_tokens", "user_tokens"):
        if not isinstance(maps.get(key), list) or not all(isinstance(t, str) for t in maps[key]):
            raise _bad(maps_path, f"{key!r} is not a list of strings")
    try:
        with np.load(histories_path, allow_pickle=False) as arrays:
            items, offsets = np.asarray(arrays["items"], dtype=np.int64), np.asarray(arrays["offsets"], dtype=np.int64)
    except (OSError, ValueError, KeyError) as error:
        raise _bad(histories_path, " ".join(str(error).split())[:200]) from None
    n_users, n_items = len(maps["user_tokens"]) - 1, len(maps["item_tokens"])
    if (offsets.shape != (n_users + 2,) or offsets[0] != 0 or offsets[1] != 0 or offsets[-1] != len(items)
            or (np.diff(offsets) < 0).any()):
        raise _bad(histories_path, f"its offsets do not cut {len(items)} interactions among {n_users} users")
    if len(items) and (items.min() < 1 or items.max() >= n_items):
        raise _bad(histories_path, f"item ids outside [1, {n_items - 1}]")
    return RunData(maps["item_tokens"], maps["user_tokens"], items, offsets), maps.get("data_fingerprint")
