"""top_items (the streaming top-k behind ASRecModel.recommend) against a full sort of the
materialised matrix with the same rules: best first, equal scores to the lower id, the
padding item and excluded items never returned."""

import pytest
import torch

import asrec
from asrec.ops import top_items
from asrec.reference.top_items import top_items_ref

from ..triton_support import DEVICE


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


# Triton (interpreter): 18 rows are two row blocks of 16; k + M rounds up to the candidate
# width (16 or 32 items per tile), so 60 items are several tiles in several splits


def _triton(h, w, k, exclude=None):
    with asrec.use_backend("triton"):
        scores, ids = top_items(h.to(DEVICE), w.to(DEVICE), k, None if exclude is None else exclude.to(DEVICE))
    return scores.cpu(), ids.cpu()


@pytest.mark.parametrize("k", [1, 5, 20])
def test_triton_ties_go_to_the_lower_id(k):
    torch.manual_seed(k)
    h = torch.randint(-2, 3, (18, 5)).float()
    w = torch.randint(-2, 3, (60, 5)).float()   # small integers: exact scores, many ties
    w[0] = 50.0                                  # the padding item would win every row
    scores, ids = _triton(h, w, k)
    expected_scores, expected_ids = _expected(h @ w.t(), k)
    assert torch.equal(ids, expected_ids) and torch.equal(scores, expected_scores)
    assert scores.dtype == torch.float32 and ids.dtype == torch.int64


def test_triton_exclude_and_fewer_items_than_k():
    torch.manual_seed(1)
    h, w = torch.randint(-2, 3, (3, 8)).float(), torch.randint(-2, 3, (9, 8)).float()
    exclude = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 3], [1, 2, 3, 4]])   # 0: ignored; duplicates fine
    for k in (1, 6, 8):   # 8 = every real item: row 2 keeps only 4
        scores, ids = _triton(h, w, k, exclude)
        expected_scores, expected_ids = _expected(h @ w.t(), k, exclude)
        assert torch.equal(ids, expected_ids) and torch.equal(scores, expected_scores)
    assert ids[2, -4:].tolist() == [-1] * 4 and (scores[2, -4:] == float("-inf")).all()


def test_triton_random_scores_and_nan_rows_as_the_reference():
    torch.manual_seed(2)
    h, w = torch.randn(4, 16), torch.randn(50, 16)
    exclude = torch.randint(0, 50, (4, 3))
    h[2, 0] = float("nan")   # every score of row 2 NaN: NaN ranks first, ties to the lower id
    ours, reference = _triton(h, w, 7, exclude), top_items_ref(h, w, 7, exclude)
    assert torch.equal(ours[1], reference[1])
    torch.testing.assert_close(ours[0], reference[0], equal_nan=True)
    assert ours[0][2].isnan().all() and ours[1][2].tolist() == [i for i in range(1, 50) if i not in exclude[2]][:7]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_low_precision_inputs_score_in_float32(dtype):
    torch.manual_seed(4)
    h, w = torch.randint(-2, 3, (5, 6)).float(), torch.randint(-2, 3, (40, 6)).float()
    scores, ids = _triton(h.to(dtype), w.to(dtype), 4)
    expected_scores, expected_ids = _expected(h @ w.t(), 4)
    assert torch.equal(ids, expected_ids) and torch.equal(scores, expected_scores)


def test_triton_refuses_too_many_candidates_by_name():
    h, w = torch.randn(2, 8, device=DEVICE), torch.randn(400, 8, device=DEVICE)
    with asrec.use_backend("triton"), pytest.raises(ValueError, match=r"top_items on the 'triton' backend: k \+ "
                                                                       r"exclude's columns = 250 \+ 10 = 260 is over"):
        top_items(h, w, 250, torch.zeros(2, 10, dtype=torch.int64, device=DEVICE))


def test_opcheck_and_compile_of_the_triton_top_k():
    torch.manual_seed(5)
    h, w = torch.randn(3, 8, device=DEVICE), torch.randn(40, 8, device=DEVICE)
    exclude = torch.randint(0, 40, (3, 2), device=DEVICE)
    torch.library.opcheck(torch.ops.asrec.top_items.default, (h, w, 5, exclude))
    with asrec.use_backend("triton"):
        eager = top_items(h, w, 5, exclude)
        compiled = torch.compile(lambda a, b, e: top_items(a * 1.0, b, 5, e), backend="aot_eager", fullgraph=True)
        assert all(torch.equal(x, y) for x, y in zip(compiled(h, w, exclude), eager))
