"""RecBole 1.2.1's sequential preprocessing, vectorised (SPEC section 8), sample for sample:

1. iterative filtering: users and items with more than ``min_interactions - 1``
   interactions are kept, recounting until nothing changes (RecBole bans users and items
   from the same counts in each round);
2. token remapping to 1..n in order of first appearance (0 is padding), as ``pd.factorize``;
3. the time key RecBole sorts by (``recbole_time_key``): a missing time becomes the mean
   time, the dataset preset may min-max scale the times (ml-100k's does), and the result is
   stored as float32, so times closer than float32 resolves are ties;
4. a stable sort by (user, time key), ties in file order; every interaction after a user's
   first becomes a sample whose history is the user's previous items, truncated to the
   last ``max_seq_length``;
5. the samples are stably sorted by their target's time key, grouped by user in order of
   first appearance, and each user's last sample goes to test, the one before to
   validation (leave-one-out, 'valid_and_test'), the rest to training.
"""

from dataclasses import dataclass

import numpy as np


def first_appearance_codes(tokens: np.ndarray) -> tuple:
    """Codes 0..n-1 in order of first appearance, and the uniques: ``pandas.factorize`` itself
    (a hash table, linear time; RecBole remaps tokens with it). A ``TokenColumn`` (the file
    reader's) is remapped by its integer codes, its tokens hashed once already."""
    import pandas as pd

    from .atomic import TokenColumn

    if isinstance(tokens, TokenColumn):
        codes, seen = pd.factorize(tokens.codes)
        return codes.astype(np.int64, copy=False), tokens.uniques[seen]
    codes, uniques = pd.factorize(np.asarray(tokens))
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def filter_by_interactions(users: np.ndarray, items: np.ndarray, min_interactions: int) -> np.ndarray:
    """Bool mask of the rows kept by RecBole's iterative ``(min_interactions - 1, inf)`` filter.

    users, items: integer codes (n,).
    """
    keep = np.ones(len(users), dtype=bool)
    while True:
        user_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        banned = keep & ((user_counts[users] < min_interactions) | (item_counts[items] < min_interactions))
        if not banned.any():
            return keep
        keep &= ~banned


def recbole_time_key(times: np.ndarray, normalize: bool = False) -> np.ndarray:
    """The float32 key RecBole 1.2.1 orders interactions by. times: (n,) float64, NaN = missing.

    RecBole fills a missing float with the column mean, scales the column to
    ``(t - min) / (max - min)`` in float64 when the dataset preset asks to normalise (all
    equal: 1.0), then stores every float field as float32 (``torch.FloatTensor``). Float32
    keeps about 7 significant digits: raw Unix times collapse to 64-128 s steps, scaled ones
    to steps of roughly the time span / 2^24; equal keys keep their file order.
    """
    times = np.asarray(times, dtype=np.float64)
    missing = np.isnan(times)
    if missing.any():
        times = np.where(missing, times[~missing].mean() if (~missing).any() else np.nan, times)
    if normalize and len(times):
        low, high = times.min(), times.max()
        times = np.ones_like(times) if high == low else (times - low) / (high - low)
    return times.astype(np.float32)


@dataclass
class Samples:
    """Next-item samples over ``SequentialData.items``: history ``items[start:start+length]``."""
    user: np.ndarray    # (S,) user id
    start: np.ndarray   # (S,) index of the first history item
    length: np.ndarray  # (S,) history length in [1, max_seq_length]
    target: np.ndarray  # (S,) next item id

    def __len__(self):
        return len(self.target)

    def subset(self, index) -> "Samples":
        return Samples(self.user[index], self.start[index], self.length[index], self.target[index])


@dataclass
class SequentialData:
    """A preprocessed dataset: items in (user, time) order and the three splits."""
    items: np.ndarray        # (n_interactions,) item ids in (user, time) order
    n_users: int             # real users (ids 1..n_users)
    n_items: int             # real items (ids 1..n_items); the model's n_items is n_items + 1
    max_seq_length: int
    train: Samples
    valid: Samples
    test: Samples
    item_tokens: np.ndarray  # (n_items + 1,) original token of each id, '[PAD]' at 0
    user_tokens: np.ndarray

    def statistics(self) -> dict:
        return {"users": self.n_users, "items": self.n_items, "interactions": int(len(self.items)),
                "train_samples": len(self.train), "valid_samples": len(self.valid), "test_samples": len(self.test),
                "average_sequence_length": round(len(self.items) / max(1, self.n_users), 2),
                "sparsity": round(1 - len(self.items) / max(1, self.n_users * self.n_items), 6),
                "max_seq_length": self.max_seq_length}


