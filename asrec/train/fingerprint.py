"""A run's data fingerprint: what ``--resume`` compares so that a run never continues over
other data.

The fingerprint hashes the preprocessed data, not the file: the two id maps (which user and
item token each id stands for), the interactions in (user, time) order as item ids, and the
three splits. These are what the saved weights mean (an item embedding row stands for the
item its id maps to), they exist for every source (a file, a download, the generator), and
they cost one pass over arrays already in memory (about 0.1 s per million interactions),
far less than reading the file. A file edited in a way that changes none of them (a column
the loader ignores) is the same data for the run and is accepted.
"""

import hashlib

import numpy as np

from ..data.preprocess import SequentialData

# component -> what a change means, for the refusal
PARTS = {
    "item_ids": "its item id map changed (ids now stand for other item tokens, so the run's item embeddings would "
                "score other items)",
    "user_ids": "its user id map changed (ids now stand for other users)",
    "interactions": "its interactions changed (other items, or another order within users' histories)",
    "splits": "its train/valid/test split changed",
}


def _hash_tokens(tokens) -> str:
    text = "\0".join(map(str, np.asarray(tokens, dtype=object).tolist()))  # str or object arrays alike
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _hash_arrays(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array, dtype=np.int64)
        digest.update(str(array.shape).encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def maps_and_interactions_fingerprint(item_tokens, user_tokens, items) -> dict:
    """``{part: sha256 hex}`` over the parts of ``PARTS`` that the id maps and the interactions
    (item ids in (user, time) order) determine: all but the splits (what a run folder's
    serving files hold, ``asrec.serve``)."""
    return {"item_ids": _hash_tokens(item_tokens), "user_ids": _hash_tokens(user_tokens),
            "interactions": _hash_arrays(items)}


def data_fingerprint(data: SequentialData) -> dict:
    """``{part: sha256 hex}`` over ``PARTS`` of a preprocessed dataset."""
    splits = [getattr(getattr(data, name), field) for name in ("train", "valid", "test")
              for field in ("user", "start", "length", "target")]
    return dict(maps_and_interactions_fingerprint(data.item_tokens, data.user_tokens, data.items),
                splits=_hash_arrays(*splits))


def fingerprint_changes(saved: dict, current: dict) -> list:
    """What changed between a run's saved fingerprint and the current data's, as
    ``PARTS`` sentences (empty: the same data)."""
    return [meaning for part, meaning in PARTS.items() if saved.get(part) != current.get(part)]
