"""Top-k recommendations for many histories: batching over ``ASRecModel.recommend``.

The latest history of a user, for serving, is the user's whole sequence: every interaction
of the data, the last (test) item included, the model seeing the ``max_seq_length`` most
recent (the leave-one-out evaluation predicts the test item from the items before it;
serving predicts what comes after everything known).

The frequency filter's threshold (``filter_scope="batch"``, as published and trained) is a
quantile over the whole batch, so a user's recommendations depend on the other histories of
its batch. The batches here are fixed: consecutive slices of ``batch_size`` histories in the
order given (for a run's users, their id order), so the result for a history is determined
by the list of histories and ``batch_size``. A model built with ``filter_scope="sequence"``
takes one threshold per history, and each result depends on its own history only.
"""

from collections.abc import Iterable, Iterator
from typing import Optional

import numpy as np
import torch

from .run_data import RunData


def latest_histories(run_data: RunData, users: Optional[Iterable[int]] = None) -> list:
    """``[(user token, item ids oldest first), ...]`` of the run's users (ids ``users``, default all, in id order)."""
    ids = range(1, len(run_data.user_tokens)) if users is None else users
    return [(run_data.user_tokens[u], run_data.history(u)) for u in ids]


def _padded(histories: list, width: int) -> np.ndarray:
    """(b, width) int64: each history's last ``width`` items, left-aligned, 0 after them."""
    out = np.zeros((len(histories), width), dtype=np.int64)
    for row, items in enumerate(histories):
        tail = items[-width:]
        out[row, :len(tail)] = tail
    return out


@torch.no_grad()
def recommend_batch(model, histories: list, k: int, exclude_seen: bool = False) -> tuple:
    """One batch: histories a list of (n_i,) item-id arrays (n_i >= 1, oldest first) ->
    (scores (b, k) float32, item ids (b, k) int64) tensors on the CPU, best first, as
    ``ASRecModel.recommend`` (the model in its current mode). ``exclude_seen`` leaves out every
    item of a history, its part beyond ``max_seq_length`` included."""
    device = model.item_embedding.weight.device
    lengths = np.array([min(len(h), model.max_seq_length) for h in histories], dtype=np.int64)
    item_seq = torch.from_numpy(_padded(histories, model.max_seq_length)).to(device)
    exclude = None
    if exclude_seen:
        exclude = torch.from_numpy(_padded(histories, max(len(h) for h in histories))).to(device)
    scores, ids = model.recommend(item_seq, torch.from_numpy(lengths).to(device), k, exclude)
    return scores.cpu(), ids.cpu()


def recommend_users(model, item_tokens: list, histories: list, k: int, batch_size: int = 256,
                    exclude_seen: bool = False, progress=None) -> Iterator[dict]:
    """``{"user", "items", "scores"}`` for each ``(user label, item ids)`` of ``histories``, in
    order: the k best item tokens (best first) and their float scores, never the padding
    item; where ``exclude_seen`` leaves fewer than k items, the lists are shorter.

    model: an ``ASRecModel`` in eval mode (``asrec.serve.load_run_model``); item_tokens: the
    run's tokens by id; batches of ``batch_size`` in order (see the module docstring);
    progress: an ``asrec.train.progress.Progress`` over the batches, or None."""
    n_batches = (len(histories) + batch_size - 1) // batch_size
    done = 0
    for batch in range(n_batches):
        part = histories[batch * batch_size:(batch + 1) * batch_size]
        scores, ids = recommend_batch(model, [items for _, items in part], k, exclude_seen)
        for (user, _), row_scores, row_ids in zip(part, scores.tolist(), ids.tolist()):
            kept = [i for i, item in enumerate(row_ids) if item > 0]  # -1: fewer than k items were left
            yield {"user": user, "items": [item_tokens[row_ids[i]] for i in kept],
                   "scores": [row_scores[i] for i in kept]}
        done += len(part)
        if progress is not None:
            progress.update(batch + 1, users=f"{done}/{len(histories)}")
    if progress is not None:
        progress.close()
