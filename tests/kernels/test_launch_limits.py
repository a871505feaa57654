"""Every Triton launch grid of the model and the standalone ops stays within CUDA's limits at
a batch far past the published ones: grid axis 0 takes up to 2^31 - 1 programs, axes 1 and 2
only 65,535 (a launch past them fails on the GPU with "invalid argument", at any batch whose
size reaches a limited axis).

The launches are recorded, not run: tensors are fake (torch's FakeTensorMode: shapes without
storage, so a batch of 70,000 costs no memory) and the interpreter's launch path is patched
to note each kernel's grid. At B = 70,000 the batch-sized axes have 70,000 sequences (x 3
filter groups, x heads, x row blocks): every kernel must put them on axis 0.
"""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

pytest.importorskip("triton")

import asrec  # noqa: E402
from asrec.bench.settings import SETTINGS  # noqa: E402
from tests.triton_aot.record_launches import _standalone_launches  # noqa: E402

BATCH = 70_000
AXIS_LIMITS = (2**31 - 1, 65_535, 65_535)


@pytest.fixture
def grids(monkeypatch):
    """The (kernel, grid) of every interpreted launch from here on; kernels are not run."""
    from triton.runtime.interpreter import InterpretedFunction

    recorded = []

    def record(self, *args, grid, warmup, **kwargs):
        recorded.append((self.fn.__name__, tuple(grid)))

    monkeypatch.setattr(InterpretedFunction, "run", record)
    return recorded


def _model_calls(config: dict, batch: int):
    """A training step and an eval forward, train and eval mode, on fake inputs of ``batch`` sequences."""
    model = asrec.ASRecModel(**config, check_values=False)  # real parameters: their init reads values
    with FakeTensorMode(allow_non_fake_inputs=True):
        seq_len = config["max_seq_length"]
        items = torch.ones((batch, seq_len), dtype=torch.int64)
        lengths = torch.full((batch,), seq_len)
        targets = torch.ones((batch,), dtype=torch.int64)
        with asrec.use_backend("triton"):
            for train in (False, True):
                model.train(train)
                model.loss(items, lengths, targets).backward()
                with torch.no_grad():
                    model.full_sort_scores(items, lengths)
        _standalone_launches(config, batch)


def _over_the_limits(recorded):
    return sorted({(name, grid) for name, grid in recorded
                   if len(grid) > 3 or any(size > limit for size, limit in zip(grid, AXIS_LIMITS))})


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_every_grid_axis_stays_within_cuda_limits_at_batch_70000(grids, setting):
    _model_calls(SETTINGS[setting], BATCH)
    kernels = {name for name, _ in grids}
    # the batch-sized launches are all here (a launch path that stopped being exercised would drop out)
    for family in ("_attention_fwd_", "_attention_bwd_preprocess", "_attention_bwd_dkdv", "_attention_bwd_dq",
                   "_multiscale_conv_fwd", "_multiscale_conv_bwd_input", "_multiscale_conv_bwd_weight",
                   "_contrast_gelu_", "_residual_norm_", "_frequency_energy_", "_frequency_filter_",
                   "_frequency_keep_mask", "_input_stage_", "_fourier_smoothing_", "_take_rows_",
                   "_cross_entropy_", "_lce_", "_ranks_", "_top_candidates_", "_padding_bias"):
        assert any(family in name for name in kernels), family
    # the batch is really on the grids: some axis 0 is past what axes 1 and 2 would take
    assert max(grid[0] for _, grid in grids) > AXIS_LIMITS[1]
    assert _over_the_limits(grids) == []


def test_the_check_sees_a_batch_on_a_limited_axis(grids):
    """The check itself: a grid with the batch on axis 1 or 2 (as the attention and the
    convolutions had it) is reported."""
    grids.extend([("batch_heads_on_axis_1", (7, 2 * BATCH, 2)), ("batch_on_axis_2", (4, 13, BATCH)),
                  ("fine", (2**31 - 1, 65_535, 65_535))])
    assert [name for name, _ in _over_the_limits(grids)] == ["batch_heads_on_axis_1", "batch_on_axis_2"]
