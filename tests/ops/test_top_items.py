"""top_items (the streaming top-k behind ASRecModel.recommend) against a full sort of the
materialised matrix with the same rules: best first, equal scores to the lower id, the
padding item and excluded items never returned."""

import pytest
import torch

from asrec.ops import top_items
from asrec.reference.top_items import top_items_ref


def _expected(scores, k, exclude=None):
    """Sort the whole (B, n_items) matrix by (score descending, id ascending), dropping 0 and exclude."""
    scores = scores.clone()
    scores[:, 0] = float("nan")
    if exclude is not None:
        for row in range(scores.shape[0]):
            for item in exclude[row].tolist():
                if item != 0:
                    scores[row, item] = float("nan")
    result_scores, result_ids = [], []
    for row in scores:
        pairs = sorted(((-s, i) for i, s in enumerate(row.tolist()) if s == s))[:k]
        result_scores.append([-s for s, _ in pairs] + [float("-inf")] * (k - len(pairs)))
        result_ids.append([i for _, i in pairs] + [-1] * (k - len(pairs)))
    return torch.tensor(result_scores), torch.tensor(result_ids)


@pytest.mark.parametrize("tile", [3, 16, 8192])
@pytest.mark.parametrize("k", [1, 5, 30])
def test_ties_go_to_the_lower_id(tile, k):
    h = torch.randint(-2, 3, (7, 5)).float()
    w = torch.randint(-2, 3, (60, 5)).float()   # small integers: many exactly equal scores
    w[0] = 50.0                                  # the padding item would win every row
    scores, ids = top_items_ref(h, w, k, tile=tile)
    expected_scores, expected_ids = _expected(h @ w.t(), k)
    assert torch.equal(ids, expected_ids) and torch.equal(scores, expected_scores)
    assert scores.dtype == torch.float32 and ids.dtype == torch.int64 and (ids != 0).all()


def test_exclude_leaves_items_out_and_pads_with_minus_one():
    h, w = torch.randn(3, 8), torch.randn(9, 8)
    exclude = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 3], [1, 2, 3, 4]])   # 0: ignored; duplicates fine
    scores, ids = top_items_ref(h, w, 6, exclude, tile=4)
    expected_scores, expected_ids = _expected(h @ w.t(), 6, exclude)
    assert torch.equal(ids, expected_ids)
    torch.testing.assert_close(scores, expected_scores)   # a 4-wide GEMM may round the last bit otherwise
    assert ids[2, -2:].tolist() == [-1, -1] and scores[2, -1] == float("-inf")  # 8 real items, 4 excluded


def test_public_op_and_model_recommend():
    from asrec import ASRecModel

    torch.manual_seed(0)
    model = ASRecModel(n_items=40, max_seq_length=6, hidden_size=8, n_layers=1, n_heads=2, inner_size=16).eval()
    seq = torch.tensor([[3, 5, 7, 0, 0, 0], [1, 2, 0, 0, 0, 0]])
    length = torch.tensor([3, 2])
    scores, ids = model.recommend(seq, length, 10, exclude=seq)
    full = model.full_sort_scores(seq, length)
    expected_scores, expected_ids = _expected(full, 10, seq)
    assert torch.equal(ids, expected_ids)
    torch.testing.assert_close(scores, expected_scores)
    assert not set(ids[0].tolist()) & {3, 5, 7} and (torch.diff(scores, dim=1) <= 0).all()
    with pytest.raises(ValueError, match=r"top_items: k must be an int in \[1, 39\]"):
        model.recommend(seq, length, 40)
    with pytest.raises(ValueError, match=r"top_items: exclude must be a \(2, M\) integer tensor"):
        top_items(torch.randn(2, 8), model.item_embedding.weight, 3, torch.tensor([1, 2]))
