"""The key a CUDA graph is cached under (asrec.graphs._key) names everything a captured graph
is specific to. Graphs run eagerly off CUDA, so the key function is tested directly: a graph
captured under one float32 matmul precision must not replay under another (the Triton kernels
take the precision as a launch constant, DOT_PRECISION; cuBLAS and cuDNN read it at launch too).
"""

import pytest
import torch

import asrec
from asrec.graphs import _key


@pytest.fixture
def restore_precision():
    before = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(before)


def test_the_key_changes_with_the_float32_matmul_precision(restore_precision):
    inputs = (torch.zeros(4, 50, dtype=torch.int64), torch.ones(4, dtype=torch.int64))
    keys = {}
    for precision in ("highest", "high", "medium"):
        torch.set_float32_matmul_precision(precision)
        keys[precision] = _key(inputs, None)
        assert precision in keys[precision]
    assert len(set(keys.values())) == 3, keys
    torch.set_float32_matmul_precision("high")
    assert _key(inputs, None) == keys["high"]  # the same setting finds the same graph


def test_the_key_still_separates_shapes_dtypes_backends_and_settings(restore_precision):
    torch.set_float32_matmul_precision("highest")
    items = torch.zeros(4, 50, dtype=torch.int64)
    base = _key((items,), None, True)
    assert _key((torch.zeros(5, 50, dtype=torch.int64),), None, True) != base
    assert _key((items.int(),), None, True) != base
    assert _key((items,), torch.bfloat16, True) != base
    assert _key((items,), None, False) != base
    with asrec.use_backend("reference"):
        reference = _key((items,), None, True)
    with asrec.use_backend("triton"):
        assert _key((items,), None, True) != reference
