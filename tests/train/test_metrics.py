import math

import pytest
import torch

from asrec.train.metrics import metrics_from_ranks, target_ranks


def test_ranks_exclude_padding_and_keep_history():
    scores = torch.tensor([[9.0, 1.0, 3.0, 2.0],    # padding scores highest: ignored
                           [0.0, 5.0, 4.0, 6.0]])
    assert target_ranks(scores, torch.tensor([3, 1])).tolist() == [1, 1]
    assert target_ranks(scores, torch.tensor([2, 3])).tolist() == [0, 0]


def test_ties_count_for_the_target():
    scores = torch.tensor([[0.0, 2.0, 2.0, 1.0]])
    assert target_ranks(scores, torch.tensor([2])).tolist() == [0]


def test_hand_computed_metrics():
    ranks = torch.tensor([0, 1, 4, 9, 30])  # positions 1, 2, 5, 10, 31
    m = metrics_from_ranks(ranks)
    assert m["hit@1"] == pytest.approx(1 / 5)
    assert m["hit@5"] == pytest.approx(3 / 5)
    assert m["hit@10"] == pytest.approx(4 / 5)
    assert m["hit@20"] == pytest.approx(4 / 5)
    assert m["ndcg@1"] == pytest.approx(1 / 5)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(11)) / 5)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 10) / 5)
    assert m["mrr@1"] == pytest.approx(1 / 5)