def build_sequences(users: np.ndarray, items: np.ndarray, times: np.ndarray, max_seq_length: int,
                    min_interactions: int = 5, normalize_time: bool = False) -> SequentialData:
    """users, items: token arrays (n,) in file order; times: (n,) float64, NaN where missing.

    ``normalize_time``: the dataset preset's ``normalize_all`` (True for ml-100k, see
    ``asrec.data.registry``). See the module docstring.
    """
    user_codes, user_uniques = first_appearance_codes(users)
    item_codes, item_uniques = first_appearance_codes(items)
    keep = filter_by_interactions(user_codes, item_codes, min_interactions)
    if not keep.any():
        raise ValueError(f"no interactions left after keeping users and items with at least {min_interactions} "
                         "interactions each (min_interactions, the --min-interactions of asrec train)")
    times = times[keep]
    # remapping the kept rows' codes in first-appearance order is remapping their tokens: one
    # hash pass over integers instead of a second one over strings
    user_ids, kept_users = first_appearance_codes(user_codes[keep])
    item_ids, kept_items = first_appearance_codes(item_codes[keep])
    user_tokens, item_tokens = user_uniques[kept_users], item_uniques[kept_items]
    user_ids, item_ids = user_ids + 1, item_ids + 1
    times = recbole_time_key(times, normalize_time)

    order = np.lexsort((times, user_ids))  # stable: by user, then time key, then file order
    user_ids, item_ids, times = user_ids[order], item_ids[order], times[order]
    del order
    n = len(user_ids)
    user_start = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    position = np.arange(n) - np.repeat(user_start, np.diff(np.r_[user_start, n]))
    del user_start
    index = np.flatnonzero(position > 0)         # (S,) every interaction after a user's first
    length = np.minimum(position[index], max_seq_length)
    del position

    by_time = np.argsort(times[index], kind="stable")
    del times
    # users in order of their earliest sample (first appearance along by_time), each user's
    # samples in time order: a stable sort of by_time by that rank
    user_rank, _ = first_appearance_codes(user_ids[index[by_time]])
    grouped = by_time[np.argsort(user_rank, kind="stable")]
    del by_time, user_rank
    grouped_users = user_ids[index[grouped]]
    same_as_next = grouped_users[1:] == grouped_users[:-1]
    last_of_user = np.r_[~same_as_next, True]
    second_last = np.r_[last_of_user[1:] & same_as_next, False]
    count = np.bincount(grouped_users)[grouped_users]
    del grouped_users, same_as_next
    # RecBole leaves out min(2, samples - 1): one sample stays in training, two go to test only
    to_test = last_of_user & (count >= 2)
    to_valid = second_last & (count >= 3)
    del count, last_of_user, second_last

    def subset(chosen: np.ndarray) -> Samples:
        at = index[chosen]
        return Samples(user_ids[at], at - length[chosen], length[chosen], item_ids[at])

    test, valid = subset(grouped[to_test]), subset(grouped[to_valid])
    train = subset(grouped[~(to_test | to_valid)])
    return SequentialData(item_ids, int(user_ids.max()), len(item_tokens), max_seq_length, train, valid, test,
                          np.r_[np.array(["[PAD]"]), item_tokens], np.r_[np.array(["[PAD]"]), user_tokens])


def padded_batch(items: np.ndarray, samples: Samples, index: np.ndarray, max_seq_length: int) -> tuple:
    """Left-aligned, right-padded histories of ``samples[index]``.

    Returns (item_seq (b, N) int64, item_seq_len (b,) int64, target (b,) int64) numpy arrays.
    """
    start, length = samples.start[index], samples.length[index]
    offsets = np.arange(max_seq_length)
    valid = offsets[None, :] < length[:, None]
    positions = np.where(valid, start[:, None] + offsets[None, :], 0)
    return np.where(valid, items[positions], 0).astype(np.int64), length.astype(np.int64), \
        samples.target[index].astype(np.int64)
