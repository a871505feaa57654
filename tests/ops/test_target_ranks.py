"""target_ranks (full-ranking evaluation over item tiles) against asrec.train.metrics.target_ranks
on the materialised score matrix.

Ties are tested exactly: integer-valued hidden states and item rows (small integers, so every
score is an exact float32 integer whichever GEMM computes it) with duplicated item rows make
many items tie with the target and with each other; both paths must then agree rank for
rank, ties counting for the target. Random float inputs (no exact ties) must agree too."""

import pytest
import torch

import asrec
from asrec.ops import target_ranks
from asrec.reference.target_ranks import target_ranks_ref
from asrec.train.metrics import target_ranks as materialised_ranks

from ..triton_support import DEVICE


def _integer_case(batch=12, n_items=70, hidden=6):
    h = torch.randint(-2, 3, (batch, hidden)).float()
    w = torch.randint(-2, 3, (n_items, hidden)).float()
    w[40:60] = w[20:40]          # duplicated rows: exact ties with the target's twin
    targets = torch.randint(1, n_items, (batch,))
    return h, w, targets


@pytest.mark.parametrize("tile", [1, 7, 64, 8192])
def test_exact_ties_rank_as_the_materialised_matrix(tile):
    h, w, targets = _integer_case()
    expected = materialised_ranks(h @ w.t(), targets)
    assert torch.equal(target_ranks_ref(h, w, targets, tile=tile), expected)
    scores = h @ w.t()
    ties = (scores[:, 1:] == scores.gather(1, targets[:, None])).sum(1)
    assert (ties > 1).sum() >= 6   # the case holds many ties besides the target itself


def test_padding_item_never_counts_and_random_scores_agree():
    h, w = torch.randn(20, 16), torch.randn(500, 16)
    w[0] = 100.0 * h.mean(0)       # a padding row that would outscore everything
    targets = torch.randint(1, 500, (20,))
    assert torch.equal(target_ranks(h, w, targets), materialised_ranks(h @ w.t(), targets))


def test_nan_scores_are_reported_as_minus_one():
    h, w, targets = _integer_case(batch=4)
    h[1, 0] = float("nan")
    ranks = target_ranks_ref(h, w, targets, tile=16)
    assert ranks[1] == -1 and (ranks[[0, 2, 3]] >= 0).all()
    w[0, :] = float("nan")          # the padding row: every row has a NaN score, as the evaluation checks
    assert (target_ranks_ref(h, w, targets, tile=16) == -1).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_rank_by_float32_scores(dtype):
    h, w, targets = _integer_case()
    assert torch.equal(target_ranks(h.to(dtype), w.to(dtype), targets), materialised_ranks(h @ w.t(), targets))


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match=r"target_ranks: targets must be a \(2,\) integer tensor"):
        target_ranks(torch.randn(2, 4), torch.randn(5, 4), torch.tensor([1, 2, 3]))


# Triton (interpreter): BLOCK 32 rows and items, so 40 rows are two row blocks and 150 items
# five tiles in five splits; integer-valued inputs make every score exact in both products


def test_triton_ranks_ties_as_the_materialised_matrix():
    h, w, targets = _integer_case(batch=40, n_items=150)
    expected = materialised_ranks(h @ w.t(), targets)
    with asrec.use_backend("triton"):
        ranks = target_ranks(h.to(DEVICE), w.to(DEVICE), targets.to(DEVICE))
    assert torch.equal(ranks.cpu(), expected)
    assert ranks.dtype == torch.int64


def test_triton_random_scores_padding_and_nan():
    torch.manual_seed(3)
    h, w = torch.randn(5, 16, device=DEVICE), torch.randn(70, 16, device=DEVICE)
    w[0] = 100.0 * h.mean(0)       # the padding row would outscore everything
    targets = torch.randint(1, 70, (5,), device=DEVICE)
    with asrec.use_backend("triton"):
        assert torch.equal(target_ranks(h, w, targets), materialised_ranks(h @ w.t(), targets))
        h[1, 0] = float("nan")
        ranks = target_ranks(h, w, targets)
        assert ranks[1] == -1 and torch.equal(ranks, target_ranks_ref(h, w, targets))
        w[0, :] = float("nan")      # the padding item's NaN is reported too, as the evaluation does
        assert (target_ranks(h, w, targets) == -1).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_low_precision_inputs_rank_by_float32_scores(dtype):
    h, w, targets = _integer_case(batch=6, n_items=64)
    with asrec.use_backend("triton"):
        ranks = target_ranks(h.to(DEVICE, dtype), w.to(DEVICE, dtype), targets.to(DEVICE))
    assert torch.equal(ranks.cpu(), materialised_ranks(h @ w.t(), targets))


def test_triton_refuses_float64_by_name():
    h, w, targets = _integer_case(batch=2)
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="target_ranks on the 'triton' backend: hidden"):
        target_ranks(h.double(), w.double(), targets)


def test_opcheck_and_compile_of_the_triton_ranks():
    h, w, targets = (t.to(DEVICE) for t in _integer_case(batch=5))
    torch.library.opcheck(torch.ops.asrec.target_ranks.default, (h, w, targets))
    with asrec.use_backend("triton"):
        compiled = torch.compile(lambda a, b, t: target_ranks(a * 1.0, b, t), backend="aot_eager", fullgraph=True)
        assert torch.equal(compiled(h, w, targets), target_ranks(h, w, targets))
