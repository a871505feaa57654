"""Full-ranking evaluation in RecBole's batch order, exact across any number of processes.

The frequency filter's threshold couples the sequences of a batch, so the scores depend
on how the evaluation set is cut into batches. Batches are always the same consecutive
slices of the split (RecBole's order); with several processes, batch j runs on rank
``j % world_size`` and the ranks are reassembled in order, so the metrics are the ones a
single process computes.
"""

import numpy as np
import torch

from ..data.preprocess import Samples, SequentialData, padded_batch
from ..errors import CommandError
from ..ops.target_ranks import target_ranks as ranked_targets
from .batches import batch_to_device
from .distributed import Runtime, all_gather_objects
from .metrics import metrics_from_ranks, target_ranks


class ModelDiverged(CommandError):
    """The model scores items as NaN."""


@torch.no_grad()
def evaluation_ranks(model, data: SequentialData, samples: Samples, batch_size: int, runtime: Runtime,
                     autocast_dtype=None, scorer=None) -> torch.Tensor:
    """(len(samples),) 0-based rank of each target, in sample order, on every rank.

    scorer: ``(item_seq, item_seq_len) -> scores`` of the model in eval mode (e.g. an
    ``asrec.graphs.GraphedScores``), ranked on its (batch, n_items) matrix; default: the
    model's hidden states under the autocast, ranked over item tiles by
    ``asrec.ops.target_ranks`` (float32 scores, no score matrix)."""
    was_training = model.training
    model.eval()
    n_batches = (len(samples) + batch_size - 1) // batch_size
    mine, unscored = {}, False
    for batch in range(runtime.rank, n_batches, runtime.world_size):
        index = np.arange(batch * batch_size, min((batch + 1) * batch_size, len(samples)))
        seq, length, target = batch_to_device(padded_batch(data.items, samples, index, data.max_seq_length),
                                              runtime.device)
        if scorer is not None:
            scores = scorer(seq, length)  # possibly a graph's static buffer: consumed below, before the next batch
            unscored = unscored or bool(torch.isnan(scores).any())  # NaN never outranks the target: looks perfect
            mine[batch] = target_ranks(scores.float(), target).cpu()
            continue
        with torch.autocast(runtime.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            hidden = model(seq, length)
        # over item tiles, no (batch, n_items) matrix; the scores in float32 (of the autocast hidden)
        ranks = ranked_targets(hidden, model.item_embedding.weight, target)
        unscored = unscored or bool((ranks < 0).any())   # -1: a NaN score in the row
        mine[batch] = ranks.cpu()
    model.train(was_training)
    merged = {}
    for part, part_unscored in all_gather_objects((mine, unscored), runtime):
        merged.update(part)
        if part_unscored:
            raise ModelDiverged("the model's scores are NaN: training diverged (lower --learning-rate)")
    return torch.cat([merged[b] for b in range(n_batches)]) if n_batches else torch.zeros(0, dtype=torch.long)


def evaluate(model, data: SequentialData, split: str, batch_size: int, runtime: Runtime, autocast_dtype=None,
             scorer=None) -> dict:
    """Hit/NDCG/MRR @ 1, 5, 10, 20 on ``split`` ('valid' or 'test'); scorer as ``evaluation_ranks``."""
    samples = {"valid": data.valid, "test": data.test}[split]
    return metrics_from_ranks(evaluation_ranks(model, data, samples, batch_size, runtime, autocast_dtype, scorer))


def popularity_metrics(data: SequentialData, split: str) -> dict:
    """The popularity baseline: every user gets items ranked by training-target counts
    (ties broken towards the lower item id, so no tie favours the target)."""
    counts = np.bincount(data.train.target, minlength=data.n_items + 1).astype(np.float64)
    counts -= np.arange(len(counts)) / (len(counts) + 1.0)
    samples = {"valid": data.valid, "test": data.test}[split]
    scores = torch.from_numpy(counts)[None, :].expand(len(samples), -1)
    return metrics_from_ranks(target_ranks(scores, torch.from_numpy(samples.target.astype(np.int64))))
